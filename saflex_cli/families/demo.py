"""The offline demo: digits, an MLP, and an upstream augmenter that shifts 60% of labels.

Upstream-only training learns the shifted labels; SAflex should drop or relabel most of them.
Not a paper experiment: every setting is this project's (Adam 1e-3, batch 32, 30 epochs, SAflex
beta = 0 and tau = 0.01 as the paper's image experiments, a validation batch of 64).
"""
from __future__ import annotations

from pathlib import Path

import torch

from ..config import OptimConfig, RunConfig, SaflexConfig
from ..data.digits import TRAIN_SIZE, load_digits_splits
from ..registry import BACKBONES, FAMILIES
from .base import Cell, Recipe, tensor_setup, upstream_method_label

METHODS = {("none", "none"): "No Aug", ("label-shift", "none"): "Upstream only",
           ("label-shift", "saflex"): "SAflex (w/ upstream)"}


def defaults(dataset: str = "digits") -> RunConfig:
    return RunConfig(
        family="demo", dataset=dataset, model="mlp", aug="label-shift", epochs=30, batch_size=32,
        eval_batch_size=1024, optim=OptimConfig(name="adam", lr=1e-3, schedule="constant"),
        saflex=SaflexConfig(beta=0.0, tau=0.01, val_batch_size=64),
        options=(("aug_kwargs", {"noise_std": 0.3, "shift_fraction": 0.6}),),
    )


def build(config: RunConfig, device: torch.device):
    splits = load_digits_splits(config.seed)
    model = BACKBONES.get(config.model)(in_features=64, num_classes=10)
    return tensor_setup(config, splits, model, device, metrics=("acc",), selection=("acc",))


def cells(record: dict, selection: str) -> list[Cell]:
    config = record["config"]
    method = METHODS.get((config["aug"], config["refine"])) or \
        upstream_method_label(config["aug"], config["refine"], {"label-shift": "upstream"})
    return [Cell(method, "MLP", config["dataset"], record["selections"][selection]["test"]["acc"] * 100)]


def data_files(config: RunConfig) -> list[tuple[str, object]]:
    """scikit-learn's bundled digits: their file in the installed package."""
    import sklearn.datasets
    return [("digits.csv.gz", Path(sklearn.datasets.__file__).parent / "data" / "digits.csv.gz")]


RECIPE = FAMILIES.register("demo")(Recipe(
    name="demo", datasets=("digits",), augmenters=("none", "label-shift"), table=0,
    methods=tuple(METHODS.values()), defaults=defaults, build=build, cells=cells, selection="last",
    caption="Offline demo: test accuracy (%) on digits with a label-shifting upstream augmenter",
    train_size=lambda config: TRAIN_SIZE, data_files=data_files,
))
