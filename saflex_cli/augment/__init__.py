"""Upstream augmenters; importing this package registers each of them in AUGMENTERS."""
from . import corrupt, crop, cutmix, mixup, pool, randaug, wilds_randaug  # noqa: F401  (registration)
from .base import AugBatch

__all__ = ["AugBatch"]
