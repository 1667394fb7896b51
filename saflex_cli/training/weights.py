"""The trained weights of a run, kept beside its record: <run_name>.<selection>.safetensors.

The checkpoints go once a run is recorded; what stays is the model at the selections asked for
(`--save-model`: the family's default selection, the last epoch, every selection, or none), as
safetensors (tensors only: loading runs no code), written atomically before the record that lists
them. The file's metadata holds the run's identity and config; the record holds each file's name,
epoch and SHA-256, so `saflex eval` refuses a file that is missing, altered, or another run's.
"""
from __future__ import annotations

import hashlib
import json
from pathlib import Path

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import load as load_bytes
from safetensors.torch import save as save_bytes

from ..config import RunConfig
from ..errors import SaflexError
from ..store.files import atomic_write
from ..store.records import record_path

FORMAT = "1"


def wanted_selections(save_model: str, default: str, available: list[str]) -> list[str]:
    """The selections whose weights a run keeps (`save_model`: one of config.SAVE_MODEL), among those it has."""
    wanted = {"best": [default], "last": ["last"], "all": available, "none": []}[save_model]
    return [s for s in wanted if s in available]


def weights_path(out: Path, config: RunConfig, selection: str) -> Path:
    return record_path(out, config).with_suffix(f".{selection}.safetensors")


def save_weights(out: Path, config: RunConfig, selection: str, epoch: int, state: dict[str, torch.Tensor]) -> dict:
    """Write one selection's weights; returns what the record says of them."""
    # Copies on the CPU: safetensors refuses tensors that share memory (tied weights) or are strided.
    tensors = {name: t.detach().to("cpu", copy=True).contiguous() for name, t in state.items()}
    metadata = {"format": FORMAT, "run_id": config.identity(), "run_name": config.run_name, "selection": selection,
                "epoch": str(epoch), "config": json.dumps(config.to_dict(), sort_keys=True)}
    data = save_bytes(tensors, metadata=metadata)
    path = weights_path(out, config, selection)
    atomic_write(path, lambda handle: handle.write(data), binary=True)
    return {"file": path.name, "epoch": epoch, "sha256": hashlib.sha256(data).hexdigest()}


def load_weights(record_file: Path, record: dict, selection: str) -> dict[str, torch.Tensor]:
    """The weights a record lists for `selection`, checked against it; one SaflexError line otherwise."""
    kept = record.get("models") or {}
    if selection not in kept:
        have = ", ".join(sorted(kept)) or "none"
        raise SaflexError(f"{record_file.name} kept no weights for selection {selection!r} (kept: {have}); rerun "
                          f"the run with --save-model all (a run recorded already: move its record away first)")
    entry = kept[selection]
    path = Path(record_file).parent / entry["file"]
    try:
        data = path.read_bytes()
    except OSError:
        raise SaflexError(f"weights file {path} is missing: the record lists it; restore it or rerun the run") from None
    try:
        with safe_open(str(path), "pt") as handle:
            metadata = handle.metadata() or {}
        tensors = load_bytes(data)
    except (SafetensorError, OSError, ValueError) as error:
        raise SaflexError(f"weights file {path} is unreadable ({error}): restore it or rerun the run") from None
    if metadata.get("run_id") != record.get("run_id"):
        raise SaflexError(f"weights file {path} belongs to run {metadata.get('run_id')!r}, not to this record's "
                          f"{record.get('run_id')!r}: it is another run's model")
    if hashlib.sha256(data).hexdigest() != entry.get("sha256"):
        raise SaflexError(f"weights file {path} is not the one recorded (its SHA-256 differs): a stale or altered "
                          f"file; restore it or rerun the run")
    return tensors
