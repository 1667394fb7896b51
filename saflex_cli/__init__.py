"""saflex: SAflex (ICLR 2024) as a drop-in step for any training loop, and a reproduction CLI.

    from saflex_cli import refine, saflex_loss
    refined = refine(model, x_aug, y_aug, x_val, y_val, beta=0.0, tau=0.01)
    loss = saflex_loss(model, x, y, x_aug, refined)

    # Inside a training loop, with the cheaper Pi of the final layer (docs/performance.md):
    step = SaflexStep(beta=0.0, tau=0.01, pi_mode="last-layer")
    loss, refined = step.training_loss(model, x, y, x_aug, y_aug, val_batches)
"""
from . import augment, families, models  # noqa: F401  (fill the registries)
from .core import Refined, SaflexStep, extrapolate, refine, saflex_loss
from .objectives import Contrastive, CrossEntropy, Objective

__all__ = ["Contrastive", "CrossEntropy", "Objective", "Refined", "SaflexStep", "extrapolate", "refine", "saflex_loss"]
