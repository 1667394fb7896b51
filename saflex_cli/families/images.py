"""Any ImageFolder dataset (`saflex images --root DIR`): MedMNIST's recipe on the user's images.

Not a paper experiment: the rows (No Aug, RandAug, Mixup, Crop, each with and without SAflex or
another refiner) are compared with each other, paired by seed, in the report. Defaults are the
medmnist family's (MedMNIST v2's ResNet-18 (28) recipe, paper Appendix C for SAflex); images are
resized to the backbone's own size (28, or a timm model's input size) and normalised with the
training split's per-channel statistics, or with the backbone's own (`normalize` 'backbone',
MedMNIST v2's 0.5 / 0.5 for the ResNet-18 (28): what makes a run equal to `saflex medmnist`'s).
"""
from __future__ import annotations

import dataclasses
from pathlib import Path

import torch

from ..config import RunConfig
from ..data.image_folder import assign_splits, checksum, load_image_folder, scan
from ..domains import integer, interval, one_of, optional, text
from ..errors import SaflexError
from ..models.base import ImageNormalize
from ..registry import BACKBONES, FAMILIES
from . import medmnist
from .base import Option, Recipe, tensor_setup

NORMALIZE = ("train", "backbone")  # the training split's mean / std, or the backbone's own
OWN_SIZE = {"resnet18_28": 28}
TIMM = "timm/"


def defaults(dataset: str) -> RunConfig:
    return dataclasses.replace(medmnist.defaults(dataset), family="images", options=(
        ("normalize", "train"), ("val_fraction", 0.1), ("test_fraction", 0.2), ("split_seed", 0)))


def backbone_size(model: str) -> int:
    """The backbone's own input side: 28 for the ResNet-18 (28), a timm model's input size."""
    if model in OWN_SIZE:
        return OWN_SIZE[model]
    if model.startswith(TIMM):
        import timm
        BACKBONES.get(model)  # an unknown timm name fails here, in one line
        return int(timm.get_pretrained_cfg(model[len(TIMM):]).input_size[-1])
    raise SaflexError(f"images trains {', '.join(OWN_SIZE)} or {TIMM}<name>, not {model!r}")


def image_size(config: RunConfig) -> int:
    return int(config.option("size") or backbone_size(config.model))


def folder_splits(config: RunConfig):
    return load_image_folder(Path(config.data_root), size=image_size(config),
                             channels=config.option("channels"),
                             val_fraction=config.option("val_fraction", 0.1),
                             test_fraction=config.option("test_fraction", 0.2), split_seed=config.option("split_seed", 0))


def training_statistics(images: torch.Tensor) -> tuple[list[float], list[float]]:
    """Per-channel mean and std of uint8 images, in [0, 1] units (float64: the same on every CPU)."""
    values = images.to(torch.float64).div(255).transpose(0, 1).flatten(1)
    std = values.std(dim=1)
    return values.mean(dim=1).tolist(), torch.where(std > 0, std, torch.ones_like(std)).tolist()


def build(config: RunConfig, device: torch.device):
    normalize = config.option("normalize", "train")
    splits = folder_splits(config)
    weights = {"pretrained": config.option("pretrained")} if config.option("pretrained") else {}
    model = BACKBONES.create(config.model, in_channels=splits.train.inputs.shape[1], num_classes=splits.num_classes,
                             **weights)
    if normalize == "train":
        mean, std = training_statistics(splits.train.inputs)
        model.prepare = ImageNormalize(mean, std)
        splits.provenance["normalisation"] = {"from": "training split", "mean": mean, "std": std}
    else:
        splits.provenance["normalisation"] = {"from": "backbone"}
    return tensor_setup(config, splits, model, device, metrics=("acc", "auc"), selection=("acc", "auc"))


def train_size(config: RunConfig) -> int:
    assigned, _ = assign_splits(scan(Path(config.data_root)), config.option("val_fraction", 0.1),
                                config.option("test_fraction", 0.2), config.option("split_seed", 0))
    return len(assigned["train"])


def data_files(config: RunConfig) -> list[tuple[str, object]]:
    """The folder's content as one checksum (every file's path, class and MD5)."""
    return [("images", f"md5:{checksum(scan(Path(config.data_root)))}")]


def fetch(config: RunConfig) -> None:
    """Checks the folder and decodes it into the cache before any run: a bad image fails here, in one line."""
    folder_splits(config)


RECIPE = FAMILIES.register("images")(Recipe(
    name="images", datasets=("images",),  # no table columns: a run's dataset is its folder's name
    augmenters=medmnist.RECIPE.augmenters, extra_augmenters=medmnist.RECIPE.extra_augmenters, table=0,
    methods=medmnist.RECIPE.methods, defaults=defaults, build=build, cells=medmnist.cells, selection="best_val_acc",
    caption="Test accuracy (%) on an ImageFolder dataset (no paper values: the rows are compared with each other)",
    train_size=train_size, data_files=data_files, fetch=fetch,
    options={"size": Option("image side in pixels (default: the backbone's own)", optional(integer(1)), int),
             "channels": Option("1 or 3 (default: as the files are)", optional(one_of(1, 3)), int),
             "normalize": Option("train (the training split's mean / std) or backbone (the model's own)",
                                 one_of(*NORMALIZE)),
             "val_fraction": Option("share of the training images carved out for validation where val/ is absent",
                                    interval(0.0, 1.0, low_open=True, high_open=True)),
             "test_fraction": Option("share of the training images carved out for testing where test/ is absent",
                                     interval(0.0, 1.0, low_open=True, high_open=True)),
             "split_seed": Option("the carved splits' seed", integer(0)),
             "pretrained": Option("timm backbones: a local weights file", optional(text("a file path")), str)},
))
