"""The iWildCam subset of ALIA's OOD experiment (paper Table 3, "iwildcam (OOD)").

File lists ship with the package (resources/iwildcam_alia_*_subset.csv: filename, y and
location of lisadunlap/ALIA @ ce01c94 data/iwildcam_v2.0/*_subset.csv, other columns dropped):
train 6,052 (WILDS train, 15 locations), val 2,826 (WILDS id_test), test 8,483 (WILDS test,
2 unseen locations), real extra 2,224. Images are read from {root}/iwildcam_v2.0/train/.
"""
from __future__ import annotations

from importlib import resources
from pathlib import Path

import pandas as pd
import torch

from ..errors import SaflexError
from ..registry import DATASETS
from .catalog import Folder, register_catalog
from .images import GenerationData, ImageFiles, require_files, wilds_transform
from .splits import Split, Splits

CLASS_YS = (0, 24, 32, 36, 48, 49, 52)  # WILDS y of the seven classes; labels 0..6 by rank
CLASS_NAMES = ("background", "cattle", "elephants", "impalas", "zebras", "giraffes", "dik-diks")
LISTS = {"train": "train", "val": "val", "test": "test", "extra": "train_extra"}
PLACE_HINT = ("place the WILDS iWildCam v2.0 images under {root}/iwildcam_v2.0/train/ "
              "(from https://wilds.stanford.edu/datasets/, `wilds` package: get_dataset('iwildcam', download=True))")


def file_list(split: str, lists: Path | None = None) -> pd.DataFrame:
    """ALIA's list of a split (columns filename, y, ...), shipped or from a folder of the same files."""
    name = f"iwildcam_alia_{LISTS[split]}_subset.csv"
    if lists is not None:
        return pd.read_csv(Path(lists) / name)
    with resources.files("saflex_cli").joinpath(f"resources/{name}").open() as handle:
        return pd.read_csv(handle)


def image_folder(root: Path) -> Path:
    return Path(root) / "iwildcam_v2.0" / "train"


def image_paths(root: Path, frames: dict[str, pd.DataFrame]) -> dict[str, list[Path]]:
    """The listed images of each split, refusing a folder where any of them is missing."""
    folder = image_folder(root)
    if not folder.is_dir():
        raise SaflexError(f"no iWildCam image folder at {folder}: {PLACE_HINT.format(root=root)}")
    paths = {split: [folder / f for f in frame.filename] for split, frame in frames.items()}
    require_files([p for split in paths for p in paths[split]], "iWildCam", PLACE_HINT.format(root=root))
    return paths


@register_catalog("iwildcam")
def catalog(data_root: Path) -> list[Folder]:
    """The images of ALIA's iWildCam subset (diffusion family): every listed file must be there."""
    def inspect() -> str:
        paths = image_paths(data_root, {split: file_list(split) for split in LISTS})
        return f"{sum(len(p) for p in paths.values())} images"
    return [Folder("iwildcam/alia-subset", image_folder(data_root), inspect, PLACE_HINT.format(root=data_root))]


@DATASETS.register("iwildcam")
def load_iwildcam(root: Path, *, image_size: int = 224, lists: Path | None = None, **_) -> GenerationData:
    label_of = {y: i for i, y in enumerate(CLASS_YS)}
    transform = wilds_transform(image_size)
    frames = {split: file_list(split, lists) for split in LISTS}
    paths = image_paths(root, frames)

    def split(name: str) -> Split:
        targets = torch.tensor([label_of[y] for y in frames[name].y], dtype=torch.long)
        return Split(ImageFiles(paths[name], targets, transform), targets)

    provenance = {"dataset": "iWildCam v2.0 (ALIA subset)", "root": str(image_folder(root)),
                  **{split: len(frame) for split, frame in frames.items()},
                  "lists": "lisadunlap/ALIA@ce01c94 data/iwildcam_v2.0/*_subset.csv"}
    splits = Splits(split("train"), split("val"), split("test"), len(CLASS_YS), "multi-class", provenance,
                    list(CLASS_NAMES))
    return GenerationData(
        name="iwildcam", splits=splits, extra=split("extra"), sources=paths["train"],
        source_labels=splits.train.targets.tolist(), class_names=list(CLASS_NAMES),
        class_folders={name: i for i, name in enumerate(CLASS_NAMES)}, edit_folders=list(CLASS_NAMES),
        prompt_names=list(CLASS_NAMES),
        normalize="none")
