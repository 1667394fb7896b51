"""Any image dataset in torchvision's ImageFolder layout, for `saflex images`.

`ROOT/train/<class>/*.png|jpg...`, with `ROOT/val/` and `ROOT/test/` where the user has them; a
missing val or test split (or a plain `ROOT/<class>/` tree) is carved from the images there,
stratified by class with a fixed split seed (cub.py's carving), so every run and method shares
it. Classes are the folder names in sorted order. Within a split, samples are ordered by file
name, then class: files named by their index in a source dataset keep its order (the BreastMNIST
export in studies/ relies on it). Images are decoded once (data/images.py's reading) into a uint8
tensor file in the cache, keyed by the files' checksum, so runs and epochs do not decode again.
"""
from __future__ import annotations

import hashlib
import os
import re
from dataclasses import dataclass
from pathlib import Path

import torch
from torchvision.datasets.folder import IMG_EXTENSIONS

from ..errors import SaflexError
from ..store.files import atomic_write
from .cub import carve_validation
from .download import md5sum
from .images import ImageFiles, open_image, resize_transform
from .splits import Split, Splits

SPLITS = ("train", "val", "test")
CACHE_FORMAT = 1  # bump when the decoding changes: older cache files are then not read
GRAY_BANDS = {("1",), ("L",), ("L", "A"), ("I",), ("F",)}


@dataclass(frozen=True)
class FolderTree:
    """What is on disk: the classes, and the (file, class id) pairs of each split folder there."""

    root: Path
    class_names: tuple[str, ...]
    files: dict[str, tuple[tuple[Path, int], ...]]  # split folder ('' for a plain class tree) -> samples

    @property
    def paths(self) -> list[Path]:
        return [path for samples in self.files.values() for path, _ in samples]


def dataset_name(root: Path) -> str:
    """The folder's name, as a run name can hold it."""
    return re.sub(r"[^A-Za-z0-9._-]+", "-", Path(root).resolve().name).strip("-") or "images"


def _class_samples(folder: Path, class_id: int) -> list[tuple[Path, int]]:
    files = sorted(p for p in folder.rglob("*") if p.is_file() and not p.name.startswith("."))
    not_images = [p for p in files if p.suffix.lower() not in IMG_EXTENSIONS]
    if not_images:
        raise SaflexError(f"{not_images[0]} is not an image (ImageFolder reads {', '.join(IMG_EXTENSIONS)}): "
                          f"move it out of {folder.parent}")
    if not files:
        raise SaflexError(f"{folder} is empty: put the class's images in it, or remove the folder")
    return [(p, class_id) for p in files]


def _read_split(folder: Path, class_names: list[str]) -> tuple[tuple[Path, int], ...]:
    """One split folder's samples, by file name then class."""
    stray = sorted(p for p in folder.iterdir() if p.is_file() and not p.name.startswith("."))
    if stray:
        raise SaflexError(f"{stray[0]} is not in a class folder: move it into {folder}/<class>/ or out of {folder}")
    present = sorted(p.name for p in folder.iterdir() if p.is_dir() and not p.name.startswith("."))
    foreign = [name for name in present if name not in class_names]
    if foreign:
        raise SaflexError(f"{folder / foreign[0]} is a class the training split lacks: add it to the training "
                          f"split or remove it")
    samples = [s for i, name in enumerate(class_names) if name in present for s in _class_samples(folder / name, i)]
    samples.sort(key=lambda sample: (sample[0].relative_to(folder).parts[1:], sample[1]))
    return tuple(samples)


def scan(root: Path) -> FolderTree:
    """The layout under `root`, refused in one line where it is not an ImageFolder tree."""
    root = Path(root)
    if not root.is_dir():
        raise SaflexError(f"--root {root} is not a folder: give a folder of class folders, or one with train/ "
                          f"(and val/, test/) holding them")
    folders = sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    if (root / "train").is_dir():
        unknown = [p for p in folders if p.name not in SPLITS]
        if unknown:
            raise SaflexError(f"{unknown[0]} is none of train/, val/, test/: rename or move it out of {root}")
        top = root / "train"
        splits = [name for name in SPLITS if (root / name).is_dir()]
    else:
        top, splits = root, [""]
    class_names = sorted(p.name for p in top.iterdir() if p.is_dir() and not p.name.startswith("."))
    if len(class_names) < 2:
        raise SaflexError(f"{top} holds {len(class_names)} class folder(s); a classifier needs at least 2: "
                          f"one folder of images per class")
    return FolderTree(root, tuple(class_names), {name: _read_split(root / name, class_names) for name in splits})


_DIGESTS: dict[tuple, str] = {}  # the files' (path, size, mtime) -> digest: hashed once per process


def checksum(tree: FolderTree) -> str:
    """MD5 over every file's relative path, class and MD5: the folder's content, in the run's identity."""
    stats = tuple((str(p), p.stat().st_size, p.stat().st_mtime_ns) for p in tree.paths)
    if stats not in _DIGESTS:
        digest = hashlib.md5()
        for split, samples in tree.files.items():
            for path, label in samples:
                digest.update(f"{path.relative_to(tree.root)}\t{label}\t{md5sum(path)}\n".encode())
        _DIGESTS[stats] = digest.hexdigest()
    return _DIGESTS[stats]


def file_channels(paths: list[Path]) -> int:
    """1 when every file is grayscale, else 3."""
    for path in paths:
        with open_image(path) as image:
            if image.getbands() not in GRAY_BANDS:
                return 3
    return 1


def cache_folder() -> Path:
    """$SAFLEX_CACHE, else the user's cache folder (XDG), /saflex/images."""
    base = os.environ.get("SAFLEX_CACHE") or Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "saflex"
    return Path(base) / "images"


def cache_path(tree: FolderTree, size: int, channels: int | None) -> Path:
    key = hashlib.sha256(f"{CACHE_FORMAT}|{checksum(tree)}|{size}|{channels}".encode()).hexdigest()[:20]
    return cache_folder() / f"{key}.pt"


def decode(tree: FolderTree, size: int, channels: int | None) -> tuple[torch.Tensor, Path]:
    """Every image of the tree as uint8 (N, C, size, size), in the tree's order, from the cache or
    decoded now (and cached); `channels` None: as the files are."""
    path = cache_path(tree, size, channels)
    if path.is_file():
        try:
            cached = torch.load(path, weights_only=True)
            if cached["count"] == len(tree.paths):
                return cached["images"], path
        except (OSError, RuntimeError, EOFError, KeyError, TypeError):
            pass  # an unreadable cache file is decoded again and replaced
    mode = {1: "L", 3: "RGB"}[channels or file_channels(tree.paths)]
    files = ImageFiles(tree.paths, torch.zeros(len(tree.paths), dtype=torch.long), resize_transform(size, mode))
    # One by one, not through a DataLoader, whose start draws from torch's global generator: a run
    # that decodes must initialise its model as one that reads the cache.
    images = torch.stack([files[i][0] for i in range(len(files))])
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(path, lambda handle: torch.save({"count": len(tree.paths), "images": images}, handle), binary=True)
    return images, path


def carve(samples: list[tuple[int, int]], fraction: float, seed: int) -> tuple[list, list]:
    """(kept, carved) of (index, class) samples: per class round(fraction x n), cub.py's rule."""
    held = carve_validation([label for _, label in samples], fraction, seed)
    return ([s for i, s in enumerate(samples) if i not in held], [s for i, s in enumerate(samples) if i in held])


def assign_splits(tree: FolderTree, val_fraction: float, test_fraction: float,
                  split_seed: int) -> tuple[dict[str, list[tuple[int, int]]], dict]:
    """(index into tree.paths, class) per split, and where each split came from. A split without
    its folder is carved from the training pool: test first, then val, each a share of the pool."""
    indexed, start = {}, 0
    for name, samples in tree.files.items():
        indexed[name or "train"] = [(start + i, label) for i, (_, label) in enumerate(samples)]
        start += len(samples)
    pool, sources = indexed["train"], {name: f"{name}/" for name in indexed}
    carve_test = "test" not in indexed
    if carve_test:
        pool, indexed["test"] = carve(pool, test_fraction, split_seed)
        sources["test"] = f"carved: {test_fraction} of the training images, split seed {split_seed}"
    if "val" not in indexed:  # its share of what the test split left
        pool, indexed["val"] = carve(pool, val_fraction / (1 - test_fraction) if carve_test else val_fraction, split_seed)
        sources["val"] = f"carved: {val_fraction} of the training images, split seed {split_seed}"
    indexed["train"] = pool
    sources["train"] = "train/" if "train" in tree.files else "the class folders, less the carved splits"
    return {name: indexed[name] for name in SPLITS}, sources


def require_every_class(tree: FolderTree, splits: dict[str, list[tuple[int, int]]], sources: dict) -> None:
    for split, samples in splits.items():
        present = {label for _, label in samples}
        for class_id, name in enumerate(tree.class_names):
            if class_id not in present:
                raise SaflexError(f"class {name!r} has no images in the {split} split ({sources[split]}): give it "
                                  f"images there, or more images to carve from")


def load_image_folder(root: Path, *, size: int, channels: int | None = None, val_fraction: float = 0.1,
                      test_fraction: float = 0.2, split_seed: int = 0) -> Splits:
    """The three splits of an ImageFolder tree as uint8 tensors, with what the record keeps."""
    if not (0 < val_fraction < 1 and 0 < test_fraction < 1 and val_fraction + test_fraction < 1):
        raise SaflexError(f"val_fraction {val_fraction} and test_fraction {test_fraction} must each be in (0, 1) "
                          f"and sum to less than 1")
    tree = scan(root)
    assigned, sources = assign_splits(tree, val_fraction, test_fraction, split_seed)
    require_every_class(tree, assigned, sources)
    images, cached = decode(tree, size, channels)

    def split(samples: list[tuple[int, int]]) -> Split:
        index = torch.tensor([i for i, _ in samples], dtype=torch.long)
        return Split(images[index], torch.tensor([label for _, label in samples], dtype=torch.long))

    provenance = {"root": str(Path(root).resolve()), "md5": checksum(tree), "classes": list(tree.class_names),
                  "splits": sources, "counts": {name: len(samples) for name, samples in assigned.items()},
                  "size": size, "channels": int(images.shape[1]),
                  "channels_from": "--channels" if channels else "the files", "cache": str(cached)}
    task = "binary" if len(tree.class_names) == 2 else "multi-class"
    return Splits(split(assigned["train"]), split(assigned["val"]), split(assigned["test"]), len(tree.class_names),
                  task, provenance, list(tree.class_names))
