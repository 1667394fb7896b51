"""Mixup (Zhang et al. 2018) with a coefficient per sample and shuffled partners.

torchvision's MixUp pairs each sample with its neighbour in the batch and uses one coefficient
per batch; here the partner is a random permutation and lambda ~ Beta(alpha, alpha) per sample,
so the soft label of each augmented sample is lambda * y_i + (1 - lambda) * y_partner.
Everything is drawn on the generator's device with no host sync (torch's own Gamma sampler takes
no generator, so Beta is built here from Gamma draws).
"""
from __future__ import annotations

import math
from typing import Annotated

import torch
from torch import Tensor

from ..domains import check_arguments, positive
from ..registry import AUGMENTERS
from .base import AugBatch

PROPOSALS = 16  # Marsaglia-Tsang accepts >= 95% of proposals: all 16 fail with p < 1e-20


def standard_gamma(shape: float, count: int, generator: torch.Generator) -> Tensor:
    """Gamma(shape, 1) draws by Marsaglia & Tsang (2000), a fixed number of proposals per draw
    (the first accepted one is kept), so no data-dependent loop; shape < 1 uses
    Gamma(a) = Gamma(a + 1) * U^(1/a)."""
    device = generator.device
    a = shape + 1.0 if shape < 1 else shape
    d = a - 1.0 / 3.0
    c = 1.0 / math.sqrt(9.0 * d)
    x = torch.randn(count, PROPOSALS, generator=generator, device=device)
    u = torch.rand(count, PROPOSALS, generator=generator, device=device)
    v = (1.0 + c * x) ** 3
    tiny = torch.finfo(v.dtype).tiny
    accept = (v > 0) & (torch.log(u.clamp_min(tiny)) < 0.5 * x * x + d - d * v + d * torch.log(v.clamp_min(tiny)))
    first = accept.float().argmax(dim=1, keepdim=True)
    draws = d * v.gather(1, first).squeeze(1).clamp_min(tiny)
    if shape < 1:
        draws = draws * torch.rand(count, generator=generator, device=device).clamp_min(tiny) ** (1.0 / shape)
    return draws.clamp_min(tiny)


def sample_beta(alpha: float, count: int, generator: torch.Generator) -> Tensor:
    """Beta(alpha, alpha) as G1 / (G1 + G2) with independent Gamma(alpha) draws."""
    first, second = standard_gamma(alpha, count, generator), standard_gamma(alpha, count, generator)
    return first / (first + second)


@AUGMENTERS.register("mixup")
class Mixup:
    def __init__(self, alpha: Annotated[float, positive()] = 1.0):
        check_arguments(Mixup.__init__, locals())
        self.alpha = alpha

    def __call__(self, inputs: Tensor, labels: Tensor, generator: torch.Generator) -> AugBatch:
        batch = inputs.shape[0]
        partner = torch.randperm(batch, generator=generator, device=generator.device).to(inputs.device)
        lam = sample_beta(self.alpha, batch, generator).to(inputs.device)
        shape = (batch,) + (1,) * (inputs.dim() - 1)
        x = inputs.float()
        mixed = lam.view(shape) * x + (1 - lam.view(shape)) * x[partner]
        soft = lam[:, None] * labels + (1 - lam[:, None]) * labels[partner]
        return AugBatch(mixed, soft, {"mixing_coefficient": lam})
