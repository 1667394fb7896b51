"""The contract every upstream augmenter keeps: hyperparameters in the constructor, an explicit RNG.

An augmenter is called with a clean batch (inputs in raw scale: uint8-range images or
standardised tabular rows), its soft label rows (B, K) and a torch.Generator, and returns an
AugBatch. The trainer trains on the union of the clean and the augmented batch, with SAflex
deciding the augmented samples' weights and labels (or uniform weights and upstream labels).
"""
from __future__ import annotations

from dataclasses import dataclass, field

from torch import Tensor


@dataclass
class AugBatch:
    inputs: object  # tensor (or tuple of tensors) of the augmented samples
    labels: Tensor  # (B, K) upstream soft labels
    # Optional per-sample facts: "true_labels" (B,) where the augmenter knows the right label,
    # "source" (B,) integer ids of where a sample came from (trust report), "visible_fraction"
    # (B,) the share of the image a crop kept (Soft-Augmentation's targets read it). An
    # augmenter class names what it gives a refiner in `provides`, checked before any run.
    meta: dict = field(default_factory=dict)
