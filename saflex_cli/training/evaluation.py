"""Evaluate a classifier on fixed splits, in a fixed order and batch size.

A fixed order and batch size matter for models whose prediction depends on the other rows of
its batch (SAINT's intersample attention): the same model then always gets the same score. The
forward runs at the run's precision (runtime.autocast), as training did.
"""
from __future__ import annotations

import numpy as np
import torch
from torch import nn

from ..compute.runtime import autocast
from ..data.batches import split_batches
from ..data.splits import Split
from . import metrics


@torch.no_grad()
def predict_probs(model: nn.Module, split: Split, batch_size: int, device: torch.device,
                  precision: str = "auto") -> np.ndarray:
    was_training = model.training
    model.eval()
    outputs = []
    with autocast(device, precision):
        for inputs, _ in split_batches(split, batch_size, device):
            outputs.append(torch.softmax(model(inputs).float(), dim=1).cpu())
    model.train(was_training)
    return torch.cat(outputs).numpy()


class ClassifierEvaluator:
    """Metrics of a (B, K)-logit classifier on named splits held on the device."""

    def __init__(self, splits: dict[str, Split], metric_names, batch_size: int, device: torch.device,
                 precision: str = "auto"):
        # The share of the most predicted class is always kept: the report flags one-class models.
        self.splits, self.metric_names = splits, tuple(dict.fromkeys((*metric_names, "top_prediction_share")))
        self.batch_size, self.device, self.precision = batch_size, device, precision

    def __call__(self, model: nn.Module) -> dict[str, dict[str, float]]:
        return {name: metrics.compute(self.metric_names, predict_probs(model, split, self.batch_size, self.device, self.precision),
                                      split.targets.cpu().numpy())
                for name, split in self.splits.items()}
