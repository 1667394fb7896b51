"""RandAugment (Cubuk et al. 2020) with its own ops for each sample, vectorised over the batch.

torchvision's RandAugment, applied to a batch tensor, draws one op for the whole batch. Here
each sample draws `num_ops` ops (and a sign for signed ones). Each op family then runs once over
the whole batch with per-sample parameters (one affine grid for shear / translate / rotate,
per-sample factors for the brightness / color / contrast / sharpness blends) and every sample
takes its own op's result: a fixed number of kernels per op slot and no host sync, which is
what keeps a GPU fed on 28x28 images. Ops, magnitude bins (num_bins=31) and formulas are
torchvision's, on uint8 images; a test checks every (op, sign) against torchvision's function.
"""
from __future__ import annotations

import math
from typing import Annotated

import torch
import torch.nn.functional as F
import torchvision.transforms.v2.functional as TF
from torch import Tensor

from ..domains import check_arguments, integer
from ..registry import AUGMENTERS
from .base import AugBatch

NUM_BINS = 31
OPS = ("identity", "shear_x", "shear_y", "translate_x", "translate_y", "rotate", "brightness", "color",
       "contrast", "sharpness", "posterize", "solarize", "autocontrast", "equalize")
SIGNED = frozenset(OPS[1:10])  # contiguous: draw() tests the index range
GEOMETRIC = OPS[1:6]


def bin_value(high: float, magnitude: int) -> float:
    return float(torch.linspace(0.0, high, NUM_BINS)[magnitude])


def inverse_affine(center: tuple[float, float], angle: float, translate: tuple[float, float],
                   shear: tuple[float, float]) -> list[float]:
    """torchvision's inverse affine matrix (scale 1), the same float arithmetic in the same order."""
    rot, sx, sy = math.radians(angle), math.radians(shear[0]), math.radians(shear[1])
    cx, cy = center
    cos_sy, tan_sx = math.cos(sy), math.tan(sx)
    a = math.cos(rot - sy) / cos_sy
    b = -(a * tan_sx + math.sin(rot))
    c = math.sin(rot - sy) / cos_sy
    d = math.cos(rot) - c * tan_sx
    matrix = [d / 1.0, -b / 1.0, 0.0, -c / 1.0, a / 1.0, 0.0]
    matrix[2] += cx - matrix[0] * (cx + translate[0]) - matrix[1] * (cy + translate[1])
    matrix[5] += cy - matrix[3] * (cx + translate[0]) - matrix[4] * (cy + translate[1])
    return matrix


def geometric_matrices(height: int, width: int, magnitude: int) -> dict[tuple[str, int], list[float]]:
    """(op, sign) -> inverse matrix, as TF.affine (sheared about the top-left corner, as torchvision's
    RandAugment does) and TF.rotate (about the centre, angle taken mod 360) build them."""
    shear, rotate = bin_value(0.3, magnitude), bin_value(30.0, magnitude)
    shift_x = int(bin_value(150.0 / 331.0 * width, magnitude))
    shift_y = int(bin_value(150.0 / 331.0 * height, magnitude))
    corner = (-width * 0.5, -height * 0.5)
    matrices = {}
    for sign in (1, -1):
        matrices["shear_x", sign] = inverse_affine(corner, 0.0, (0.0, 0.0),
                                                   (math.degrees(math.atan(sign * shear)), 0.0))
        matrices["shear_y", sign] = inverse_affine(corner, 0.0, (0.0, 0.0),
                                                   (0.0, math.degrees(math.atan(sign * shear))))
        matrices["translate_x", sign] = inverse_affine(corner, 0.0, (float(sign * shift_x), 0.0), (0.0, 0.0))
        matrices["translate_y", sign] = inverse_affine(corner, 0.0, (0.0, float(sign * shift_y)), (0.0, 0.0))
        matrices["rotate", sign] = inverse_affine((0.0, 0.0), -((sign * rotate) % 360), (0.0, 0.0), (0.0, 0.0))
    return matrices


def per_sample_affine(images: Tensor, theta: Tensor) -> Tensor:
    """TF.affine's nearest-neighbour grid transform with fill 0, one (2, 3) matrix per sample."""
    batch, _, height, width = images.shape
    base = torch.empty(1, height, width, 3, device=images.device)
    base[..., 0].copy_(torch.linspace((1.0 - width) * 0.5, (width - 1.0) * 0.5, steps=width, device=images.device))
    base[..., 1].copy_(torch.linspace((1.0 - height) * 0.5, (height - 1.0) * 0.5, steps=height,
                                      device=images.device).unsqueeze_(-1))
    base[..., 2].fill_(1)
    columns = theta.transpose(1, 2)  # (B, 3, 2), divided by the half sizes as python scalars: no copy to the device
    rescaled = torch.stack([columns[..., 0] / (0.5 * width), columns[..., 1] / (0.5 * height)], dim=-1)
    grid = base.view(1, height * width, 3).expand(batch, -1, -1).bmm(rescaled)
    moved = F.grid_sample(images.float(), grid.view(batch, height, width, 2), mode="nearest",
                          padding_mode="zeros", align_corners=False)
    return moved.round_().to(images.dtype)


def blend(images: Tensor, other: Tensor, ratio: Tensor) -> Tensor:
    """torchvision's _blend with a ratio per sample (B, 1, 1, 1), rounded to float32 as its scalar is."""
    return (images.mul(ratio.float()).add_(other * (1.0 - ratio).float())).clamp_(0, 255).to(images.dtype)


def grayscale(images: Tensor) -> Tensor:
    r, g, b = images.unbind(dim=-3)
    return r.mul(0.2989).add_(g, alpha=0.587).add_(b, alpha=0.114).unsqueeze(-3).floor_()


def contrast(images: Tensor, ratio: Tensor) -> Tensor:
    gray = grayscale(images) if images.shape[-3] == 3 else images.float()
    return blend(images, gray.mean(dim=(-3, -2, -1), keepdim=True), ratio)


def sharpness(images: Tensor, ratio: Tensor) -> Tensor:
    """TF.adjust_sharpness: blend with a 3x3 blur inside a one-pixel border that is kept."""
    channels, height, width = images.shape[-3:]
    if height <= 2 or width <= 2:
        return images
    kernel = torch.full((3, 3), 1.0 / 13.0, device=images.device)
    kernel[1, 1] = 5.0 / 13.0
    kernel = kernel.expand(channels, 1, 3, 3)
    out = images.float()
    blurred = F.conv2d(out, kernel, groups=channels).round_()
    inner = out[..., 1:-1, 1:-1]
    inner.add_(blurred.sub_(inner) * (1.0 - ratio).float())
    return out.clamp_(0, 255).to(images.dtype)


@AUGMENTERS.register("randaug")
class RandAugment:
    def __init__(self, num_ops: Annotated[int, integer(1)] = 2,
                 magnitude: Annotated[int, integer(0, NUM_BINS - 1, note="torchvision's magnitude bins")] = 9):
        check_arguments(RandAugment.__init__, locals())
        self.num_ops, self.magnitude = num_ops, magnitude
        self.matrices: dict[tuple, Tensor] = {}  # (device, height, width) -> (op, sign, 6) inverse matrices

    def matrix_table(self, device: torch.device, height: int, width: int) -> Tensor:
        """Made and copied to the device once: a host-to-device copy each step would be a sync each step."""
        key = (device, height, width)
        if key not in self.matrices:
            identity = [1.0, 0.0, 0.0, 0.0, 1.0, 0.0]
            matrices = geometric_matrices(height, width, self.magnitude)
            self.matrices[key] = torch.tensor([[matrices.get((op, s), identity) for s in (1, -1)] for op in OPS],
                                              dtype=torch.float64).to(device)
        return self.matrices[key]

    def draw(self, batch: int, generator: torch.Generator) -> tuple[Tensor, Tensor]:
        """One op slot: an op index and a sign (+1 or -1; +1 for unsigned ops) per sample."""
        choice = torch.randint(len(OPS), (batch,), generator=generator, device=generator.device)
        negative = torch.rand(batch, generator=generator, device=generator.device) < 0.5
        signed = (choice >= OPS.index("shear_x")) & (choice <= OPS.index("sharpness"))  # OPS[1:10]
        return choice, 1 - 2 * (negative & signed).long()

    def apply(self, images: Tensor, choice: Tensor, sign: Tensor) -> Tensor:
        """Every sample's op (choice) with its sign, each op family computed once for the batch."""
        batch, _, height, width = images.shape
        choice, sign = choice.to(images.device), sign.to(images.device)
        theta = self.matrix_table(images.device, height, width)[choice, (sign < 0).long()].float().view(batch, 2, 3)
        color = bin_value(0.9, self.magnitude)
        ratio = (1.0 + sign.double() * color).view(batch, 1, 1, 1)
        bits = int(8 - round(self.magnitude / ((NUM_BINS - 1) / 4)))
        results = {
            "identity": images,
            "geometric": per_sample_affine(images, theta),
            "brightness": images.mul(ratio.float()).clamp_(0, 255).to(images.dtype),
            "color": images if images.shape[-3] == 1 else blend(images, grayscale(images), ratio),
            "contrast": contrast(images, ratio),
            "sharpness": sharpness(images, ratio),
            "posterize": TF.posterize(images, bits),
            "solarize": TF.solarize(images, float(torch.linspace(255.0, 0.0, NUM_BINS)[self.magnitude])),
            "autocontrast": TF.autocontrast(images),
            "equalize": TF.equalize(images),
        }
        # results[0] identity, [1] the geometric ops (OPS[1:6]), then OPS[6:] in order
        family = torch.where(choice <= len(GEOMETRIC), choice.clamp(max=1), choice - (len(GEOMETRIC) - 1))
        return torch.stack(list(results.values()))[family, torch.arange(batch, device=images.device)]

    def __call__(self, images: Tensor, labels: Tensor, generator: torch.Generator) -> AugBatch:
        if images.dtype != torch.uint8:
            raise TypeError("RandAugment works on uint8 images, before normalisation")
        out = images
        for _ in range(self.num_ops):
            out = self.apply(out, *self.draw(images.shape[0], generator))
        return AugBatch(out, labels)
