"""Image datasets read from disk (CUB, iWildCam) with the transforms of ALIA (Dunlap et al. 2023).

Images come out as uint8 (3, H, W) tensors: augmenters (RandAugment, a generated pool) work on
raw images and the model normalises inside itself, so the trainer has one path for every family.
"""
from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import torch
import torchvision.transforms.v2.functional as TF
from PIL import Image
from torch import Tensor

from ..errors import SaflexError
from .splits import Split, Splits


def resize_transform(size: int, mode: str = "RGB") -> Callable[[Image.Image], Tensor]:
    """ALIA's CUB transform: Resize((224, 224)); normalisation is left to the model. `mode` "L"
    keeps one channel (ImageFolder's grayscale sets); an image already of the size is not resampled."""
    def transform(image: Image.Image) -> Tensor:
        return TF.pil_to_tensor(image.convert(mode).resize((size, size), Image.BILINEAR))
    return transform


def wilds_transform(size: int) -> Callable[[Image.Image], Tensor]:
    """ALIA's iWildCam transform: to tensor, resize 448x448, keep rows 10..410 (drops the camera
    banner), resize to 224x224; no normalisation. Returned as uint8 (x 255, rounded)."""
    def transform(image: Image.Image) -> Tensor:
        x = TF.to_dtype(TF.pil_to_tensor(image.convert("RGB")), torch.float32, scale=True)
        x = TF.resize(x, [448, 448], antialias=True)[:, 10:410, :]
        x = TF.resize(x, [size, size], antialias=True)
        return (x.clamp(0, 1) * 255).round().to(torch.uint8)
    return transform


class ImageFiles(torch.utils.data.Dataset):
    """(uint8 image, class id) pairs from a list of files, for LoaderBatches or preloading."""

    def __init__(self, paths: list[Path], targets: Tensor, transform: Callable[[Image.Image], Tensor]):
        self.paths, self.targets, self.transform = list(paths), targets, transform

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, index: int):
        with open_image(self.paths[index]) as image:
            return self.transform(image), self.targets[index]


@contextmanager
def open_image(path: Path):
    """The image at `path`, decoded; a file PIL cannot read is one error naming it."""
    try:
        image = Image.open(path)
        image.load()
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as error:
        raise SaflexError(f"{path} is not a readable image ({error}): replace or remove it") from None
    with image:
        yield image


def require_files(paths: list[Path], what: str, hint: str) -> None:
    """One error naming how many files are missing, the first of them, and what to place where."""
    missing = [p for p in paths if not Path(p).is_file()]
    if missing:
        raise SaflexError(f"{len(missing)} of {len(paths)} {what} images are missing (first: {missing[0]}): {hint}")


def preload(dataset: ImageFiles, workers: int = 0, batch_size: int = 64) -> Split:
    """Read a whole split once into a uint8 tensor (validation and test are read every epoch)."""
    loader = torch.utils.data.DataLoader(dataset, batch_size=batch_size, num_workers=workers)
    images, targets = zip(*loader) if len(dataset) else ((), ())
    return Split(torch.cat(images), torch.cat(targets))


@dataclass
class GenerationData:
    """A dataset of the diffusion experiments, plus what a generated pool is keyed on.

    `sources` / `source_labels` list the real train images in ALIA's order: the `i` of a pool's
    `{i}-{j}.png` indexes them. `held_out` are sources carved into our validation split, whose
    edits must not be trained on. `class_folders` maps every folder name a generator writes
    for a class (ALIA's and the plain class name) to its label.
    """

    name: str
    splits: Splits  # train (ImageFiles), val and test (ImageFiles; preloaded by the recipe)
    extra: Split  # the real extra images (ImageFiles): the template of a pool's per-class counts
    sources: list[Path]
    source_labels: list[int]
    class_names: list[str]
    class_folders: dict[str, int]
    edit_folders: list[str]  # the class folder ALIA's img2img / instruct scripts write (txt2img: class_names)
    prompt_names: list[str]  # the class name that goes into a prompt's {}
    normalize: str  # "imagenet" or "none": what the model does to [0, 255] inputs
    held_out: frozenset[int] = field(default_factory=frozenset)
