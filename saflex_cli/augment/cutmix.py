"""CutMix for tables (SAINT's `add_noise(..., 'cutmix')`, Yun et al. 2019 for rows).

Each row draws a partner row of the batch (a random permutation, as in SAINT); each cell is
replaced, with probability `prob`, by the partner's value of the same feature. The label is kept:
that is exactly the label noise SAflex is meant to correct (paper Sec. 4, 'tabular data').
Categorical codes are swapped whole, so a cell always holds a valid code of its own column.

Default prob 0.3, not SAINT's 0.1: the paper cites 0.1 as too weak to help tabular models and
motivates SAflex by the noise of larger probabilities; 0.3 replaces about a third of each row
(docs/tabular.md).
"""
from __future__ import annotations

from typing import Annotated

import torch
from torch import Tensor

from ..domains import PROBABILITY, check_arguments
from ..registry import AUGMENTERS
from .base import AugBatch

DEFAULT_PROB = 0.3


@AUGMENTERS.register("cutmix")
class TabularCutMix:
    def __init__(self, prob: Annotated[float, PROBABILITY] = DEFAULT_PROB):
        check_arguments(TabularCutMix.__init__, locals())
        self.prob = prob

    def __call__(self, inputs: Tensor, labels: Tensor, generator: torch.Generator) -> AugBatch:
        batch = inputs.shape[0]
        partner = torch.randperm(batch, generator=generator, device=generator.device).to(inputs.device)
        replace = (torch.rand(inputs.shape, generator=generator, device=generator.device) < self.prob).to(inputs.device)
        mixed = torch.where(replace, inputs[partner], inputs)
        return AugBatch(mixed, labels, {"replaced_fraction": replace.float().mean()})
