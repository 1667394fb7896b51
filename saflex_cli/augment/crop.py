"""Crop as Soft Augmentation draws it (Liu et al., CVPR 2023; paper Table 7), vectorised over the batch.

Soft Augmentation's public code (youngleox/soft_augmentation, `cifar/utils.py`, SoftCrop) crops
by translation: the image sits on a constant canvas three times its size and a window of the
image's size is taken at integer offsets (dy, dx), each drawn from N(0, sigma), redrawn until
|d| <= the side and truncated toward zero (Python's int()). The canvas is ~0 in their normalised
space, i.e. the training set's mean pixel; here it is the batch's mean pixel per channel (the
same estimate, in the uint8 space this project augments in). Labels stay hard: the visible
fraction v = (H - |dy|)(W - |dx|) / (HW) goes into the meta, for `--refine soft-aug`.

sigma: their 12 px on 32-px CIFAR (read_me.sh, --crop 12), kept as the same fraction of the
side (0.375): 10.5 px on 28-px MedMNIST, so the visible fractions are distributed as on CIFAR
(docs/method.md, "Crop and Soft-Augmentation").
"""
from __future__ import annotations

from typing import Annotated

import torch
from torch import Tensor

from ..domains import check_arguments, positive
from ..registry import AUGMENTERS
from .base import AugBatch

SIGMA_FRACTION = 12 / 32  # Soft Augmentation's sigma (12 px) over CIFAR's side (32 px)
PROPOSALS = 16  # draws per offset; all 16 beyond the side: p < 1e-30 at sigma = 0.375 side, then 0


def draw_offsets(count: int, side: int, sigma: float, generator: torch.Generator) -> Tensor:
    """Integer offsets ~ N(0, sigma), redrawn while |d| > side (the first accepted of a fixed number
    of proposals: no data-dependent loop, no host sync), truncated toward zero as their int() does."""
    draws = torch.randn(count, PROPOSALS, generator=generator, device=generator.device) * sigma
    accepted = draws.abs() <= side
    first = draws.gather(1, accepted.float().argmax(1, keepdim=True)).squeeze(1)
    return torch.where(accepted.any(1), first, torch.zeros_like(first)).trunc().long()


def translate(images: Tensor, dy: Tensor, dx: Tensor) -> tuple[Tensor, Tensor]:
    """(out, visible fraction): out[b, :, i, j] = images[b, :, i + dy_b, j + dx_b] where that pixel
    exists, else the batch's mean pixel of the channel."""
    batch, _, height, width = images.shape
    dy, dx = dy.to(images.device), dx.to(images.device)
    rows = torch.arange(height, device=images.device) + dy[:, None]  # (B, H)
    cols = torch.arange(width, device=images.device) + dx[:, None]  # (B, W)
    inside = ((rows >= 0) & (rows < height))[:, :, None] & ((cols >= 0) & (cols < width))[:, None, :]
    picked = images[torch.arange(batch, device=images.device)[:, None, None], :,
                    rows.clamp(0, height - 1)[:, :, None], cols.clamp(0, width - 1)[:, None, :]]  # (B, H, W, C)
    fill = images.float().mean(dim=(0, 2, 3))
    fill = (fill if images.is_floating_point() else fill.round()).to(images.dtype)
    out = torch.where(inside[..., None], picked, fill).permute(0, 3, 1, 2).contiguous()
    visible = (height - dy.abs()) * (width - dx.abs()) / (height * width)
    return out, visible.float()


@AUGMENTERS.register("crop")
class Crop:
    provides = ("visible_fraction",)  # meta a refiner may read (cli.common checks --refine against it)

    def __init__(self, sigma: Annotated[float, positive()] = SIGMA_FRACTION):  # a fraction of the image side
        check_arguments(Crop.__init__, locals())
        self.sigma = sigma

    def __call__(self, images: Tensor, labels: Tensor, generator: torch.Generator) -> AugBatch:
        batch, _, height, width = images.shape
        dy = draw_offsets(batch, height, self.sigma * height, generator)
        dx = draw_offsets(batch, width, self.sigma * width, generator)
        out, visible = translate(images, dy, dx)
        return AugBatch(out, labels, {"visible_fraction": visible})
