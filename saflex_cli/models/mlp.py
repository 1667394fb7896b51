"""A plain MLP on flat feature vectors (the offline demo's model)."""
from __future__ import annotations

from torch import nn

from ..registry import BACKBONES
from .base import Classifier


@BACKBONES.register("mlp")
def mlp(in_features: int, num_classes: int, hidden: tuple[int, ...] = (256, 256),
        dropout: float = 0.0, batchnorm: bool = False) -> Classifier:
    layers, width = [nn.Flatten()], in_features
    for size in hidden:
        layers.append(nn.Linear(width, size))
        if batchnorm:
            layers.append(nn.BatchNorm1d(size))
        layers.append(nn.ReLU())
        if dropout:
            layers.append(nn.Dropout(dropout))
        width = size
    return Classifier(nn.Sequential(*layers), width, num_classes)
