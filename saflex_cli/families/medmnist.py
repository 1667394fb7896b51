"""MedMNIST (paper Table 1): ResNet-18 (28) with RandAugment or Mixup, with and without SAflex.

Defaults are the MedMNIST v2 benchmark's: Adam lr 1e-3, batch 128, 100 epochs, LR x0.1 at 50%
and 75% of training; SAflex beta = 0, tau = 0.01, validation batch 128 (paper Appendix C).
"""
from __future__ import annotations

import torch

from ..config import OptimConfig, RunConfig, SaflexConfig
from ..data.medmnist import TABLE1_DATASETS, folder, info, load_medmnist
from ..registry import BACKBONES, FAMILIES
from .base import Cell, Recipe, tensor_setup, upstream_method_label

AUG_NAMES = {"randaug": "RandAug", "mixup": "Mixup"}
PAPER_MODEL = {"resnet18_28": "ResNet-18"}


def defaults(dataset: str) -> RunConfig:
    return RunConfig(
        family="medmnist", dataset=dataset, model="resnet18_28", epochs=100, batch_size=128,
        optim=OptimConfig(name="adam", lr=1e-3, schedule="multistep", milestones=(0.5, 0.75), gamma=0.1),
        saflex=SaflexConfig(beta=0.0, tau=0.01, val_batch_size=128),
        options=(("as_rgb", True), ("size", 28), ("skip_md5", False)),
    )


def build(config: RunConfig, device: torch.device):
    splits = load_medmnist(config.dataset, folder(config.data_root), size=config.option("size", 28),
                           as_rgb=config.option("as_rgb", True), skip_md5=config.option("skip_md5", False))
    model = BACKBONES.get(config.model)(in_channels=splits.train.inputs.shape[1], num_classes=splits.num_classes)
    return tensor_setup(config, splits, model, device, metrics=("acc", "auc"), selection=("acc", "auc"))


def cells(record: dict, selection: str) -> list[Cell]:
    config = record["config"]
    method = upstream_method_label(config["aug"], config["saflex"]["enabled"], AUG_NAMES)
    value = record["selections"][selection]["test"]["acc"] * 100
    return [Cell(method, PAPER_MODEL.get(config["model"], config["model"]), config["dataset"], value)]


RECIPE = FAMILIES.register("medmnist")(Recipe(
    name="medmnist", datasets=TABLE1_DATASETS, augmenters=("none", "randaug", "mixup"), table=1,
    methods=("No Aug", "RandAug", "SAflex (w/ RandAug)", "Mixup", "SAflex (w/ Mixup)"),
    defaults=defaults, build=build, cells=cells, selection="best_val_acc",
    caption="Test accuracy (%) of ResNet-18 (28) on MedMNIST v2",
    train_size=lambda config: info(config.dataset)["n_samples"]["train"],
))
