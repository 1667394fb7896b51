"""CUB-200-2011 as in ALIA's fine-grained experiment (paper Table 3, "cub (fine-grained)").

Per class, the official train images minus the last 5 in images.txt order are the train subset
(4,994 images); the last 5 are the real extra set (1,000). ALIA selects its checkpoint on the
official test split; we carve a validation split out of the train subset instead (per class,
round(val_fraction x n), at least 1, drawn with a fixed split seed so every run and method
shares it) and report test accuracy of the checkpoint chosen on it.
"""
from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import torch

from ..errors import SaflexError
from ..registry import DATASETS
from .catalog import Folder, register_catalog
from .images import GenerationData, ImageFiles, require_files, resize_transform
from .splits import Split, Splits

FOLDER = "CUB_200_2011"
EXTRA_PER_CLASS = 5
METADATA = ("images.txt", "image_class_labels.txt", "train_test_split.txt", "classes.txt")
# ALIA's generation scripts rename two classes in prompts so Stable Diffusion knows them.
PROMPT_RENAMES = {"Whip poor Will": "Eastern whip-poor-will", "Geococcyx": "Roadrunner"}
PLACE_HINT = ("place the CUB-200-2011 release (images.txt, image_class_labels.txt, train_test_split.txt, "
              "classes.txt, images/) under {root}/CUB_200_2011/ (from https://www.vision.caltech.edu/datasets/cub_200_2011/)")


def _read_table(path: Path) -> dict[int, str]:
    rows = {}
    for line in path.read_text().splitlines():
        if line.strip():
            key, value = line.split(maxsplit=1)
            rows[int(key)] = value.strip()
    return rows


def readable_name(folder: str) -> str:
    """'001.Black_footed_Albatross' -> 'Black footed Albatross', as ALIA's scripts clean it."""
    return re.sub(r"[0-9]", "", folder).replace("_", " ").replace(".", "").strip()


def carve_validation(labels: list[int], fraction: float, seed: int) -> set[int]:
    """Stratified: per class round(fraction x n) (at least 1 when n >= 2) positions, seeded."""
    rng = np.random.default_rng(seed)
    held = set()
    by_class: dict[int, list[int]] = {}
    for position, label in enumerate(labels):
        by_class.setdefault(label, []).append(position)
    for label in sorted(by_class):
        members = by_class[label]
        count = min(len(members) - 1, max(1, round(fraction * len(members)))) if len(members) >= 2 else 0
        held.update(rng.choice(members, size=count, replace=False).tolist())
    return held


def image_files(root: Path) -> dict[int, Path]:
    """Image id -> file, in images.txt order, refusing a release with metadata or images missing."""
    base = Path(root) / FOLDER
    absent = [name for name in METADATA if not (base / name).is_file()]
    if absent:
        raise SaflexError(f"CUB-200-2011 metadata missing ({', '.join(absent)} not in {base}): {PLACE_HINT.format(root=root)}")
    paths = _read_table(base / "images.txt")
    files = {k: base / "images" / paths[k] for k in sorted(paths)}
    require_files(list(files.values()), "CUB-200-2011", PLACE_HINT.format(root=root))
    return files


@register_catalog("cub")
def catalog(data_root: Path) -> list[Folder]:
    """The CUB-200-2011 release (diffusion family): its metadata and every image it lists."""
    return [Folder(f"cub/{FOLDER}", Path(data_root) / FOLDER, lambda: f"{len(image_files(data_root))} images",
                   PLACE_HINT.format(root=data_root))]


@DATASETS.register("cub")
def load_cub(root: Path, *, image_size: int = 224, val_fraction: float = 0.1, split_seed: int = 0) -> GenerationData:
    base = Path(root) / FOLDER
    files = image_files(root)
    labels = {k: int(v) - 1 for k, v in _read_table(base / "image_class_labels.txt").items()}
    is_train = {k: v == "1" for k, v in _read_table(base / "train_test_split.txt").items()}
    folders = [v for _, v in sorted(_read_table(base / "classes.txt").items())]
    order = list(files)  # images.txt order (image ids)

    train_by_class: dict[int, list[int]] = {}
    for k in order:
        if is_train[k]:
            train_by_class.setdefault(labels[k], []).append(k)
    # ALIA's trainset order (the i of a pool's {i}-{j}.png): classes in order, images.txt order within.
    sources = [k for c in sorted(train_by_class) for k in train_by_class[c][:-EXTRA_PER_CLASS]]
    extra = [k for c in sorted(train_by_class) for k in train_by_class[c][-EXTRA_PER_CLASS:]]
    test = [k for k in order if not is_train[k]]
    source_labels = [labels[k] for k in sources]
    held_out = carve_validation(source_labels, val_fraction, split_seed)
    train = [k for i, k in enumerate(sources) if i not in held_out]
    val = [sources[i] for i in sorted(held_out)]

    transform = resize_transform(image_size)

    def split(ids: list[int]) -> Split:
        targets = torch.tensor([labels[k] for k in ids], dtype=torch.long)
        return Split(ImageFiles([files[k] for k in ids], targets, transform), targets)

    names = [readable_name(f) for f in folders]
    provenance = {"dataset": "CUB-200-2011 (ALIA subset)", "root": str(base), "train": len(train), "val": len(val),
                  "test": len(test), "extra": len(extra), "val_fraction": val_fraction, "split_seed": split_seed,
                  "selection_split": "validation carved from the train subset (not the test split)"}
    splits = Splits(split(train), split(val), split(test), len(folders), "multi-class", provenance, names)
    return GenerationData(
        name="cub", splits=splits, extra=split(extra), sources=[files[k] for k in sources],
        source_labels=source_labels, class_names=names,
        class_folders={**{f: i for i, f in enumerate(folders)}, **{n: i for i, n in enumerate(names)}},
        edit_folders=folders,
        prompt_names=[PROMPT_RENAMES.get(n, n) for n in names], normalize="imagenet", held_out=frozenset(held_out))
