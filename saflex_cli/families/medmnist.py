"""MedMNIST (paper Table 1): ResNet-18 (28) with RandAugment or Mixup, with and without SAflex;
Crop with Soft-Augmentation beside it (Table 7; `--aug crop --refine soft-aug`).

Defaults are the MedMNIST v2 benchmark's: ResNet-18 (28), Adam lr 1e-3, batch 128, 100 epochs,
LR x0.1 at 50% and 75% of training; SAflex beta = 0, tau = 0.01 (paper Appendix C). The paper
gives no validation batch size: 128, the training batch, is this project's choice. Any timm
model can replace the backbone (`model="timm/<name>"`, option `pretrained`: a local weights file).
"""
from __future__ import annotations

import torch

from ..config import OptimConfig, RunConfig, SaflexConfig
from ..data.medmnist import SIZES, TABLE1_DATASETS, ensure_file, folder, info, load_medmnist, npz_path
from ..domains import BOOLEAN, one_of
from ..registry import BACKBONES, FAMILIES
from .base import Cell, Option, PublishedRow, Recipe, tensor_setup, upstream_method_label

AUG_NAMES = {"randaug": "RandAug", "mixup": "Mixup", "crop": "Crop"}
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
    weights = {"pretrained": config.option("pretrained")} if config.option("pretrained") else {}
    model = BACKBONES.create(config.model, in_channels=splits.train.inputs.shape[1], num_classes=splits.num_classes,
                             **weights)
    return tensor_setup(config, splits, model, device, metrics=("acc", "auc"), selection=("acc", "auc"))


def cells(record: dict, selection: str) -> list[Cell]:
    config = record["config"]
    method = upstream_method_label(config["aug"], config["refine"], AUG_NAMES)
    value = record["selections"][selection]["test"]["acc"] * 100
    return [Cell(method, PAPER_MODEL.get(config["model"], config["model"]), config["dataset"], value)]


def data_files(config: RunConfig) -> list[tuple[str, object]]:
    path = npz_path(folder(config.data_root), config.dataset, config.option("size", 28))
    return [(path.name, path)]


def fetch(config: RunConfig) -> None:
    """The npz, downloaded before the run's identity is taken (offline: a message naming where to put it)."""
    ensure_file(folder(config.data_root), config.dataset, config.option("size", 28))


RECIPE = FAMILIES.register("medmnist")(Recipe(
    name="medmnist", datasets=TABLE1_DATASETS, augmenters=("none", "randaug", "mixup"), table=1,
    extra_augmenters=("crop",),  # Table 7's upstream (Soft-Augmentation's), not a row of Table 1
    methods=("No Aug", "RandAug", "SAflex (w/ RandAug)", "Mixup", "SAflex (w/ Mixup)",
             "Crop", "Soft-Augmentation (w/ Crop)", "SAflex (w/ Crop)"),
    defaults=defaults, build=build, cells=cells, selection="best_val_acc",
    caption="Test accuracy (%) of ResNet-18 (28) on MedMNIST v2",
    train_size=lambda config: info(config.dataset)["n_samples"]["train"], data_files=data_files, fetch=fetch,
    reference_tables=(7, 8),
    # Its trainer's own numbers: the same ResNet-18 (28) and recipe, on every 2D set (Table 1's too).
    published=(PublishedRow("No Aug, MedMNIST v2 benchmark (Yang et al. 2023, Table 3; not trained here)",
                            "medmnist_v2_benchmark.csv", {"ResNet-18": "ResNet-18 (28)"}),),
    options={"as_rgb": Option("grayscale images as 3 channels (MedMNIST v2 paper) or 1 (its script)", BOOLEAN),
             "size": Option("image side: 28 (the paper's), 64, 128 or 224", one_of(*SIZES)),
             "skip_md5": Option("use a file of unknown checksum", BOOLEAN)},
))
