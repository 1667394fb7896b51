"""Weight-space ensembling (WiSE-FT, Wortsman et al. 2022), the 'w/ ensembling' columns of Table 4.

theta(alpha) = (1 - alpha) * theta_zero_shot + alpha * theta_fine_tuned over every floating-point
tensor of the model (both CLIP towers and the logit scale); alpha is picked on a validation split.
Written as (1 - a) * x + a * y, alpha = 0 and alpha = 1 give the endpoints bit for bit.
"""
from __future__ import annotations

import copy
from typing import Callable

import torch
from torch import Tensor, nn

DEFAULT_ALPHAS = tuple(round(0.1 * i, 1) for i in range(11))


def interpolate_state(zero_shot: dict[str, Tensor], fine_tuned: dict[str, Tensor], alpha: float) -> dict[str, Tensor]:
    """theta(alpha); integer buffers (token ids, counters) are taken from the fine-tuned model."""
    return {name: (1 - alpha) * zero_shot[name] + alpha * value if value.is_floating_point() else value.clone()
            for name, value in fine_tuned.items()}


class WeightEnsemble:
    """Scores a model and its best interpolation with the zero-shot weights it started from.

    `score(model, splits)` -> {split: {metric: value}}. The zero-shot copy is taken at
    construction (before any training) and its scores, which never change, are computed once.
    """

    def __init__(self, model: nn.Module, score: Callable[[nn.Module, tuple[str, ...]], dict],
                 select_split: str, select_metric: str, alphas=DEFAULT_ALPHAS):
        if not alphas or min(alphas) < 0 or max(alphas) > 1:
            raise ValueError(f"ensembling weights must lie in [0, 1], got {alphas}")
        self.zero_shot = {name: value.detach().clone() for name, value in model.state_dict().items()}
        self.scratch = copy.deepcopy(model).eval()
        self.score, self.alphas = score, tuple(sorted(set(alphas)))
        self.select_split, self.select_metric = select_split, select_metric
        self._zero_shot_scores: dict[str, dict] = {}

    @torch.no_grad()
    def interpolated(self, model: nn.Module, alpha: float) -> nn.Module:
        self.scratch.load_state_dict(interpolate_state(self.zero_shot, model.state_dict(), alpha))
        return self.scratch

    def scores_at(self, model: nn.Module, alpha: float, splits: tuple[str, ...], fine_tuned: dict) -> dict:
        if alpha == 1:
            return {s: fine_tuned[s] for s in splits}
        if alpha == 0:
            todo = tuple(s for s in splits if s not in self._zero_shot_scores)
            if todo:
                self._zero_shot_scores.update(self.score(self.interpolated(model, 0.0), todo))
            return {s: self._zero_shot_scores[s] for s in splits}
        return self.score(self.interpolated(model, alpha), splits)

    def __call__(self, model: nn.Module, fine_tuned: dict, report: tuple[str, ...]) -> tuple[float, dict]:
        """(alpha chosen on the selection split, scores at that alpha on the selection + report splits).

        `fine_tuned` holds the model's own scores (alpha = 1) on those splits.
        """
        by_alpha = {a: self.scores_at(model, a, (self.select_split,), fine_tuned) for a in self.alphas}
        best = max(self.alphas, key=lambda a: (by_alpha[a][self.select_split][self.select_metric], a))
        return best, {**by_alpha[best], **self.scores_at(model, best, report, fine_tuned)}
