"""Upstream augmenters; importing this package registers each of them in AUGMENTERS.

May import data/, store/ and the floor; never models/, compute/, the method or above.
"""
from . import corrupt, crop, cutmix, mixup, pool, randaug, wilds_randaug  # noqa: F401  (registration)
from .base import AugBatch

__all__ = ["AugBatch"]
