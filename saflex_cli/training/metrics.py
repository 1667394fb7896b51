"""Evaluation metrics, each defined as the reference code of its family computes it."""
from __future__ import annotations

import numpy as np
from sklearn.metrics import f1_score, roc_auc_score


def accuracy(probs: np.ndarray, targets: np.ndarray) -> float:
    return float((probs.argmax(1) == targets).mean())


def auc(probs: np.ndarray, targets: np.ndarray) -> float:
    """MedMNIST's getAUC: binary uses the last column; multi-class averages one-vs-rest AUCs.

    A class absent from `targets` has no AUC and is left out of the mean (NaN if none is left).
    """
    if probs.shape[1] == 2:
        return _safe_auc(targets == 1, probs[:, 1])
    per_class = [_safe_auc(targets == k, probs[:, k]) for k in range(probs.shape[1])]
    per_class = [a for a in per_class if not np.isnan(a)]
    return float(np.mean(per_class)) if per_class else float("nan")


def _safe_auc(positive: np.ndarray, score: np.ndarray) -> float:
    if positive.all() or not positive.any():
        return float("nan")
    return float(roc_auc_score(positive, score))


def macro_f1_present(probs: np.ndarray, targets: np.ndarray) -> float:
    """WILDS' F1-macro_all: macro-F1 over the classes present in `targets` only."""
    return float(f1_score(targets, probs.argmax(1), average="macro", labels=np.unique(targets)))


def balanced_accuracy(probs: np.ndarray, targets: np.ndarray) -> float:
    predictions = probs.argmax(1)
    recalls = [(predictions[targets == k] == k).mean() for k in np.unique(targets)]
    return float(np.mean(recalls))


def top_prediction_share(probs: np.ndarray, targets: np.ndarray) -> float:
    """The share of samples given the most often predicted class: 1.0 is a one-class classifier."""
    return float(np.bincount(probs.argmax(1), minlength=probs.shape[1]).max() / max(1, len(probs)))


METRICS = {"acc": accuracy, "auc": auc, "macro_f1": macro_f1_present, "balanced_acc": balanced_accuracy,
           "top_prediction_share": top_prediction_share}


def compute(names, probs: np.ndarray, targets: np.ndarray) -> dict[str, float]:
    return {name: METRICS[name](probs, targets) for name in names}
