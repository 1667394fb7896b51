"""RandAugment as WILDS' examples run it (FixMatch version), the upstream augmenter of Table 4.

WILDS `examples/data_augmentation/randaugment.py` (adapted there from kekmodel/FixMatch-pytorch):
2 ops drawn with replacement from 14, each applied with probability 0.5 at an integer magnitude
v ~ U{1, ..., m-1} (m = 10) with a random sign for geometric ops, then a 16-pixel grey (127)
Cutout at a uniform centre. Here every sample draws its own ops on uint8 tensors; samples sharing
an (op, magnitude, sign) are transformed together as one batch.
"""
from __future__ import annotations

import math
from typing import Annotated

import torch
import torchvision.transforms.v2.functional as TF
from torch import Tensor

from ..domains import check_arguments, integer
from ..registry import AUGMENTERS
from .base import AugBatch

MAX_LEVEL = 10  # WILDS' _PARAMETER_MAX and randaugment_m
OP_PROBABILITY = 0.5
CUTOUT = 16  # int(32 * 0.5) pixels, at any resolution, as in WILDS
GREY = 127


def _enhance(adjust):
    return lambda x, v, sign: adjust(x, v * 0.9 / MAX_LEVEL + 0.05)


def _affine(x: Tensor, translate=(0, 0), shear=(0.0, 0.0)) -> Tensor:
    # PIL's Image.transform(AFFINE) as WILDS calls it: about the top-left corner, nearest, black fill.
    return TF.affine(x, angle=0.0, translate=list(translate), scale=1.0, shear=list(shear),
                     interpolation=TF.InterpolationMode.NEAREST, fill=0, center=[0, 0])


def _shear(axis: int):
    def apply(x, v, sign):
        angle = math.degrees(math.atan(sign * v * 0.3 / MAX_LEVEL))
        return _affine(x, shear=(angle, 0.0) if axis == 0 else (0.0, angle))
    return apply


def _translate(axis: int):
    def apply(x, v, sign):
        pixels = int(sign * v * 0.3 / MAX_LEVEL * x.shape[-1 - axis])
        return _affine(x, translate=(pixels, 0) if axis == 0 else (0, pixels))
    return apply


# name -> (signed, apply(images, v, sign)); magnitudes as WILDS' FIX_MATCH_AUGMENTATION_POOL
OPS = {
    "autocontrast": (False, lambda x, v, s: TF.autocontrast(x)),
    "brightness": (False, _enhance(TF.adjust_brightness)),
    "color": (False, _enhance(TF.adjust_saturation)),
    "contrast": (False, _enhance(TF.adjust_contrast)),
    "equalize": (False, lambda x, v, s: TF.equalize(x)),
    "identity": (False, lambda x, v, s: x),
    "posterize": (False, lambda x, v, s: TF.posterize(x, int(v * 4 / MAX_LEVEL) + 4)),
    "rotate": (True, lambda x, v, s: TF.rotate(x, s * int(v * 30 / MAX_LEVEL), fill=0)),
    "sharpness": (False, _enhance(TF.adjust_sharpness)),
    "shear_x": (True, _shear(0)),
    "shear_y": (True, _shear(1)),
    "solarize": (False, lambda x, v, s: TF.solarize(x, 256 - int(v * 256 / MAX_LEVEL))),
    "translate_x": (True, _translate(0)),
    "translate_y": (True, _translate(1)),
}


def cutout(images: Tensor, generator: torch.Generator, size: int = CUTOUT) -> Tensor:
    """A size x size grey square per image, centred uniformly, clipped at the border (WILDS' CutoutAbs)."""
    batch, _, height, width = images.shape
    draw = torch.rand(batch, 2, generator=generator, device=generator.device).to(images.device)
    x0 = (draw[:, 0] * width - size / 2).clamp_min(0).long()
    y0 = (draw[:, 1] * height - size / 2).clamp_min(0).long()
    cols = torch.arange(width, device=images.device)
    rows = torch.arange(height, device=images.device)
    # PIL's rectangle includes its far edge: x0..x0+size inclusive, within the image.
    inside_x = (cols[None] >= x0[:, None]) & (cols[None] <= x0[:, None] + size)
    inside_y = (rows[None] >= y0[:, None]) & (rows[None] <= y0[:, None] + size)
    mask = inside_y[:, :, None] & inside_x[:, None, :]
    return images.masked_fill(mask[:, None], GREY)


@AUGMENTERS.register("wilds-randaug")
class WildsRandAugment:
    def __init__(self, num_ops: Annotated[int, integer(1)] = 2,
                 cutout: Annotated[int, integer(0, note="0: no cutout")] = CUTOUT):
        check_arguments(WildsRandAugment.__init__, locals())
        self.num_ops, self.cutout = num_ops, cutout

    def __call__(self, images: Tensor, labels: Tensor, generator: torch.Generator) -> AugBatch:
        if images.dtype != torch.uint8:
            raise TypeError("WILDS RandAugment works on uint8 images, before normalisation")
        ops = list(OPS.values())
        signed = torch.tensor([is_signed for is_signed, _ in ops], device=generator.device)
        out, batch, device = images.clone(), images.shape[0], generator.device
        for _ in range(self.num_ops):
            op = torch.randint(len(ops), (batch,), generator=generator, device=device)
            level = torch.randint(1, MAX_LEVEL, (batch,), generator=generator, device=device)
            negative = (torch.rand(batch, generator=generator, device=device) < 0.5) & signed[op]
            applied = torch.rand(batch, generator=generator, device=device) < OP_PROBABILITY
            code = ((op * MAX_LEVEL + level) * 2 + negative.long()).to(images.device)
            applied = applied.to(images.device)
            for value in torch.unique(code[applied]).tolist():
                index, sign_bit = divmod(value, 2)
                op_index, v = divmod(index, MAX_LEVEL)
                mask = applied & (code == value)
                out[mask] = ops[op_index][1](out[mask], v, -1 if sign_bit else 1)
        return AugBatch(cutout(out, generator, self.cutout) if self.cutout else out, labels)
