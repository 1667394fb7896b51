"""`saflex generate`: a pool of diffusion-generated images in ALIA's layout, with its manifest."""
from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.console import Console

from ..errors import SaflexError
from ..registry import DATASETS
from . import options as opt


def generate(
    dataset: Annotated[str, typer.Option("--dataset", help="cub or iwildcam: whose train images (and classes) to use.")] = "cub",
    method: Annotated[str, typer.Option("--method", help="img2img, instructpix2pix or txt2img.")] = "img2img",
    model: Annotated[Path, typer.Option("--model", help="Local diffusers model folder (Stable Diffusion v1.5, or InstructPix2Pix).")] = Path("models/stable-diffusion-v1-5"),
    prompt: Annotated[Optional[list[str]], typer.Option("--prompt", help="Prompt template with {} for the class; repeat for several (default: ALIA's).")] = None,
    strength: Annotated[Optional[float], typer.Option(min=0.0, max=1.0, help="Img2Img strength (ALIA: 0.6 CUB, 0.5 iWildCam).")] = None,
    guidance: Annotated[Optional[float], typer.Option(min=0.0, help="Text guidance (ALIA: 7.5; InstructPix2Pix 5.0).")] = None,
    image_guidance: Annotated[Optional[float], typer.Option("--image-guidance", min=0.0, help="InstructPix2Pix image guidance (ALIA: 1.3).")] = None,
    steps: Annotated[Optional[int], typer.Option(min=1, help="Denoising steps (diffusers' default 50).")] = None,
    edits: Annotated[Optional[int], typer.Option(min=1, help="Edits per source image (ALIA: 2).")] = None,
    per_class: Annotated[Optional[int], typer.Option("--per-class", min=1, help="Text2Img images per class (default: the real extra set's count).")] = None,
    seed: Annotated[Optional[int], typer.Option(help="Base seed; each image's seed is derived from it.")] = None,
    data_root: Annotated[Path, typer.Option("--data-root", help="Folder holding CUB_200_2011/ and/or iwildcam_v2.0/train/.")] = Path("data"),
    out: Annotated[Path, typer.Option("--out", help="Pool root: images go to OUT/{method}/{dataset}/...")] = Path("pools"),
    device: opt.Device = None,
    quiet: opt.Quiet = False,
) -> None:
    """Generate (or resume) a pool with diffusers; `saflex diffusion --aug pool --pool ...` trains on it."""
    from ..families.diffusion import COLUMNS
    from ..data.generate import METHODS, default_settings, generate_pool
    from ..compute.runtime import pick_device
    if dataset not in COLUMNS:
        raise SaflexError(f"unknown dataset {dataset!r}; choose from: {', '.join(COLUMNS)}")
    if method not in METHODS:
        raise SaflexError(f"unknown method {method!r}; choose from: {', '.join(METHODS)}")
    settings = default_settings(dataset, method, strength=strength, guidance=guidance, image_guidance=image_guidance,
                                steps=steps, edits=edits, per_class=per_class, seed=seed)
    data = DATASETS.get(dataset)(data_root)
    manifest = generate_pool(data, settings, model, out, templates=tuple(prompt) if prompt else None,
                             device=pick_device(device), quiet=quiet)
    Console(stderr=True).print(f"pool {manifest.folder}: {len(manifest.images)} images, manifest {manifest.checksum[:12]}; "
                               f"train on it with: saflex diffusion --dataset {dataset} --aug pool --pool {manifest.folder}")
