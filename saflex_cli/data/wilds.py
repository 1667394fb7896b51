"""WILDS iWildCam v2.0 read from its own files, with FLYP's captions (paper Table 4).

The layout is WILDS': `{root}/iwildcam_v2.0/metadata.csv` (columns split, y, filename, ...) and
the images in `{root}/iwildcam_v2.0/train/`. The `wilds` package is not used: its import starts
a network version check. Splits as WILDS: train 129,809, id_val 7,314, id_test 8,154, test
(OOD) 42,791; 182 classes. Captions are FLYP's: the English name of each class in two templates.
"""
from __future__ import annotations

from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import pandas as pd
import torch
import torchvision.transforms.v2 as T
from torch import Tensor
from torch.utils.data import Dataset

from ..errors import SaflexError
from .catalog import Folder, register_catalog
from .images import ImageFiles

FOLDER = "iwildcam_v2.0"
WILDS_SPLITS = {"train": 129_809, "id_val": 7_314, "id_test": 8_154, "test": 42_791}
NUM_CLASSES = 182
TEMPLATES = ("a photo of {c}.", "{c} in the wild.")  # FLYP's iWildCam templates
LABELS_FILE = "resources/iwildcam_flyp_labels.csv"  # FLYP's labels.csv (y, category_id, name, english)
DOWNLOAD_HINT = ("Download WILDS iWildCam v2.0 (about 12 GB, e.g. `python -c \"import wilds; "
                 "wilds.get_dataset('iwildcam', download=True, root_dir='ROOT')\"`) and pass --data-root ROOT "
                 f"(the folder holding {FOLDER}/)")


def class_names() -> list[str]:
    """English names of the 182 WILDS classes, indexed by y (rows with y = 99999 are unused ids)."""
    with resources.files("saflex_cli").joinpath(LABELS_FILE).open() as handle:
        table = pd.read_csv(handle)
    table = table[table.y < 99999].sort_values("y")
    return table.english.tolist()


def captions(names: list[str]) -> list[list[str]]:
    return [[template.format(c=name) for template in TEMPLATES] for name in names]


def read_metadata(root: Path) -> pd.DataFrame:
    path = Path(root) / FOLDER / "metadata.csv"
    if not path.is_file():
        raise SaflexError(f"iWildCam not found: {path} is missing. {DOWNLOAD_HINT}")
    table = pd.read_csv(path)
    missing = {"split", "y", "filename"} - set(table.columns)
    if missing:
        raise SaflexError(f"{path} lacks column(s) {', '.join(sorted(missing))}: is it WILDS' iWildCam v2.0 metadata.csv?")
    return table


def train_transform(size: int):
    """FLYP's training crop; the output stays uint8 (CLIP's normalisation is inside the model)."""
    return T.Compose([T.RandomResizedCrop(size, scale=(0.9, 1.0), interpolation=T.InterpolationMode.BICUBIC),
                      T.PILToTensor()])


def eval_transform(size: int):
    return T.Compose([T.Resize(size, interpolation=T.InterpolationMode.BICUBIC), T.CenterCrop(size),
                      T.PILToTensor()])


class CaptionedImages(Dataset):
    """((image, caption tokens), class id): one row per (image, template), as FLYP's training csv."""

    def __init__(self, images: ImageFiles, class_tokens: Tensor):
        self.images, self.class_tokens = images, class_tokens  # (C, T, L)
        self.templates = class_tokens.shape[1]

    def __len__(self) -> int:
        return len(self.images) * self.templates

    def __getitem__(self, index: int):
        image_index, template = divmod(index, self.templates)
        image, label = self.images[image_index]
        return (image, self.class_tokens[label, template]), label


@dataclass
class IWildCam:
    splits: dict[str, ImageFiles]  # train (training crop), id_val, id_test, test (evaluation crop)
    class_tokens: Tensor  # (182, 2, context length)
    provenance: dict


def split_rows(root: Path) -> dict[str, pd.DataFrame]:
    """metadata.csv's rows of each WILDS split, refusing a layout the loader cannot use: a split
    without rows, its first or last image missing, class ids outside 0..181."""
    table = read_metadata(root)
    folder = Path(root) / FOLDER / "train"
    splits = {}
    for name in WILDS_SPLITS:
        rows = table[table.split == name]
        if rows.empty:
            raise SaflexError(f"{Path(root) / FOLDER / 'metadata.csv'} has no '{name}' rows: WILDS iWildCam v2.0 "
                              f"has splits {', '.join(WILDS_SPLITS)}")
        absent = [folder / f for f in rows.filename.iloc[[0, -1]] if not (folder / f).is_file()]
        if absent:
            raise SaflexError(f"image {absent[0]} listed in metadata.csv is missing: is {folder} complete?")
        splits[name] = rows
    labels = pd.concat([rows.y for rows in splits.values()])
    if int(labels.min()) < 0 or int(labels.max()) >= NUM_CLASSES:
        raise SaflexError(f"class ids in metadata.csv must lie in 0..{NUM_CLASSES - 1}: is it iWildCam v2.0?")
    return splits


@register_catalog("wilds")
def catalog(data_root: Path) -> list[Folder]:
    """FLYP's WILDS iWildCam v2.0, checked as the loader checks it (not every image: 200k files)."""
    return [Folder("wilds/iwildcam_v2.0", Path(data_root) / FOLDER,
                   lambda: f"{sum(len(rows) for rows in split_rows(data_root).values())} images listed",
                   hint=DOWNLOAD_HINT)]


def load_iwildcam(root: Path, tokenize, image_size: int) -> IWildCam:
    folder = Path(root) / FOLDER / "train"
    splits = {}
    for name, rows in split_rows(root).items():
        transform = train_transform(image_size) if name == "train" else eval_transform(image_size)
        splits[name] = ImageFiles([folder / f for f in rows.filename], torch.tensor(rows.y.to_numpy(), dtype=torch.long),
                                  transform)
    counts = {name: len(images) for name, images in splits.items()}
    texts = captions(class_names())
    class_tokens = tokenize([c for per_class in texts for c in per_class]).reshape(NUM_CLASSES, len(TEMPLATES), -1)
    provenance = {"dataset": "WILDS iWildCam v2.0", "root": str(root), "split_sizes": counts,
                  "full_size": counts == WILDS_SPLITS, "templates": list(TEMPLATES), "image_size": image_size}
    return IWildCam(splits, class_tokens, provenance)
