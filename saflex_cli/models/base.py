"""Every backbone is a Classifier: input preparation, a feature body and a linear head.

Keeping preparation (e.g. uint8 -> normalised float) inside the model lets augmenters work on
raw inputs and lets the trainer and the SAflex core treat every family alike. The explicit
`features` / `head` split is what the last-layer Pi mode needs.
"""
from __future__ import annotations

import torch
from torch import Tensor, nn


class ImageNormalize(nn.Module):
    """uint8-range images -> (x / 255 - mean) / std, per channel."""

    def __init__(self, mean, std):
        super().__init__()
        self.register_buffer("mean", torch.tensor(mean, dtype=torch.float32).view(1, -1, 1, 1) * 255.0, persistent=False)
        self.register_buffer("std", torch.tensor(std, dtype=torch.float32).view(1, -1, 1, 1) * 255.0, persistent=False)

    def forward(self, x: Tensor) -> Tensor:
        return (x.float() - self.mean) / self.std


class Classifier(nn.Module):
    def __init__(self, body: nn.Module, feature_dim: int, num_classes: int, prepare: nn.Module | None = None):
        super().__init__()
        self.prepare = prepare or nn.Identity()
        self.body = body
        self.head = nn.Linear(feature_dim, num_classes)

    def features(self, x) -> Tensor:
        return self.body(self.prepare(x))

    def forward(self, x) -> Tensor:
        return self.head(self.features(x))
