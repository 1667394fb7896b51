"""scikit-learn's digits (8x8 images, 1,797 samples): real data that ships with a dependency,
so the offline demo needs no download."""
from __future__ import annotations

import torch

from .catalog import DataFile, register_catalog
from .splits import Split, Splits

TRAIN_SIZE = 200  # the demo's training images: few, so that the upstream augmentation matters

@register_catalog("digits")
def catalog(root) -> list[DataFile]:
    return [DataFile("digits", None)]


def load_digits_splits(seed: int, train_size: int = TRAIN_SIZE, val_size: int = 200) -> Splits:
    """Flat features in [0, 1]; a seeded split into small train/val sets and a large test set."""
    from sklearn.datasets import load_digits

    digits = load_digits()
    inputs = torch.tensor(digits.data, dtype=torch.float32) / 16.0
    targets = torch.tensor(digits.target, dtype=torch.int64)
    order = torch.randperm(len(targets), generator=torch.Generator().manual_seed(seed))
    train, val, test = order[:train_size], order[train_size:train_size + val_size], order[train_size + val_size:]
    return Splits(Split(inputs[train], targets[train]), Split(inputs[val], targets[val]),
                  Split(inputs[test], targets[test]), num_classes=10, task="multi-class",
                  provenance={"dataset": "sklearn.datasets.load_digits", "split_seed": seed,
                              "counts": {"train": len(train), "val": len(val), "test": len(test)}})
