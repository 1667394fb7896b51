"""What a dataset loader returns: three labelled splits plus the facts a run record keeps."""
from __future__ import annotations

from dataclasses import dataclass, field

from torch import Tensor


@dataclass
class Split:
    inputs: object  # tensor (or tuple of tensors), or a torch Dataset for data read from disk
    targets: Tensor  # (N,) class ids


@dataclass
class Splits:
    train: Split
    val: Split
    test: Split
    num_classes: int
    task: str  # "multi-class" or "binary"
    provenance: dict = field(default_factory=dict)  # files, checksums, releases, choices made
    class_names: list[str] | None = None
