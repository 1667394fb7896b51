"""Backbones; importing this package registers each of them in BACKBONES.

May import data/, store/ and the floor; never augment/, compute/, the method or above.
"""
from . import mlp, resnet, resnet_small, tabular, timm_backbones  # noqa: F401  (registration)
from .base import Classifier

__all__ = ["Classifier"]
