"""Checkpoints of one run: written atomically, the newest readable one wins.

timm, torchvision and accelerate write "latest" in place and keep no RNG state, so a kill
mid-save leaves a torn file and a resumed run draws different augmentations. Here each
checkpoint is a new file (temp file, fsync, os.replace); the previous one is deleted only once
the new one is in place, and a checkpoint that does not load is set aside with a warning and
the one before it used.
"""
from __future__ import annotations

import random
import shutil
import warnings
from pathlib import Path

import numpy as np
import torch

from ..store.files import atomic_write

FORMAT = 1
KEEP = 2  # the newest and the one before it, in case the newest turns out unreadable


def rng_state() -> dict:
    """Every global RNG a run may draw from: python, numpy, torch CPU, each CUDA device."""
    kind, key, pos, has_gauss, gauss = np.random.get_state()
    return {"python": random.getstate(), "numpy": (kind, torch.from_numpy(key.astype(np.int64)), pos, has_gauss, gauss),
            "torch": torch.get_rng_state(),
            # Only once CUDA is in use (its generator states are host-side: no context is created).
            "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_initialized() else []}


def set_rng_state(state: dict) -> None:
    random.setstate(state["python"])
    kind, key, pos, has_gauss, gauss = state["numpy"]
    np.random.set_state((kind, key.numpy().astype(np.uint32), pos, has_gauss, gauss))
    torch.set_rng_state(state["torch"])
    if state["cuda"] and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"][: torch.cuda.device_count()])


def plain(value):
    """Numpy scalars and arrays as Python numbers and tensors: what `weights_only` loading accepts,
    so a metric returned as np.float64 cannot make every checkpoint unreadable."""
    if isinstance(value, dict):
        return {k: plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(plain(v) for v in value)
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return torch.from_numpy(value)
    return value


class Checkpoints:
    """The checkpoint folder of one run: <folder>/e<epochs done>-s<steps into the next>.pt."""

    def __init__(self, folder: Path, keep: int = KEEP):
        self.folder, self.keep = Path(folder), keep

    def paths(self) -> list[Path]:
        """Newest first (names sort by epoch, then step)."""
        return sorted(self.folder.glob("e*-s*.pt"), reverse=True) if self.folder.is_dir() else []

    def save(self, state: dict, run_id: str, epoch: int, step: int) -> Path:
        path = self.folder / f"e{epoch:05d}-s{step:08d}.pt"
        payload = {"format": FORMAT, "run_id": run_id, "state": plain(state)}
        atomic_write(path, lambda handle: torch.save(payload, handle), binary=True)
        for old in self.paths()[self.keep:]:
            old.unlink(missing_ok=True)
        return path

    def load_latest(self, run_id: str) -> dict | None:
        """The newest checkpoint of this run that loads; unreadable ones are renamed *.unreadable."""
        for path in self.paths():
            try:
                payload = torch.load(path, map_location="cpu", weights_only=True)
                if payload.get("format") != FORMAT or payload.get("run_id") != run_id:
                    raise ValueError(f"written for run {payload.get('run_id')!r}, format {payload.get('format')!r}")
                return payload["state"]
            except Exception as error:  # a torn or foreign file: any unpickling error
                aside = path.with_name(path.name + ".unreadable")
                try:
                    path.replace(aside)
                except FileNotFoundError:  # another rank of this run set it aside first
                    pass
                warnings.warn(f"checkpoint {path} is unreadable ({type(error).__name__}: {error}); "
                              f"set aside as {aside.name}, trying the previous one", stacklevel=2)
        return None

    def clear(self) -> None:
        """Called once the run's record is written: the record now holds what matters."""
        shutil.rmtree(self.folder, ignore_errors=True)
        for parent in (self.folder.parent, self.folder.parent.parent):  # <family>, checkpoints/
            try:
                parent.rmdir()
            except OSError:  # not empty: other runs' checkpoints
                break
