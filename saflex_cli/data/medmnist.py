"""MedMNIST v2 (2D) read straight from the official npz files.

The `medmnist` package's INFO gives URL, MD5, task and classes; its dataset classes are not used
because they assert the sample counts of the current release, and 2.2.4 (Jan 2024) changed
OrganA/C/S (blank samples removed). Both releases are accepted and the one used is recorded.
"""
from __future__ import annotations

import warnings
import zipfile
from pathlib import Path

import numpy as np
import torch

from ..errors import SaflexError
from .catalog import DataFile, family_folder, register_catalog, unknown_checksum
from .download import download, md5sum
from .splits import Split, Splits

# Releases before medmnist 2.2.4, which the paper most likely used: flag -> (MD5, split sizes).
OLDER_RELEASES = {
    "organamnist": ("866b832ed4eeba67bfb9edee1d5544e6", {"train": 34581, "val": 6491, "test": 17778}),
    "organcmnist": ("0afa5834fb105f7705a7d93372119a21", {"train": 13000, "val": 2392, "test": 8268}),
    "organsmnist": ("e5c39f1af030238290b9557d9503af9d", {"train": 13940, "val": 2452, "test": 8829}),
}
SIZES = (28, 64, 128, 224)
OLDER_RECORD = "https://zenodo.org/records/6496656/files/{flag}.npz?download=1"
SUPPORTED_TASKS = {"multi-class": "multi-class", "binary-class": "binary"}
SKIP_MD5 = "pass --skip-md5 to `saflex medmnist`"
TABLE1_DATASETS = ("pathmnist", "dermamnist", "tissuemnist", "bloodmnist", "octmnist",
                   "organamnist", "organcmnist", "organsmnist")


def _medmnist_info() -> dict:
    with warnings.catch_warnings():  # medmnist's import trips a torch.jit deprecation warning
        warnings.simplefilter("ignore", FutureWarning)
        from medmnist import INFO
    return INFO


def info(flag: str) -> dict:
    INFO = _medmnist_info()
    if flag not in INFO or "3d" in flag:
        names = ", ".join(sorted(k for k in INFO if "3d" not in k))
        raise SaflexError(f"unknown MedMNIST 2D dataset {flag!r}; choose one of: {names}")
    return INFO[flag]


def flags_2d() -> list[str]:
    return sorted(k for k in _medmnist_info() if "3d" not in k)


def npz_path(root: Path, flag: str, size: int) -> Path:
    return Path(root) / (f"{flag}.npz" if size == 28 else f"{flag}_{size}.npz")


def identify_release(flag: str, size: int, checksum: str) -> str | None:
    meta = info(flag)
    current = meta["MD5"] if size == 28 else meta[f"MD5_{size}"]
    if checksum == current:
        return "current"
    if size == 28 and flag in OLDER_RELEASES and checksum == OLDER_RELEASES[flag][0]:
        return "pre-2.2.4"
    return None


def data_file(root: Path, flag: str, size: int) -> DataFile:
    """The npz of one flag and size: the current Zenodo record first, then the v2 record (6496656)
    as a mirror for 28x28, whose content is accepted only where its MD5 is a known release."""
    meta = info(flag)
    urls = [meta["url"] if size == 28 else meta[f"url_{size}"]]
    releases = {meta["MD5"] if size == 28 else meta[f"MD5_{size}"]: "official"}
    if size == 28:
        urls.append(OLDER_RECORD.format(flag=flag))
    if size == 28 and flag in OLDER_RELEASES:
        releases[OLDER_RELEASES[flag][0]] = "pre-2.2.4"
    name = f"medmnist/{flag}" + ("" if size == 28 else f"_{size}")
    return DataFile(name, npz_path(root, flag, size), tuple(urls), releases, use_anyway=SKIP_MD5)


def folder(data_root: Path) -> Path:
    return family_folder(data_root, "medmnist")


@register_catalog("medmnist")
def catalog(data_root: Path) -> list[DataFile]:
    """Every 2D flag at every size MedMNIST publishes, under <data root>/medmnist/."""
    return [data_file(folder(data_root), flag, size) for flag in flags_2d() for size in SIZES]


def ensure_file(root: Path, flag: str, size: int) -> Path:
    path = npz_path(root, flag, size)
    if path.exists():
        return path
    wanted = data_file(root, flag, size)
    return download(list(wanted.urls), path, set(wanted.releases))


def _to_nchw(images: np.ndarray, as_rgb: bool) -> torch.Tensor:
    if images.ndim == 3:
        images = images[..., None]
    if images.ndim != 4 or images.dtype != np.uint8:
        raise SaflexError(f"expected uint8 images of shape (N, H, W[, C]), got {images.dtype} {images.shape}")
    tensor = torch.from_numpy(np.ascontiguousarray(images.transpose(0, 3, 1, 2)))
    if as_rgb and tensor.shape[1] == 1:
        tensor = tensor.expand(-1, 3, -1, -1).contiguous()
    return tensor


def load_medmnist(flag: str, root: Path, *, size: int = 28, as_rgb: bool = True,
                  skip_md5: bool = False) -> Splits:
    """Read {root}/{flag}.npz (downloading it if absent); images uint8 (N, C, H, W). `root` is the
    MedMNIST folder itself (`folder(data_root)`)."""
    meta = info(flag)
    task = meta["task"]
    if task not in SUPPORTED_TASKS:
        raise SaflexError(
            f"{flag} is a {task!r} task; saflex trains single-label classifiers (multi-class or "
            f"binary) and would train it with the wrong loss and metric, so it refuses it")
    path = ensure_file(root, flag, size)
    checksum = md5sum(path)
    release = identify_release(flag, size, checksum)
    if release is None and not skip_md5:
        raise SaflexError(unknown_checksum(path, checksum, flag, SKIP_MD5))
    try:
        with np.load(path) as npz:
            arrays = {key: npz[key] for key in npz.files}
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as error:
        raise SaflexError(f"{path} is not a readable npz file ({error}); delete it and download it again") from None
    num_classes = len(meta["label"])
    splits = {}
    for split in ("train", "val", "test"):
        if f"{split}_images" not in arrays or f"{split}_labels" not in arrays:
            raise SaflexError(f"{path} lacks {split}_images/{split}_labels: not a MedMNIST npz file")
        images = _to_nchw(arrays[f"{split}_images"], as_rgb)
        labels = torch.from_numpy(arrays[f"{split}_labels"].reshape(-1).astype(np.int64))
        if len(labels) != len(images):
            raise SaflexError(f"{path}: {split} has {len(images)} images but {len(labels)} labels")
        if len(labels) and (labels.min() < 0 or labels.max() >= num_classes):
            raise SaflexError(f"{path}: {split} labels outside 0..{num_classes - 1}")
        splits[split] = Split(images, labels)
    provenance = {"file": str(path), "md5": checksum, "release": release or "unverified",
                  "md5_check_skipped": release is None, "as_rgb": as_rgb, "size": size,
                  "counts": {k: len(v.targets) for k, v in splits.items()}}
    return Splits(splits["train"], splits["val"], splits["test"], num_classes,
                  SUPPORTED_TASKS[task], provenance, [meta["label"][str(i)] for i in range(num_classes)])
