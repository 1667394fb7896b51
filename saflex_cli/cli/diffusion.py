"""`saflex diffusion`: the paper's Table 3 (generated augmentations, with and without SAflex)."""
from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from ..errors import SaflexError
from ..registry import BACKBONES
from . import options as opt
from .common import build_configs, parse_list
from .shared import RunFlags, family_command


@family_command
def diffusion(
    dataset: opt.Datasets = "cub",
    aug: Annotated[str, typer.Option("--aug", help="none, randaug, pool (a generated pool, needs --pool), a comma list, or all.", rich_help_panel=opt.METHOD)] = "pool",
    pool: Annotated[Optional[Path], typer.Option("--pool", help="Generated pool {root}/{method}/{dataset} in ALIA's layout.", rich_help_panel=opt.METHOD)] = None,
    prompts: Annotated[Optional[str], typer.Option("--prompts", help="Only these prompt folders of the pool (comma list; default all).", rich_help_panel=opt.METHOD)] = None,
    pool_label: Annotated[Optional[str], typer.Option("--pool-label", help="Table row of the pool, e.g. 'Img2Img (w/ finetune)' (default from its method).", rich_help_panel=opt.METHOD)] = None,
    real_extra: Annotated[bool, typer.Option("--real-extra", help="Reference run: real + the real extra images (with --aug none).", rich_help_panel=opt.METHOD)] = False,
    saflex: opt.Saflex = False,
    refine: opt.Refine = None,
    seeds: opt.Seeds = "0,1,2",
    epochs: opt.Epochs = None,
    model: Annotated[Optional[str], typer.Option("--model", help="Backbone: resnet50 (paper), tiny_resnet (smoke tests) or timm/<name>, any timm model (e.g. timm/convnext_tiny).", rich_help_panel=opt.TRAINING)] = None,
    pretrained: Annotated[Optional[str], typer.Option("--pretrained", help="'imagenet' (torchvision IMAGENET1K_V1, resnet50 only), 'none', or a local weights file (a timm backbone needs one of the last two).", rich_help_panel=opt.TRAINING)] = None,
    image_size: Annotated[Optional[int], typer.Option("--image-size", min=8, help="Image side in pixels (paper: 224).", rich_help_panel=opt.TRAINING)] = None,
    loader_workers: opt.LoaderWorkers = None,
    data_root: Annotated[Path, typer.Option("--data-root", help="Folder holding CUB_200_2011/ and/or iwildcam_v2.0/train/.", rich_help_panel=opt.DATA)] = Path("data"),
    run: RunFlags = None,
) -> None:
    """ResNet-50 on CUB / iWildCam with RandAugment or a diffusion-generated pool, with and without SAflex (Table 3).

    Example: saflex diffusion --dataset cub --aug all --pool data/pools/img2img/Cub2011
    """
    from ..families.diffusion import COLUMNS, pool_options, scope_pool_options
    if model is not None:
        BACKBONES.get(model)  # an unknown backbone fails here, before any run
    uses_pool = aug == "all" or "pool" in parse_list(aug, "--aug")
    if uses_pool and pool is None:
        raise SaflexError("--aug pool (and --aug all) needs --pool DIR: a generated pool folder {root}/{method}/{dataset}")
    chosen = pool_options(pool, tuple(parse_list(prompts, "--prompts")) if prompts else None, pool_label) if uses_pool else {}
    configs = build_configs(
        "diffusion", dataset, aug, saflex, seeds, refine=refine, known_datasets=tuple(COLUMNS),
        train={"epochs": epochs, "data_root": str(data_root), "model": model},
        options={"pretrained": pretrained, "image_size": image_size, "loader_workers": loader_workers,
                 "real_extra": real_extra or None, **chosen})
    run.execute(scope_pool_options(configs))
