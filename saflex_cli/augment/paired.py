"""Image augmenters on paired inputs: augment the images of (images, texts, ...), keep the rest.

Contrastive batches are (images, caption tokens); an image augmenter such as RandAugment should
change the images only. The untouched parts are passed on as the same tensors, so an objective
can tell that the captions were not augmented (and encode them once).
"""
from __future__ import annotations

import torch
from torch import Tensor

from .base import AugBatch


class ImagePart:
    def __init__(self, augmenter):
        self.augmenter = augmenter

    def __call__(self, inputs, labels: Tensor, generator: torch.Generator) -> AugBatch:
        if isinstance(inputs, Tensor):
            return self.augmenter(inputs, labels, generator)
        augmented = self.augmenter(inputs[0], labels, generator)
        return AugBatch(type(inputs)([augmented.inputs, *inputs[1:]]), augmented.labels, augmented.meta)
