"""Tabular data (paper Table 2): MLP and SAINT with CutMix, with and without SAflex.

Defaults: 200 epochs (paper Sec. 4); AdamW, lr 1e-4, batch 256, constant LR (SAINT's train.py:
its cosine schedule is only used with SGD); batch 64 for a table of more than 100 feature columns
(train.py), SAflex's validation batch likewise (the paper gives none: this project's choice is the
training batch), both fixed from the table before the runs
(`fit_batch_to_width`) so that the run identity holds them; checkpoint by best validation accuracy
(train.py); SAflex beta = 1, tau = 0.01 (Appendix C). Reported: test
AUROC x100 for binary tasks, test accuracy x100 for multiclass (volkert), as SAINT's train.py
prints them. Evaluation uses a fixed batch size (256, SAINT's) in the split's row order, since
intersample attention makes a prediction depend on its batch-mates.
"""
from __future__ import annotations

import dataclasses
from pathlib import Path

import torch
from rich.console import Console

from ..compute.distributed import is_leader
from ..config import OptimConfig, RunConfig, SaflexConfig
from ..data.tabular import SOURCES, SPLIT_FRACTIONS, TABLE2_DATASETS, feature_count, folder, load_tabular
from ..domains import BOOLEAN, COLUMN, each, integer, interval, optional, text
from ..errors import SaflexError
from ..registry import BACKBONES, FAMILIES
from .base import Cell, Option, Recipe, tensor_setup, upstream_method_label

BACKBONE = {"mlp": "tabular_mlp", "saint": "saint"}  # --model -> backbone registry name
PAPER_MODEL = {"mlp": "MLP", "saint": "SAINT"}
AUG_NAMES = {"cutmix": "CutMix"}
BATCH, WIDE_BATCH, WIDE_FEATURES = 256, 64, 100  # train.py: batch 256, capped at 64 beyond 100 features
EVAL_ORDER = "split row order (ascending row index of the source table)"
IMPUTED_SHOWN = 4  # columns named in the printed imputation line; the record has them all
console = Console(stderr=True)


def defaults(dataset: str) -> RunConfig:
    return RunConfig(
        family="tabular", dataset=dataset, model="saint", aug="cutmix", epochs=200,
        batch_size=BATCH, eval_batch_size=256,
        optim=OptimConfig(name="adamw", lr=1e-4, weight_decay=0.01, schedule="constant"),
        saflex=SaflexConfig(beta=1.0, tau=0.01, val_batch_size=BATCH),
        options=(("aug_kwargs", {"prob": 0.3}), ("batchnorm", False), ("dropout", 0.1)),
    )


def batch_for_width(n_features: int) -> int:
    """SAINT's train.py: `if nfeat > 100: batchsize = min(64, batchsize)` (its embedding cap is in the backbone)."""
    return WIDE_BATCH if n_features > WIDE_FEATURES else BATCH


def source_options(config: RunConfig) -> dict:
    """What load_table needs from a config; column lists as tuples (a record's JSON has lists)."""
    lists = {key: tuple(config.option(key)) if config.option(key) is not None else None
             for key in ("categorical", "na_values", "drop")}
    return {"openml_id": config.option("openml_id"), "csv": config.option("csv"), "target": config.option("target"),
            "no_header": config.option("no_header"), **lists}


def fit_batch_to_width(configs: list[RunConfig], dry_run: bool = False) -> list[RunConfig]:
    """Batch and SAflex validation batch of each run from its table's feature count, read once per
    table before any run, so the rule is in each run's config (and identity) from the start.

    A dry run reads only a table already on disk and takes Table 5's feature count for a paper
    dataset that is not (never a download: a grid is planned before its data is fetched); the
    paper's counts fall on the same side of the rule's threshold as the tables' own."""
    widths: dict = {}
    fitted = []
    for config in configs:
        key = (config.dataset, config.data_root, tuple(source_options(config).items()))
        if key in widths:
            pass
        elif dry_run and not table_on_disk(config) and config.dataset in SOURCES:
            widths[key] = SOURCES[config.dataset].paper["features"]
        else:
            widths[key] = feature_count(config.dataset, folder(config.data_root), **source_options(config))
        batch = batch_for_width(widths[key])
        fitted.append(dataclasses.replace(config, batch_size=batch,
                                          saflex=dataclasses.replace(config.saflex, val_batch_size=batch)))
    return fitted


def table_on_disk(config: RunConfig) -> bool:
    """Whether the run's table is a local file (a --csv, or the dataset's file in the data root)."""
    return any(isinstance(source, Path) and source.is_file() for _, source in data_files(config))


def imputation_line(dataset: str, imputed: dict) -> str | None:
    """One line saying which cells were filled and how (None when none was)."""
    if not imputed:
        return None
    shown = [f"{column} {fill['cells']} ({fill['filled_with']})" for column, fill in list(imputed.items())[:IMPUTED_SHOWN]]
    more = len(imputed) - len(shown)
    total = sum(fill["cells"] for fill in imputed.values())
    return (f"{dataset}: imputed {total} missing cell(s) in {len(imputed)} column(s): {', '.join(shown)}"
            + (f", and {more} more column(s)" if more else "") + " (all in the run record, data.imputed)")


def build_model(config: RunConfig, cardinalities: list[int], n_cont: int, num_classes: int):
    if config.model not in BACKBONE:
        raise SaflexError(f"unknown tabular model {config.model!r}; choose one of: {', '.join(BACKBONE)}")
    kwargs = {"dropout": config.option("dropout", 0.1), "batchnorm": config.option("batchnorm", False)} \
        if config.model == "mlp" else {}
    return BACKBONES.get(BACKBONE[config.model])(cardinalities, n_cont, num_classes, **kwargs)


def build(config: RunConfig, device: torch.device):
    split_seed = config.option("split_seed")  # None: the split follows the run's seed (issue 3)
    splits = load_tabular(config.dataset, folder(config.data_root), config.seed if split_seed is None else split_seed,
                          **source_options(config))
    provenance = splits.provenance
    provenance["evaluation"] = {"batch_size": config.eval_batch_size, "order": EVAL_ORDER}
    n_features = len(provenance["categorical"]) + len(provenance["continuous"])
    provenance["batch_rule"] = {"features": n_features, "batch_by_rule": batch_for_width(n_features)}
    line = imputation_line(config.dataset, provenance["imputed"])
    if line and is_leader():
        console.print(f"[yellow]{line}[/yellow]", highlight=False)
    model = build_model(config, provenance["cardinalities"], len(provenance["continuous"]), splits.num_classes)
    return tensor_setup(config, splits, model, device, metrics=("acc", "auc"), selection=("acc",))


def reported_metric(record: dict) -> str:
    """AUROC for binary tasks, accuracy otherwise (SAINT's train.py; Table 2's volkert)."""
    return "auc" if record["data"].get("classes") and len(record["data"]["classes"]) == 2 else "acc"


def cells(record: dict, selection: str) -> list[Cell]:
    config = record["config"]
    method = upstream_method_label(config["aug"], config["refine"], AUG_NAMES)
    value = record["selections"][selection]["test"][reported_metric(record)] * 100
    return [Cell(method, PAPER_MODEL.get(config["model"], config["model"]), config["dataset"], value)]


# The table benchmarks/tabular_overhead.py times the models on (Shrutime-shaped): category
# cardinalities, then the continuous columns.
BENCHMARK_CARDINALITIES, BENCHMARK_CONTINUOUS = (4, 3), 8


def step_cost_scale(config: RunConfig) -> float:
    """SAINT embeds every feature as a token, so its step grows at least linearly with the table's
    width (Table 5's feature count) over the benchmark's; an MLP's wider first layer barely counts."""
    source = SOURCES.get(config.dataset)
    if config.model != "saint" or source is None:
        return 1.0
    return source.paper["features"] / (len(BENCHMARK_CARDINALITIES) + BENCHMARK_CONTINUOUS)


def train_size(config: RunConfig) -> int | None:
    """Table 5's row count times the train fraction (None for a table given by --csv / --openml-id)."""
    source = SOURCES.get(config.dataset)
    return round(source.paper["rows"] * SPLIT_FRACTIONS[0]) if source else None


def data_files(config: RunConfig) -> list[tuple[str, object]]:
    """A --csv file, else the dataset's local file in the data root, else its OpenML id (an OpenML
    data id names one immutable dataset version)."""
    if config.option("csv"):
        return [(Path(config.option("csv")).name, Path(config.option("csv")))]
    source = SOURCES.get(config.dataset)
    if source is None:
        return []
    local = folder(config.data_root) / source.local_file if source.local_file else None
    if config.option("openml_id") is None and local is not None and local.is_file():
        return [(source.local_file, local)]
    openml_id = config.option("openml_id") or source.openml_id
    if openml_id:
        return [("openml", f"openml:{openml_id}")]
    return [(source.local_file, local)] if local is not None else []  # not on disk yet (a dry run marks it)


def baseline(config: RunConfig, provenance: dict) -> RunConfig:
    """The recipe with the batch of the run's table width (recorded in its provenance)."""
    base = defaults(config.dataset)
    batch = provenance.get("batch_rule", {}).get("batch_by_rule", base.batch_size)
    return dataclasses.replace(base, batch_size=batch, saflex=dataclasses.replace(base.saflex, val_batch_size=batch))


RECIPE = FAMILIES.register("tabular")(Recipe(
    name="tabular", datasets=TABLE2_DATASETS, augmenters=("none", "cutmix"), table=2,
    methods=("No Aug", "CutMix", "SAflex (w/ CutMix)"), defaults=defaults, build=build, cells=cells,
    selection="best_val_acc",
    caption="Test AUROC ×100 (binary) / accuracy ×100 (volkert) of MLP and SAINT with CutMix ± SAflex",
    train_size=train_size, step_cost_scale=step_cost_scale, data_files=data_files,
    baseline=baseline,
    options={"dropout": Option("MLP dropout", interval(0.0, 1.0, high_open=True)),
             "batchnorm": Option("MLP BatchNorm after each hidden layer", BOOLEAN),
             "split_seed": Option("one train/val/test split for every seed (None: the run's seed)",
                                  optional(integer(0)), int),
             "csv": Option("a CSV file read instead of the dataset", optional(text("a file path")), str),
             "target": Option("the CSV's target column", optional(COLUMN)),
             "categorical": Option("the CSV's categorical columns (the whole list)", optional(each(COLUMN)), tuple),
             "openml_id": Option("an OpenML id read instead", optional(integer(1)), int),
             "na_values": Option("the CSV's extra missing-cell markers", optional(each(text())), tuple[str, ...]),
             "no_header": Option("the CSV has no header row", optional(BOOLEAN), bool),
             "drop": Option("the CSV's columns left out", optional(each(COLUMN)), tuple)},
))
