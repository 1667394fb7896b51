"""A pool of generated images as an upstream augmenter (paper Section 4.3, Table 3).

Each step draws, uniformly with replacement, as many pool images as the real batch holds; they
come with their class as the upstream label and their source id (method x prompt x setting),
so the trainer can count per source and class what SAflex kept and relabelled. The pool is
small (ALIA adds as many images as the real extra set: 1,000 for CUB, 2,224 for iWildCam) and
stays resident on the device as uint8, so it goes through the trainer's one path.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from ..registry import AUGMENTERS
from .base import AugBatch


@AUGMENTERS.register("pool")
class GeneratedPool:
    def __init__(self, images: Tensor, labels: Tensor, sources: Tensor):
        if not len(images) == len(labels) == len(sources) or len(images) == 0:
            raise ValueError("a pool needs as many labels and source ids as images, and at least one image")
        self.images, self.labels, self.sources = images, labels.long(), sources.long()

    def __call__(self, inputs, labels: Tensor, generator: torch.Generator) -> AugBatch:
        index = torch.randint(len(self.labels), (len(labels),), generator=generator, device=generator.device)
        index = index.to(self.labels.device)
        soft = F.one_hot(self.labels[index], labels.shape[1]).to(labels.dtype)
        return AugBatch(self.images[index].to(labels.device), soft.to(labels.device),
                        {"source": self.sources[index].to(labels.device)})
