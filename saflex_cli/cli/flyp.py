"""`saflex flyp`: the paper's Table 4 (CLIP ViT-B/16 on WILDS iWildCam)."""
from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from ..errors import SaflexError
from . import options as opt
from .common import build_configs, parse_list
from .shared import RunFlags, family_command

Method = Annotated[str, typer.Option("--method", help="zeroshot, lpft, flyp, a comma list, or 'all' (every row of Table 4).", rich_help_panel=opt.METHOD)]
Epochs = Annotated[Optional[int], typer.Option(min=0, help="Training epochs (recipe default: 20; zeroshot: 0).", rich_help_panel=opt.TRAINING)]
Pretrained = Annotated[Optional[str], typer.Option("--pretrained", help="CLIP weights: a local file, an open_clip tag (openai), or 'random'.", rich_help_panel=opt.TRAINING)]
Arch = Annotated[Optional[str], typer.Option("--model", help="open_clip architecture (default ViT-B-16-quickgelu, which the openai weights need).", rich_help_panel=opt.TRAINING)]


@family_command
def flyp(
    method: Method = "flyp",
    aug: opt.Augs = "none",
    saflex: opt.Saflex = False,
    refine: opt.Refine = None,
    seeds: opt.Seeds = "0,1,2",
    epochs: Epochs = None,
    pretrained: Pretrained = None,
    model: Arch = None,
    loader_workers: opt.LoaderWorkers = None,
    data_root: opt.DataRoot = Path("data"),
    run: RunFlags = None,
) -> None:
    """Zero-shot, LP-FT and FLYP (+ WILDS RandAugment, + SAflex) fine-tuning of CLIP on iWildCam (Table 4).

    Example: saflex flyp --method all --aug all --pretrained data/clip/open_clip_pytorch_model.bin
    """
    from ..families.flyp import METHODS
    chosen = list(METHODS) if method == "all" else parse_list(method, "--method")
    unknown = [m for m in chosen if m not in METHODS]
    if unknown:
        raise SaflexError(f"unknown --method {', '.join(unknown)}; choose from: {', '.join(METHODS)}, all")
    configs = []
    for name in chosen:
        trains = name == "flyp"  # the baselines run without upstream augmentation, as in Table 4
        if not trains and method != "all" and (aug != "none" or saflex or refine):
            raise SaflexError(f"--method {name} runs without augmentation: drop --aug, --saflex and --refine")
        configs += build_configs(
            "flyp", "iwildcam", aug if trains else "none", saflex and trains, seeds, refine=refine if trains else None,
            train={"epochs": 0 if name == "zeroshot" else epochs, "data_root": str(data_root), "model": model},
            options={"method": name, "pretrained": pretrained, "loader_workers": loader_workers})
    run.execute(configs)
