"""RandAugment (Cubuk et al. 2020) with its own ops for each sample, batched by op.

torchvision's RandAugment, applied to a batch tensor, draws one op for the whole batch. Here
each sample draws `num_ops` ops (and a sign for signed ones); samples sharing an (op, sign) are
transformed together, so a step costs at most 27 batched calls per op slot, not one per image,
and one host sync per op slot (the group sizes), not one per group.
The op list and magnitude bins are torchvision's (num_bins=31), on uint8 images.
"""
from __future__ import annotations

import math

import torch
import torchvision.transforms.v2.functional as TF
from torch import Tensor

from ..registry import AUGMENTERS
from .base import AugBatch

NUM_BINS = 31


def _affine(img: Tensor, **kwargs) -> Tensor:
    return TF.affine(img, angle=kwargs.get("angle", 0.0), translate=kwargs.get("translate", [0, 0]),
                     scale=1.0, shear=kwargs.get("shear", [0.0, 0.0]),
                     interpolation=TF.InterpolationMode.NEAREST, fill=0, center=[0, 0])


def _ops(height: int, width: int, magnitude: int):
    """name -> (signed, apply(img, sign)), magnitudes as torchvision's RandAugment bins."""
    def bin_of(high: float) -> float:
        return float(torch.linspace(0.0, high, NUM_BINS)[magnitude])

    shear, rotate, color = bin_of(0.3), bin_of(30.0), bin_of(0.9)
    shift_x, shift_y = int(bin_of(150.0 / 331.0 * width)), int(bin_of(150.0 / 331.0 * height))
    bits = int(8 - round(magnitude / ((NUM_BINS - 1) / 4)))
    threshold = float(torch.linspace(255.0, 0.0, NUM_BINS)[magnitude])
    return {
        "identity": (False, lambda x, s: x),
        "shear_x": (True, lambda x, s: _affine(x, shear=[math.degrees(math.atan(s * shear)), 0.0])),
        "shear_y": (True, lambda x, s: _affine(x, shear=[0.0, math.degrees(math.atan(s * shear))])),
        "translate_x": (True, lambda x, s: _affine(x, translate=[s * shift_x, 0])),
        "translate_y": (True, lambda x, s: _affine(x, translate=[0, s * shift_y])),
        "rotate": (True, lambda x, s: TF.rotate(x, s * rotate, fill=0)),
        "brightness": (True, lambda x, s: TF.adjust_brightness(x, 1.0 + s * color)),
        "color": (True, lambda x, s: TF.adjust_saturation(x, 1.0 + s * color)),
        "contrast": (True, lambda x, s: TF.adjust_contrast(x, 1.0 + s * color)),
        "sharpness": (True, lambda x, s: TF.adjust_sharpness(x, 1.0 + s * color)),
        "posterize": (False, lambda x, s: TF.posterize(x, bits)),
        "solarize": (False, lambda x, s: TF.solarize(x, threshold)),
        "autocontrast": (False, lambda x, s: TF.autocontrast(x)),
        "equalize": (False, lambda x, s: TF.equalize(x)),
    }


@AUGMENTERS.register("randaug")
class RandAugment:
    def __init__(self, num_ops: int = 2, magnitude: int = 9):
        if not 0 <= magnitude < NUM_BINS:
            raise ValueError(f"magnitude must be in [0, {NUM_BINS - 1}], got {magnitude}")
        self.num_ops, self.magnitude = num_ops, magnitude

    def __call__(self, images: Tensor, labels: Tensor, generator: torch.Generator) -> AugBatch:
        if images.dtype != torch.uint8:
            raise TypeError("RandAugment works on uint8 images, before normalisation")
        ops = list(_ops(images.shape[-2], images.shape[-1], self.magnitude).values())
        # Each (op, sign) is one group; ops without a sign use only the '+' group.
        groups = [(apply, sign) for signed, apply in ops for sign in ((1, -1) if signed else (1,))]
        first_group = torch.tensor([0] + [2 if signed else 1 for signed, _ in ops[:-1]]).cumsum(0)
        signed = torch.tensor([signed for signed, _ in ops])
        out = images.clone()
        batch = images.shape[0]
        for _ in range(self.num_ops):
            choice = torch.randint(len(ops), (batch,), generator=generator, device=generator.device)
            negative = torch.rand(batch, generator=generator, device=generator.device) < 0.5
            group = (first_group.to(choice.device)[choice] + (negative & signed.to(choice.device)[choice])).to(images.device)
            # Samples sorted by group; one read of the group sizes is this slot's only host sync.
            order = torch.argsort(group, stable=True)
            sizes = torch.bincount(group, minlength=len(groups)).tolist()
            for (apply, sign), index in zip(groups, torch.split(order, sizes)):
                if len(index):
                    out[index] = apply(out[index], sign)
        return AugBatch(out, labels)
