"""A family is a recipe: datasets, upstream augmenters, backbone, objective and the paper's
defaults, plus how its records become cells of the paper's table. One trainer serves them all.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import torch

from ..config import RunConfig
from ..data.batches import CyclingBatches, TensorBatches
from ..data.splits import Splits
from ..evaluation import ClassifierEvaluator
from ..objectives import CrossEntropy, Objective
from ..registry import AUGMENTERS
from ..trainer import TrainSetup


@dataclass(frozen=True)
class Cell:
    """One number of a results table: which row, model and column of the paper it sits in."""

    method: str
    model: str
    column: str
    value: float


@dataclass(frozen=True)
class Recipe:
    name: str
    datasets: tuple[str, ...]  # what `--dataset all` runs: the paper's table columns
    augmenters: tuple[str, ...]
    table: int  # the paper's table this family reproduces
    methods: tuple[str, ...]  # row labels, in the paper's order
    defaults: Callable[[str], RunConfig]  # dataset -> the paper's recipe for it
    build: Callable[[RunConfig, torch.device], TrainSetup]
    cells: Callable[[dict, str], list[Cell]]  # (record, selection) -> table cells
    selection: str = "best_val_acc"  # which checkpoint the report uses by default
    caption: str = ""
    train_size: Callable[[RunConfig], int] | None = None  # training samples, for --dry-run's cost estimate


def upstream_method_label(aug: str, saflex: bool, names: dict[str, str]) -> str:
    """'No Aug', 'RandAug', 'SAflex (w/ RandAug)': the paper's row names."""
    if aug == "none":
        return "No Aug" if not saflex else "SAflex (no upstream)"
    upstream = names.get(aug, aug)
    return f"SAflex (w/ {upstream})" if saflex else upstream


def make_augmenter(config: RunConfig):
    if config.aug == "none":
        return None
    return AUGMENTERS.get(config.aug)(**dict(config.option("aug_kwargs", {})))


def tensor_setup(config: RunConfig, splits: Splits, model: torch.nn.Module, device: torch.device, *,
                 metrics=("acc", "auc"), selection=("acc", "auc"), objective: Objective | None = None) -> TrainSetup:
    """A TrainSetup for data that fits on the device: tensors moved once, batches indexed there."""

    def on_device(split):
        inputs = split.inputs.to(device) if isinstance(split.inputs, torch.Tensor) else \
            type(split.inputs)(t.to(device) for t in split.inputs)
        return type(split)(inputs, split.targets.to(device))

    train, val, test = (on_device(s) for s in (splits.train, splits.val, splits.test))
    # Separate seeds: the validation stream must not follow the training order.
    train_batches = TensorBatches(train.inputs, train.targets, config.batch_size, seed=config.seed)
    val_batches = CyclingBatches(TensorBatches(val.inputs, val.targets, config.saflex.val_batch_size,
                                               seed=config.seed + 7919, min_batch=1))
    evaluator = ClassifierEvaluator({"val": val, "test": test}, metrics, config.eval_batch_size, device)
    return TrainSetup(model=model, objective=objective or CrossEntropy(), train_batches=train_batches,
                      val_batches=val_batches, augmenter=make_augmenter(config), evaluate=evaluator,
                      num_classes=splits.num_classes, selection=tuple(selection),
                      provenance=splits.provenance)
