"""A family is a recipe: datasets, upstream augmenters, backbone, objective and the paper's
defaults, plus how its records become cells of the paper's table. One trainer serves them all.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

import torch

from ..config import RunConfig
from ..data.batches import CyclingBatches, TensorBatches, index_inputs
from ..data.splits import Splits
from ..domains import Domain
from ..errors import SaflexError
from ..method.objectives import CrossEntropy, Objective
from ..registry import AUGMENTERS
from ..training.evaluation import ClassifierEvaluator
from ..training.trainer import TrainSetup


@dataclass(frozen=True)
class Cell:
    """One number of a results table: which row, model and column of the paper it sits in."""

    method: str
    model: str
    column: str
    value: float


@dataclass(frozen=True)
class PublishedRow:
    """A published row beside ours in the report: the outside check that our trainer, not the method,
    is not what differs (MedMNIST v2's No Aug numbers, on datasets the paper's table lacks). The report
    reads its values (reporting/paper.py published_cell)."""

    label: str  # the row's name in the report
    resource: str  # a CSV in resources/ with columns model, dataset, test_acc, test_auc (fractions), source
    models: dict[str, str] = field(default_factory=dict)  # the report's model name -> the CSV's


@dataclass(frozen=True)
class Option:
    """A family setting (RunConfig.options): what it means, its allowed values (domains.py) and, for
    one unset by default (None), the type a --set value is read as."""

    meaning: str
    domain: Domain
    kind: type = object


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
    # A run's step cost over the benchmark's step of its backbone, where the input's size varies
    # by dataset (the table width a SAINT step grows with); None: 1.
    step_cost_scale: Callable[[RunConfig], float] | None = None
    # Files a run reads: config -> [(name, path or a content id such as 'openml:1494')]; their
    # checksums join the run's identity (config.py), so a record made on other data is not reused.
    data_files: Callable[[RunConfig], list[tuple[str, object]]] | None = None
    fetch: Callable[[RunConfig], None] | None = None  # downloads what data_files lists, before a (real) run
    # Settings whose effect depends on the data, settled against it when the checksums are taken
    # (tabular: the constant-column rule enters only the runs whose training split it touches).
    settle: Callable[[list[RunConfig]], list[RunConfig]] | None = None
    options: dict[str, Option] = field(default_factory=dict)  # family settings (RunConfig.options) by name
    extra_augmenters: tuple[str, ...] = ()  # accepted by --aug, but not rows of the paper's table (--aug all)
    reference_tables: tuple[int, ...] = ()  # more of the paper's tables whose rows the report shows beside ours
    published: tuple[PublishedRow, ...] = ()  # published rows, not the paper's, shown beside the No Aug rows
    # The defaults a run's settings are told apart from in the report, from its config and its
    # record's data provenance (None: defaults(dataset)).
    baseline: Callable[[RunConfig, dict], RunConfig] | None = None

    @property
    def tables(self) -> tuple[int, ...]:
        return (self.table,) + self.reference_tables


REFINE_LABELS = {"saflex": "SAflex", "saflex-weights": "SAflex weights only", "saflex-labels": "SAflex labels only",
                 "l2rw": "Learning-to-reweight", "soft-aug": "Soft-Augmentation"}


def upstream_method_label(aug: str, refine: str, names: dict[str, str]) -> str:
    """'No Aug', 'RandAug', 'SAflex (w/ RandAug)', 'Learning-to-reweight (w/ RandAug)': the paper's row names."""
    if aug == "none":
        return "No Aug" if refine == "none" else f"{REFINE_LABELS[refine]} (no upstream)"
    upstream = names.get(aug, aug)
    return upstream if refine == "none" else f"{REFINE_LABELS[refine]} (w/ {upstream})"


def make_augmenter(config: RunConfig):
    if config.aug == "none":
        return None
    return AUGMENTERS.get(config.aug)(**dict(config.option("aug_kwargs", {})))


FULL_VALIDATION_LIMIT = 8192  # --val-data full takes g over the whole split in one batch


def holdout_split(val, config: RunConfig):
    """(rows SAflex's g is taken on, rows that select the checkpoint): with selection_holdout = h,
    a seeded share h of the validation split is kept for selection only; else both are all of it."""
    if config.selection_holdout == 0:
        return val, val
    count = len(val.targets)
    order = torch.randperm(count, generator=torch.Generator().manual_seed(config.seed + 104729)).to(val.targets.device)
    held = max(1, round(config.selection_holdout * count))
    if held >= count:
        raise SaflexError(f"selection_holdout {config.selection_holdout} leaves no validation rows for SAflex "
                          f"({count} rows): lower it")
    part = lambda rows: type(val)(index_inputs(val.inputs, rows), val.targets[rows])  # noqa: E731
    return part(order[held:]), part(order[:held])


def validation_stream(val, config: RunConfig) -> CyclingBatches:
    """SAflex's validation batches, in their own order (a seed apart from training's)."""
    full = config.saflex.val_data == "full"
    if full and len(val.targets) > FULL_VALIDATION_LIMIT:
        raise SaflexError(f"val_data 'full' takes g over all {len(val.targets)} validation rows in one batch, more "
                          f"than {FULL_VALIDATION_LIMIT}: use val_data 'batch'")
    size = len(val.targets) if full else config.saflex.val_batch_size
    return CyclingBatches(TensorBatches(val.inputs, val.targets, size, shuffle=not full, seed=config.seed + 7919,
                                        min_batch=1))


def require_plain_validation(config: RunConfig) -> None:
    """Families that read their validation images from disk keep the whole split for both uses."""
    if config.selection_holdout or config.saflex.val_data != "batch":
        raise SaflexError(f"{config.family} takes SAflex's validation batches from disk: selection_holdout and "
                          f"val_data 'full' are for the families whose data fits on the device (medmnist, tabular, demo)")


def tensor_setup(config: RunConfig, splits: Splits, model: torch.nn.Module, device: torch.device, *,
                 metrics=("acc", "auc"), selection=("acc", "auc"), objective: Objective | None = None) -> TrainSetup:
    """A TrainSetup for data that fits on the device: tensors moved once, batches indexed there."""

    def on_device(split):
        inputs = split.inputs.to(device) if isinstance(split.inputs, torch.Tensor) else \
            type(split.inputs)(t.to(device) for t in split.inputs)
        return type(split)(inputs, split.targets.to(device))

    train, val, test = (on_device(s) for s in (splits.train, splits.val, splits.test))
    val_for_saflex, val_for_selection = holdout_split(val, config)
    # Separate seeds: the validation stream must not follow the training order.
    train_batches = TensorBatches(train.inputs, train.targets, config.batch_size, seed=config.seed)
    evaluator = ClassifierEvaluator({"val": val_for_selection, "test": test}, metrics, config.eval_batch_size, device,
                                    config.precision)
    provenance = {**splits.provenance, "validation": {"saflex_rows": len(val_for_saflex.targets),
                                                      "selection_rows": len(val_for_selection.targets),
                                                      "shared": config.selection_holdout == 0}}
    return TrainSetup(model=model, objective=objective or CrossEntropy(), train_batches=train_batches,
                      val_batches=validation_stream(val_for_saflex, config), augmenter=make_augmenter(config),
                      evaluate=evaluator, num_classes=splits.num_classes, selection=tuple(selection),
                      provenance=provenance)
