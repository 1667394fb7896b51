"""`saflex medmnist`: the paper's Table 1."""
from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from ..registry import BACKBONES
from . import options as opt
from .common import build_configs
from .shared import RunFlags, family_command


@family_command
def medmnist(
    dataset: opt.Datasets = "pathmnist",
    aug: opt.Augs = "randaug",
    saflex: opt.Saflex = False,
    refine: opt.Refine = None,
    seeds: opt.Seeds = "0,1,2",
    epochs: opt.Epochs = None,
    as_rgb: Annotated[bool, typer.Option("--as-rgb/--gray", help="Grayscale sets as 3 channels (MedMNIST v2 paper) or 1 (its script).", rich_help_panel=opt.DATA)] = True,
    skip_md5: Annotated[bool, typer.Option("--skip-md5", help="Use a file whose MD5 matches no known release (recorded).", rich_help_panel=opt.DATA)] = False,
    model: Annotated[Optional[str], typer.Option("--model", help="Backbone: resnet18_28 (MedMNIST v2's, the paper's) or timm/<name>, any timm model taking 28x28 inputs (e.g. timm/resnet18).", rich_help_panel=opt.TRAINING)] = None,
    pretrained: Annotated[Optional[Path], typer.Option("--pretrained", help="timm backbones: weights from this local .safetensors/.pth file (its classifier only if the class count matches).", rich_help_panel=opt.TRAINING)] = None,
    data_root: opt.DataRoot = Path("data"),
    run: RunFlags = None,
) -> None:
    """ResNet-18 (28) on MedMNIST with RandAugment / Mixup / Crop, with and without SAflex (Tables 1, 7).

    Example: saflex medmnist --dataset pneumoniamnist --aug all --seeds 0,1,2 --data-root data
    """
    from ..data.medmnist import flags_2d
    if model is not None:
        BACKBONES.get(model)  # an unknown backbone fails here, before any run
    configs = build_configs(
        "medmnist", dataset, aug, saflex, seeds, refine=refine, known_datasets=flags_2d(),
        train={"epochs": epochs, "data_root": str(data_root), "model": model},
        options={"as_rgb": as_rgb, "skip_md5": skip_md5, "pretrained": str(pretrained) if pretrained else None})
    run.execute(configs)
