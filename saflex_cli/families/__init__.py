"""Experiment families; importing this package registers each recipe in FAMILIES.

May import training and everything beneath it; never runs, reporting or the CLI.
"""
from . import demo, diffusion, flyp, images, medmnist, tabular  # noqa: F401  (registration)
from .base import Cell, Recipe

__all__ = ["Cell", "Recipe"]
