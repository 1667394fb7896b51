"""Tiny models and MedMNIST-format files built by the tests themselves (no download)."""
from __future__ import annotations

import copy
import os

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

torch.set_num_threads(2)
# The suite never touches the network: a missing file must be named, not downloaded.
os.environ.setdefault("SAFLEX_OFFLINE", "1")


class TinyCNN(nn.Module):
    """Conv + BatchNorm + linear head: small enough for per-sample brute-force autograd."""

    def __init__(self, in_channels: int = 3, num_classes: int = 4, batchnorm: bool = True):
        super().__init__()
        self.body = nn.Sequential(nn.Conv2d(in_channels, 6, 3, padding=1),
                                  nn.BatchNorm2d(6) if batchnorm else nn.Identity(), nn.ReLU(),
                                  nn.AdaptiveAvgPool2d(2), nn.Flatten())
        self.head = nn.Linear(24, num_classes)

    def forward(self, x):
        return self.head(self.body(x))


def tiny_mlp(in_features: int = 5, num_classes: int = 3, batchnorm: bool = False, hidden: int = 16) -> nn.Module:
    layers = [nn.Linear(in_features, hidden)]
    if batchnorm:
        layers.append(nn.BatchNorm1d(hidden))
    layers += [nn.Tanh(), nn.Linear(hidden, num_classes)]
    return nn.Sequential(*layers)


def brute_force_pi(model, x_aug, grad):
    """-<grad_theta log p_k(x_i), g> for every i, k, one backward per entry."""
    model = copy.deepcopy(model)
    params = [p for p in model.parameters() if p.requires_grad]
    log_probs = F.log_softmax(model(x_aug), dim=1)
    pi = torch.zeros_like(log_probs)
    for i in range(log_probs.shape[0]):
        for k in range(log_probs.shape[1]):
            grads = torch.autograd.grad(log_probs[i, k], params, retain_graph=True)
            pi[i, k] = -sum((a * b).sum() for a, b in zip(grads, grad.values()))
    return pi


def write_medmnist_npz(path, counts=(48, 16, 16), num_classes=7, channels=3, size=28, seed=0):
    """An npz in the official MedMNIST layout: {split}_images uint8 (N,H,W[,C]), {split}_labels (N,1)."""
    rng = np.random.default_rng(seed)
    arrays = {}
    for split, count in zip(("train", "val", "test"), counts):
        shape = (count, size, size, channels) if channels == 3 else (count, size, size)
        labels = rng.integers(0, num_classes, size=(count, 1))
        images = rng.integers(0, 60, size=shape).astype(np.uint8)
        # A learnable signal: the class sets the brightness of a corner patch.
        images[:, :8, :8] = (labels[:, 0] * (255 // num_classes)).astype(np.uint8).reshape((-1,) + (1,) * (len(shape) - 1))
        arrays[f"{split}_images"], arrays[f"{split}_labels"] = images, labels.astype(np.uint8)
    np.savez_compressed(path, **arrays)
    return path


@pytest.fixture
def offline(monkeypatch):
    monkeypatch.setenv("SAFLEX_OFFLINE", "1")
