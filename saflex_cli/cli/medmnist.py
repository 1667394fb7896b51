"""`saflex medmnist`: the paper's Table 1."""
from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from ..data.medmnist import flags_2d
from . import options as opt
from .common import build_configs
from .shared import RunFlags, family_command


@family_command
def medmnist(
    dataset: opt.Datasets = "pathmnist",
    aug: opt.Augs = "randaug",
    saflex: opt.Saflex = False,
    seeds: opt.Seeds = "0,1,2",
    epochs: opt.Epochs = None,
    as_rgb: Annotated[bool, typer.Option("--as-rgb/--gray", help="Grayscale sets as 3 channels (MedMNIST v2 paper) or 1 (its script).")] = True,
    skip_md5: Annotated[bool, typer.Option("--skip-md5", help="Use a file whose MD5 matches no known release (recorded).")] = False,
    data_root: opt.DataRoot = Path("data"),
    run: RunFlags = None,
) -> None:
    """ResNet-18 (28) on MedMNIST with RandAugment / Mixup, with and without SAflex (Table 1)."""
    configs = build_configs(
        "medmnist", dataset, aug, saflex, seeds, known_datasets=flags_2d(),
        train={"epochs": epochs, "data_root": str(data_root)},
        options={"as_rgb": as_rgb, "skip_md5": skip_md5})
    run.execute(configs)
