"""Generate a pool of images with diffusers, in ALIA's layout, with its manifest (`saflex generate`).

Settings and prompts are ALIA's (lisadunlap/ALIA configs and editing_methods/): Img2Img with
strength 0.6 (CUB) / 0.5 (iWildCam) and guidance 7.5, InstructPix2Pix with image guidance 1.3
and guidance 5.0, Text2Img with one class prompt. Each source image (or each Text2Img batch)
draws its seed from (seed, prompt, image), so an interrupted run resumes where it stopped:
images already on disk are skipped and the manifest is completed. diffusers is an optional
extra (`pip install 'saflex[diffusion]'`); model weights are read from a local folder only.
"""
from __future__ import annotations

import hashlib
import io
from dataclasses import dataclass, replace
from pathlib import Path

import torch
from PIL import Image
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from ..errors import SaflexError
from .images import GenerationData
from .pools import Manifest, PoolImage, read_manifest, sha256_bytes

METHODS = ("img2img", "instructpix2pix", "txt2img")
PIPELINES = {"img2img": "StableDiffusionImg2ImgPipeline", "instructpix2pix": "StableDiffusionInstructPix2PixPipeline",
             "txt2img": "StableDiffusionPipeline"}
DATASET_FOLDERS = {"cub": "Cub2011", "iwildcam": "iWildCamMini"}  # ALIA's folder names
PROMPTS = {  # ALIA configs/{Cub2011,iWildCamMini}/*.yaml and editing_methods/*.py defaults
    ("cub", "img2img"): tuple(f"a photo of a {{}} bird {where}" for where in (
        "flying", "interacting with flowers", "in the water", "on a branch", "on rocks",
        "perched on a birdfeeder", "perched on a fence")),
    ("cub", "instructpix2pix"): ("put the {} bird in the wild",),
    ("cub", "txt2img"): ("a iNaturalist photo of a {} bird.",),
    ("iwildcam", "img2img"): ("a photo of a {} in a grassy field with trees and bushes",
                              "a photo of {} in a forest in the dark",
                              "a photo of {} near a large body of water in the middle of a field",
                              "A photo of {} walking on a dirt trail with twigs and branches"),
    ("iwildcam", "instructpix2pix"): ("put the {} in a grassy field with trees and bushes",
                                      "put the animal in the middle of a forest at night",
                                      "put the animal near a lake", "put the animal in a field with twigs"),
    ("iwildcam", "txt2img"): ("a camera trap photo of {} in the wild.",),
}
STRENGTH = {"cub": 0.6, "iwildcam": 0.5}  # Img2Img (ALIA configs/*/alia.yaml)
GUIDANCE = {"img2img": 7.5, "instructpix2pix": 5.0, "txt2img": 7.5}
IMAGE_GUIDANCE = 1.3  # InstructPix2Pix (ALIA configs/iWildCamMini/alia_instruct.yaml)
MODEL_HINT = ("Stable Diffusion v1.5 / InstructPix2Pix weights cannot be downloaded by saflex: fetch them where the "
              "network allows (e.g. `huggingface-cli download runwayml/stable-diffusion-v1-5 --local-dir DIR`, or "
              "timbrooks/instruct-pix2pix for instructpix2pix) and pass --model DIR")


@dataclass(frozen=True)
class Settings:
    method: str
    strength: float
    guidance: float
    image_guidance: float
    steps: int
    edits: int  # images per source image (img2img, instructpix2pix)
    per_class: int | None  # txt2img images per class; None = the real extra set's count
    batch: int  # txt2img images per pipeline call
    seed: int

    @property
    def folder(self) -> str:
        """ALIA's setting folder; InstructPix2Pix writes its image guidance as 'strength'."""
        if self.method == "img2img":
            return f"strength-{self.strength}_guidance-{self.guidance}"
        return f"strength-{self.image_guidance}_guidance-{self.guidance}" if self.method == "instructpix2pix" else ""


def default_settings(dataset: str, method: str, **overrides) -> Settings:
    if method not in METHODS:
        raise SaflexError(f"unknown generation method {method!r}; choose {', '.join(METHODS)}")
    base = Settings(method, STRENGTH[dataset], GUIDANCE[method], IMAGE_GUIDANCE, 50, 2, None, 2, 0)
    return replace(base, **{k: v for k, v in overrides.items() if v is not None})


def prompt_folder(template: str) -> str:
    return template.replace(" ", "_").replace(".", "")


def job_seed(seed: int, *keys) -> int:
    return int.from_bytes(hashlib.sha256(repr((seed, *keys)).encode()).digest()[:4], "little") & 0x7FFFFFFF


@dataclass(frozen=True)
class Job:
    """One pipeline call: its prompt, its input image (None for txt2img) and the files it writes."""

    prompt: str
    image: Path | None
    seed: int
    entries: tuple[PoolImage, ...]  # without checksums


def plan(data: GenerationData, settings: Settings, templates: tuple[str, ...]) -> list[Job]:
    jobs = []
    for template in templates:
        folder = prompt_folder(template)
        if settings.method == "txt2img":
            extra = torch.bincount(data.extra.targets, minlength=len(data.class_names)).tolist()
            for label, name in enumerate(data.class_names):
                count = settings.per_class or extra[label]
                for start in range(0, count, settings.batch):
                    seed = job_seed(settings.seed, template, label, start)
                    entries = tuple(PoolImage(f"{folder}/{name}/{k}.png", "txt2img", folder, "", name, None, k, seed, "")
                                    for k in range(start, min(count, start + settings.batch)))
                    jobs.append(Job(template.format(data.prompt_names[label]), None, seed, entries))
            continue
        for i, (path, label) in enumerate(zip(data.sources, data.source_labels)):
            if i in data.held_out:  # our validation images: their edits would never be trained on
                continue
            seed, class_folder = job_seed(settings.seed, template, i), data.edit_folders[label]
            entries = tuple(PoolImage(f"{folder}/{settings.folder}/{class_folder}/{i}-{j}.png", settings.method, folder,
                                      settings.folder, class_folder, i, j, seed, "") for j in range(settings.edits))
            jobs.append(Job(template.format(data.prompt_names[label]), path, seed, entries))
    return jobs


def load_pipeline(method: str, model: Path, device: torch.device):
    try:
        import diffusers
    except ImportError:
        raise SaflexError("saflex generate needs diffusers, an optional extra: pip install 'saflex[diffusion]'") from None
    if not (Path(model) / "model_index.json").is_file():
        raise SaflexError(f"no diffusers model folder at {model} (model_index.json missing): {MODEL_HINT}")
    dtype = torch.float16 if device.type == "cuda" else torch.float32
    pipeline = getattr(diffusers, PIPELINES[method]).from_pretrained(
        str(model), torch_dtype=dtype, local_files_only=True, safety_checker=None, requires_safety_checker=False)
    pipeline.set_progress_bar_config(disable=True)
    return pipeline.to(device)


def run_pipeline(pipeline, job: Job, settings: Settings, device: torch.device) -> list[Image.Image]:
    generator = torch.Generator(device=device).manual_seed(job.seed)
    common = {"prompt": job.prompt, "guidance_scale": settings.guidance, "num_inference_steps": settings.steps,
              "num_images_per_prompt": len(job.entries), "generator": generator}
    if settings.method == "txt2img":
        return pipeline(**common).images
    with Image.open(job.image) as image:
        source = image.convert("RGB")
    if settings.method == "img2img":
        return pipeline(image=source, strength=settings.strength, **common).images
    return pipeline(image=source, image_guidance_scale=settings.image_guidance, **common).images


def save_png(image: Image.Image, path: Path) -> str:
    """Write atomically (an interrupted run leaves no torn image to skip later); returns its SHA-256."""
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    data = buffer.getvalue()
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.part")
    temporary.write_bytes(data)
    temporary.replace(path)
    return sha256_bytes(data)


def generate_pool(data: GenerationData, settings: Settings, model: Path, out: Path, *,
                  templates: tuple[str, ...] | None = None, device: torch.device, quiet: bool = False,
                  flush_every: int = 20) -> Manifest:
    """Generate (or complete) the pool {out}/{method}/{dataset}; returns its manifest."""
    if settings.method == "img2img" and int(settings.steps * settings.strength) < 1:
        raise SaflexError(f"img2img runs int(steps x strength) = int({settings.steps} x {settings.strength}) = 0 "
                          f"denoising steps: raise --steps")
    templates = templates or PROMPTS[(data.name, settings.method)]
    folder = Path(out) / settings.method / DATASET_FOLDERS[data.name]
    existing = read_manifest(folder)
    listed = {image.path: image for image in existing.images} if existing else {}
    jobs = plan(data, settings, templates)
    pipeline = None
    manifest = Manifest(folder, [], "saflex generate")
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn())
    try:
        with Progress(*columns, console=Console(stderr=True), disable=quiet) as progress:
            task = progress.add_task(f"{settings.method} {data.name}", total=len(jobs))
            for done, job in enumerate(jobs, start=1):
                paths = [folder / entry.path for entry in job.entries]
                if all(p.is_file() for p in paths):  # resumed: keep the image, complete its manifest entry
                    for entry, path in zip(job.entries, paths):
                        if entry.path not in listed:
                            listed[entry.path] = replace(entry, sha256=sha256_bytes(path.read_bytes()))
                else:
                    pipeline = pipeline or load_pipeline(settings.method, model, device)
                    for entry, image, path in zip(job.entries, run_pipeline(pipeline, job, settings, device), paths):
                        listed[entry.path] = replace(entry, sha256=save_png(image, path))
                progress.update(task, advance=1)
                if done % flush_every == 0:
                    manifest.images = list(listed.values())
                    manifest.write()
    finally:
        manifest.images = list(listed.values())
        if manifest.images:
            manifest.write()
    return manifest
