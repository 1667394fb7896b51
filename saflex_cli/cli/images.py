"""`saflex images`: SAflex and its baselines on any image dataset in an ImageFolder tree."""
from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from . import options as opt
from .common import build_configs
from .shared import RunFlags, family_command


@family_command
def images(
    root: Annotated[Path, typer.Option("--root", help="ImageFolder tree: DIR/train/<class>/*.png|jpg... (and val/, test/ where you have them), or DIR/<class>/...; missing splits are carved from the training images.", rich_help_panel=opt.DATA)],
    aug: opt.Augs = "randaug",
    saflex: opt.Saflex = False,
    refine: opt.Refine = None,
    seeds: opt.Seeds = "0,1,2",
    epochs: opt.Epochs = None,
    size: Annotated[Optional[int], typer.Option("--size", min=1, help="Image side in pixels (default: the backbone's own, 28 for resnet18_28).", rich_help_panel=opt.DATA)] = None,
    channels: Annotated[Optional[int], typer.Option("--channels", help="1 (grayscale) or 3 (RGB); default: 1 when every file is grayscale, else 3.", rich_help_panel=opt.DATA)] = None,
    normalize: Annotated[Optional[str], typer.Option("--normalize", help="train (default: the training split's per-channel mean and std) | backbone (the model's own: 0.5 / 0.5 for resnet18_28, as saflex medmnist).", rich_help_panel=opt.DATA)] = None,
    val_fraction: Annotated[Optional[float], typer.Option("--val-fraction", help="Where val/ is absent: its share of the training images, per class (default 0.1).", rich_help_panel=opt.DATA)] = None,
    test_fraction: Annotated[Optional[float], typer.Option("--test-fraction", help="Where test/ is absent: its share of the training images, per class (default 0.2).", rich_help_panel=opt.DATA)] = None,
    split_seed: Annotated[Optional[int], typer.Option("--split-seed", min=0, help="Seed of the carved splits, one for every run (default 0).", rich_help_panel=opt.DATA)] = None,
    model: Annotated[Optional[str], typer.Option("--model", help="Backbone: resnet18_28 (MedMNIST v2's) or timm/<name>, any timm model (e.g. timm/resnet18).", rich_help_panel=opt.TRAINING)] = None,
    pretrained: Annotated[Optional[Path], typer.Option("--pretrained", help="timm backbones: weights from this local .safetensors/.pth file (its classifier only if the class count matches).", rich_help_panel=opt.TRAINING)] = None,
    run: RunFlags = None,
) -> None:
    """ResNet-18 (28) or a timm model on your ImageFolder dataset with RandAugment / Mixup / Crop, with and without SAflex.

    Example: saflex images --root my_images --aug all --seeds 0,1,2
    """
    from ..data.image_folder import dataset_name
    from ..families.images import backbone_size
    if model is not None:
        backbone_size(model)  # an unknown or unfit backbone fails here, before any run
    configs = build_configs(
        "images", dataset_name(root), aug, saflex, seeds, refine=refine,
        train={"epochs": epochs, "data_root": str(root.resolve()), "model": model},
        options={"size": size, "channels": channels, "normalize": normalize, "val_fraction": val_fraction,
                 "test_fraction": test_fraction, "split_seed": split_seed,
                 "pretrained": str(pretrained) if pretrained else None})
    run.execute(configs)
