"""A deliberately harmful augmenter: Gaussian noise, and a share of labels shifted by one class.

It exists to show SAflex at work (issue 'Foundation', section 7): a label shifted to the next
class is a systematic error that upstream-only training learns, while a uniformly random wrong
label mostly averages out, which makes a weak test.
"""
from __future__ import annotations

from typing import Annotated

import torch
from torch import Tensor

from ..domains import PROBABILITY, check_arguments, non_negative
from ..registry import AUGMENTERS
from .base import AugBatch


@AUGMENTERS.register("label-shift")
class LabelShiftNoise:
    def __init__(self, noise_std: Annotated[float, non_negative()] = 0.3,
                 shift_fraction: Annotated[float, PROBABILITY] = 0.6):
        check_arguments(LabelShiftNoise.__init__, locals())
        self.noise_std, self.shift_fraction = noise_std, shift_fraction

    def __call__(self, inputs: Tensor, labels: Tensor, generator: torch.Generator) -> AugBatch:
        device = generator.device
        noise = torch.randn(inputs.shape, generator=generator, device=device).to(inputs.device)
        true = labels.argmax(1)
        corrupted = (torch.rand(len(true), generator=generator, device=device) < self.shift_fraction).to(true.device)
        shifted = torch.where(corrupted, (true + 1) % labels.shape[1], true)
        soft = torch.nn.functional.one_hot(shifted, labels.shape[1]).float()
        return AugBatch(inputs.float() + self.noise_std * noise, soft,
                        {"true_labels": true, "corrupted": corrupted})
