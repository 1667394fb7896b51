"""Tabular data (paper Table 2): MLP and SAINT with CutMix, with and without SAflex.

Defaults: 200 epochs (paper Sec. 4); AdamW, lr 1e-4, batch 256, constant LR (SAINT's train.py:
its cosine schedule is only used with SGD); batch 64 for a table of more than 100 feature columns
(train.py), SAflex's validation batch likewise (the paper gives none: this project's choice is the
training batch), both fixed from the table before the runs
(`fit_batch_to_width`) so that the run identity holds them; checkpoint by best validation accuracy
(train.py); SAflex beta = 1, tau = 0.01 (Appendix C). Reported: test
AUROC x100 for binary tasks, test accuracy x100 for multiclass (volkert), as SAINT's train.py
prints them. Evaluation uses a fixed batch size (256, SAINT's) in the split's row order, since
intersample attention makes a prediction depend on its batch-mates. A column constant in a run's
training rows is left unscaled unless options.constant_columns says 'floor' (SAINT's code); the
rule is part of a run's identity only where it touches a column (`settle_constant_rule`).
"""
from __future__ import annotations

import dataclasses
from pathlib import Path

import torch
from rich.console import Console

from ..compute.distributed import is_leader
from ..config import OptimConfig, RunConfig, SaflexConfig
from ..data.tabular import (CONSTANT_RULES, SOURCES, SPLIT_FRACTIONS, TABLE2_DATASETS, check_constant_rule,
                            constant_in_train, feature_count, folder, load_table, load_tabular)
from ..domains import BOOLEAN, COLUMN, each, integer, interval, one_of, optional, text
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
             for key in ("categorical", "na_values", "drop", "positive")}
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


def split_seed(config: RunConfig) -> int:
    """The seed of the run's train/val/test split: --split-seed, else the run's seed (issue 3)."""
    return config.seed if config.option("split_seed") is None else config.option("split_seed")


def settle_constant_rule(configs: list[RunConfig]) -> list[RunConfig]:
    """Each config with options.constant_columns set to its rule where its training split has a
    constant column, and removed where it has none: the rule then changes the identity of exactly
    the runs whose numbers it changes (QSAR's and Shrutime's records keep theirs). Each table is
    read and checked once."""
    def source(config: RunConfig):
        return config.dataset, config.data_root, tuple(source_options(config).items())

    seeds: dict = {}
    for config in configs:
        check_constant_rule(config.option("constant_columns") or CONSTANT_RULES[0])
        seeds.setdefault(source(config), (config, set()))[1].add(split_seed(config))
    touched = {key: constant_in_train(load_table(first.dataset, folder(first.data_root), **source_options(first)),
                                      sorted(split_seeds))
               for key, (first, split_seeds) in seeds.items()}
    settled = []
    for config in configs:
        options = {k: v for k, v in config.options if k != "constant_columns"}
        if touched[source(config)][split_seed(config)]:
            options["constant_columns"] = config.option("constant_columns") or CONSTANT_RULES[0]
        settled.append(dataclasses.replace(config, options=tuple(options.items())))
    return settled


def constant_line(dataset: str, constant: dict) -> str | None:
    """One line naming the columns constant in the training rows and what was done to them."""
    if not constant["count"]:
        return None
    how = "left unscaled (scale 1)" if constant["rule"] == "unscaled" else "divided by SAINT's 1e-6 std floor"
    return (f"{dataset}: {constant['count']} column(s) constant in the training rows, {how}: "
            f"{', '.join(constant['columns'])} (data.constant_in_train)")


def bound_line(dataset: str, largest: dict) -> str | None:
    """One line when a standardised val/test feature exceeds the bound (the training statistics do not fit it)."""
    over = {split: value for split, value in largest.items() if split != "bound" and value > largest["bound"]}
    if not over:
        return None
    return (f"{dataset}: standardised features reach " + ", ".join(f"{v:.3g} in {s}" for s, v in over.items())
            + f" (bound {largest['bound']:g}): a column's training statistics do not fit these rows "
            f"(data.largest_abs_feature)")


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
    splits = load_tabular(config.dataset, folder(config.data_root), split_seed(config),
                          config.option("constant_columns") or CONSTANT_RULES[0], **source_options(config))
    provenance = splits.provenance
    provenance["evaluation"] = {"batch_size": config.eval_batch_size, "order": EVAL_ORDER}
    n_features = len(provenance["categorical"]) + len(provenance["continuous"])
    provenance["batch_rule"] = {"features": n_features, "batch_by_rule": batch_for_width(n_features)}
    lines = (imputation_line(config.dataset, provenance["imputed"]),
             constant_line(config.dataset, provenance["constant_in_train"]),
             bound_line(config.dataset, provenance["largest_abs_feature"]))
    for line in filter(None, lines):
        if is_leader():
            console.print(f"[yellow]{line}[/yellow]", highlight=False, soft_wrap=True)  # one line each
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
    settle=settle_constant_rule, baseline=baseline,
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
             "drop": Option("the CSV's columns left out", optional(each(COLUMN)), tuple),
             "positive": Option("the CSV target's values that make the positive class (a binary task)",
                                optional(each(text("a value"), non_empty=True)), tuple),
             "constant_columns": Option("a column constant in the training rows: unscaled (default) | floor "
                                        "(SAINT's 1e-6 std floor); set only in runs it touches",
                                        optional(one_of(*CONSTANT_RULES)), str)},
))
