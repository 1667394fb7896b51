"""Tabular data (paper Table 2): MLP and SAINT with CutMix, with and without SAflex.

Defaults: 200 epochs (paper Sec. 4); AdamW, lr 1e-4, batch 256, constant LR (SAINT's train.py:
its cosine schedule is only used with SGD); batch 64 beyond 100 features (train.py); checkpoint by
best validation accuracy (train.py); SAflex beta = 1, tau = 0.01 (Appendix C). Reported: test
AUROC x100 for binary tasks, test accuracy x100 for multiclass (volkert), as SAINT's train.py
prints them. Evaluation uses a fixed batch size (256, SAINT's) in the split's row order, since
intersample attention makes a prediction depend on its batch-mates.
"""
from __future__ import annotations

import torch

from ..config import OptimConfig, RunConfig, SaflexConfig
from ..data.tabular import SOURCES, SPLIT_FRACTIONS, TABLE2_DATASETS, folder, load_tabular
from ..errors import SaflexError
from ..registry import BACKBONES, FAMILIES
from .base import Cell, Recipe, tensor_setup, upstream_method_label

BACKBONE = {"mlp": "tabular_mlp", "saint": "saint"}  # --model -> backbone registry name
PAPER_MODEL = {"mlp": "MLP", "saint": "SAINT"}
AUG_NAMES = {"cutmix": "CutMix"}
# train.py caps the batch at 64 beyond 100 features (and SAINT's embedding at 8, done in the
# backbone); these have more in their OpenML copies (appetency: 230, not Table 5's 39).
WIDE_DATASETS = ("appetency", "arrhythmia", "volkert")
EVAL_ORDER = "split row order (ascending row index of the source table)"


def defaults(dataset: str) -> RunConfig:
    wide = dataset in WIDE_DATASETS
    return RunConfig(
        family="tabular", dataset=dataset, model="saint", aug="cutmix", epochs=200,
        batch_size=64 if wide else 256, eval_batch_size=256,
        optim=OptimConfig(name="adamw", lr=1e-4, weight_decay=0.01, schedule="constant"),
        saflex=SaflexConfig(beta=1.0, tau=0.01, val_batch_size=64 if wide else 256),
        options=(("aug_kwargs", {"prob": 0.3}), ("batchnorm", False), ("dropout", 0.1)),
    )


def source_options(config: RunConfig) -> dict:
    categorical = config.option("categorical")
    return {"openml_id": config.option("openml_id"), "csv": config.option("csv"), "target": config.option("target"),
            "categorical": tuple(categorical) if categorical is not None else None}


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
    model = build_model(config, provenance["cardinalities"], len(provenance["continuous"]), splits.num_classes)
    return tensor_setup(config, splits, model, device, metrics=("acc", "auc"), selection=("acc",))


def reported_metric(record: dict) -> str:
    """AUROC for binary tasks, accuracy otherwise (SAINT's train.py; Table 2's volkert)."""
    return "auc" if record["data"].get("classes") and len(record["data"]["classes"]) == 2 else "acc"


def cells(record: dict, selection: str) -> list[Cell]:
    config = record["config"]
    method = upstream_method_label(config["aug"], config["saflex"]["enabled"], AUG_NAMES)
    value = record["selections"][selection]["test"][reported_metric(record)] * 100
    return [Cell(method, PAPER_MODEL.get(config["model"], config["model"]), config["dataset"], value)]


def train_size(config: RunConfig) -> int | None:
    """Table 5's row count times the train fraction (None for a table given by --csv / --openml-id)."""
    source = SOURCES.get(config.dataset)
    return round(source.paper["rows"] * SPLIT_FRACTIONS[0]) if source else None


RECIPE = FAMILIES.register("tabular")(Recipe(
    name="tabular", datasets=TABLE2_DATASETS, augmenters=("none", "cutmix"), table=2,
    methods=("No Aug", "CutMix", "SAflex (w/ CutMix)"), defaults=defaults, build=build, cells=cells,
    selection="best_val_acc",
    caption="Test AUROC ×100 (binary) / accuracy ×100 (volkert) of MLP and SAINT with CutMix ± SAflex",
    train_size=train_size,
))
