"""Mixup (Zhang et al. 2018) with a coefficient per sample and shuffled partners.

torchvision's MixUp pairs each sample with its neighbour in the batch and uses one coefficient
per batch; here the partner is a random permutation and lambda ~ Beta(alpha, alpha) per sample,
so the soft label of each augmented sample is lambda * y_i + (1 - lambda) * y_partner.
"""
from __future__ import annotations

import torch
from torch import Tensor

from ..registry import AUGMENTERS
from .base import AugBatch, numpy_rng


@AUGMENTERS.register("mixup")
class Mixup:
    def __init__(self, alpha: float = 1.0):
        if alpha <= 0:
            raise ValueError(f"mixup alpha must be > 0, got {alpha}")
        self.alpha = alpha

    def __call__(self, inputs: Tensor, labels: Tensor, generator: torch.Generator) -> AugBatch:
        batch = inputs.shape[0]
        partner = torch.randperm(batch, generator=generator, device=generator.device).to(inputs.device)
        lam = torch.as_tensor(numpy_rng(generator).beta(self.alpha, self.alpha, size=batch),
                              dtype=torch.float32, device=inputs.device)
        shape = (batch,) + (1,) * (inputs.dim() - 1)
        x = inputs.float()
        mixed = lam.view(shape) * x + (1 - lam.view(shape)) * x[partner]
        soft = lam[:, None] * labels + (1 - lam[:, None]) * labels[partner]
        return AugBatch(mixed, soft, {"mixing_coefficient": lam})
