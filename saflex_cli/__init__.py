"""saflex: SAflex (ICLR 2024) as a drop-in step for any training loop, and a reproduction CLI.

    from saflex_cli import refine, saflex_loss
    refined = refine(model, x_aug, y_aug, x_val, y_val, beta=0.0, tau=0.01)
    loss = saflex_loss(model, x, y, x_aug, refined)

    # Inside a training loop, with the cheaper Pi of the final layer (docs/performance.md):
    step = SaflexStep(beta=0.0, tau=0.01, pi_mode="last-layer")
    loss, refined = step.training_loss(model, x, y, x_aug, y_aug, val_batches)

The names below are imported on first use (PEP 562), so `import saflex_cli`, and with it
`saflex --help`, does not pay for importing torch.
"""
from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

__version__ = "0.1.0"

_EXPORTS = {  # public name -> the module defining it
    "Contrastive": "method.objectives", "CrossEntropy": "method.objectives", "Objective": "method.objectives",
    "Refined": "method.core", "SaflexStep": "method.core", "extrapolate": "method.core", "refine": "method.core",
    "saflex_loss": "method.core",
}
__all__ = sorted(_EXPORTS)

if TYPE_CHECKING:
    from .method.core import Refined, SaflexStep, extrapolate, refine, saflex_loss
    from .method.objectives import Contrastive, CrossEntropy, Objective


def __getattr__(name: str):
    if name not in _EXPORTS:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{_EXPORTS[name]}", __name__), name)
    globals()[name] = value  # later lookups skip this function
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
