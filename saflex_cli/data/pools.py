"""Pools of generated images in ALIA's folder layout, with a manifest tying runs to the files.

A pool folder is `{root}/{method}/{dataset}`, holding
  `{prompt}/{setting}/{class folder}/{i}-{j}.png` for img2img and instructpix2pix (ALIA: `instruct`),
      i = index of the source image in the real train set (ALIA's order), j = edit number;
  `{prompt}/{class folder}/{k}.png` for txt2img.
Paths containing `samples` are preview grids and are skipped. Class folders map to labels by the
dataset's explicit class list, never by folder order. Several prompt folders make one pool; each
(method, prompt, setting) is a source, remembered by id for the trust report.

The manifest (`saflex-manifest.json` in the pool folder) lists every image with its source image,
prompt, method, setting, seed and SHA-256; `saflex generate` writes it, and a folder without one
is imported by building it. Its checksum is recorded with every run.
"""
from __future__ import annotations

import hashlib
import io
import json
import re
from collections import Counter
from dataclasses import asdict, dataclass, replace
from functools import partial
from pathlib import Path
from typing import Callable

import numpy as np
import torch
from PIL import Image
from torch import Tensor

from ..errors import SaflexError
from ..store.files import atomic_write_text
from .catalog import Folder, register_catalog

MANIFEST_NAME = "saflex-manifest.json"
MANIFEST_FORMAT = 1
METHOD_FOLDERS = {"img2img": "img2img", "instructpix2pix": "instructpix2pix", "instruct": "instructpix2pix",
                  "txt2img": "txt2img"}
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg")
EDIT_NAME = re.compile(r"(\d+)-(\d+)")


@dataclass(frozen=True)
class PoolImage:
    path: str  # relative to the pool folder, '/'-separated
    method: str  # img2img | instructpix2pix | txt2img
    prompt: str  # the prompt folder (ALIA: the template with spaces as '_' and '.' dropped)
    setting: str  # e.g. 'strength-0.5_guidance-7.5'; '' for txt2img
    class_folder: str
    source_image: int | None  # i of {i}-{j}.png; None for txt2img
    edit: int  # j of {i}-{j}.png, k of {k}.png
    seed: int | None  # None when imported from a foreign folder
    sha256: str

    @property
    def source(self) -> str:
        return "/".join(part for part in (self.method, self.prompt, self.setting) if part)


@dataclass
class Manifest:
    folder: Path
    images: list[PoolImage]
    origin: str  # "saflex generate" or "imported"

    @property
    def checksum(self) -> str:
        payload = json.dumps([asdict(image) for image in sorted(self.images, key=lambda i: i.path)], sort_keys=True)
        return hashlib.sha256(payload.encode()).hexdigest()

    def write(self) -> None:
        images = [asdict(image) for image in sorted(self.images, key=lambda i: i.path)]
        atomic_write_text(self.folder / MANIFEST_NAME, json.dumps(
            {"format": MANIFEST_FORMAT, "origin": self.origin, "checksum": self.checksum, "images": images}, indent=1))


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def pool_method(folder: Path) -> str:
    method = METHOD_FOLDERS.get(Path(folder).parent.name.lower())
    if method is None:
        raise SaflexError(f"{folder} is not a pool folder: expected {{root}}/{{method}}/{{dataset}} with method one of "
                          f"{', '.join(sorted(METHOD_FOLDERS))} (ALIA's layout)")
    return method


def layout_slots(folder: Path) -> list[PoolImage]:
    """Every image of a pool folder that fits its layout, not yet hashed; other files are ignored."""
    folder = Path(folder)
    if not folder.is_dir():
        raise SaflexError(f"no pool folder at {folder}: generate one with `saflex generate`, or give "
                          f"{{root}}/{{method}}/{{dataset}} of a folder in ALIA's layout")
    method = pool_method(folder)
    depth = 3 if method == "txt2img" else 4
    images = []
    for path in sorted(folder.rglob("*")):
        relative = path.relative_to(folder)
        if not path.is_file() or path.suffix.lower() not in IMAGE_SUFFIXES or "samples" in relative.as_posix():
            continue
        parts = relative.parts
        if len(parts) != depth:
            continue
        if method == "txt2img":
            if not path.stem.isdigit():
                continue
            prompt, setting, source, edit = parts[0], "", None, int(path.stem)
        else:
            match = EDIT_NAME.fullmatch(path.stem)
            if match is None:
                continue
            prompt, setting, source, edit = parts[0], parts[1], int(match.group(1)), int(match.group(2))
        images.append(PoolImage(relative.as_posix(), method, prompt, setting, parts[-2], source, edit, None, ""))
    return images


def scan_pool(folder: Path) -> list[PoolImage]:
    """The layout slots of a foreign folder, hashed (seeds unknown)."""
    return [replace(image, sha256=sha256_bytes((Path(folder) / image.path).read_bytes()))
            for image in layout_slots(folder)]


def read_manifest(folder: Path) -> Manifest | None:
    path = Path(folder) / MANIFEST_NAME
    if not path.is_file():
        return None
    try:
        data = json.loads(path.read_text())
        return Manifest(Path(folder), [PoolImage(**image) for image in data["images"]], data["origin"])
    except (ValueError, KeyError, TypeError) as error:
        raise SaflexError(f"{path} is not a saflex pool manifest ({error}): delete it to re-import the folder") from None


def ensure_manifest(folder: Path) -> Manifest:
    """The pool's manifest, built on first use of a foreign folder; refuses a folder that changed."""
    folder = Path(folder)
    manifest = read_manifest(folder)
    if manifest is None:
        images = scan_pool(folder)
        if not images:
            raise SaflexError(f"no generated images in {folder} in ALIA's layout "
                              f"({{prompt}}/{{setting}}/{{class}}/{{i}}-{{j}}.png, or {{prompt}}/{{class}}/{{k}}.png for txt2img)")
        manifest = Manifest(folder, images, "imported")
        try:
            manifest.write()
        except OSError as error:
            raise SaflexError(f"cannot write the pool manifest into {folder} ({error}): copy the pool to a writable folder") from None
        return manifest
    check_layout(manifest)
    return manifest


def check_layout(manifest: Manifest) -> None:
    """Refuse a pool whose folder gained or lost images since its manifest was written."""
    folder = manifest.folder
    on_disk = {image.path for image in layout_slots(folder)}
    listed = {image.path for image in manifest.images}
    if on_disk != listed:
        raise SaflexError(f"pool {folder} changed since its manifest was written ({len(on_disk - listed)} new, "
                          f"{len(listed - on_disk)} missing images): finish `saflex generate`, or delete "
                          f"{folder / MANIFEST_NAME} to re-import the folder as it is")


def _differs(folder: Path, image: PoolImage) -> SaflexError:
    return SaflexError(f"{Path(folder) / image.path} differs from the pool manifest: regenerate it, or delete "
                       f"{Path(folder) / MANIFEST_NAME} to re-import the folder as it is")


def check_pool(folder: Path) -> str:
    """`data verify`'s test of a pool: its manifest, the folder against it and every image's
    SHA-256; returns the manifest checksum a run records. Writes nothing."""
    manifest = read_manifest(folder)
    if manifest is None:
        return "no manifest yet (made on first use)"
    check_layout(manifest)
    for image in manifest.images:
        if sha256_bytes((Path(folder) / image.path).read_bytes()) != image.sha256:
            raise _differs(folder, image)
    return manifest.checksum


@register_catalog("pools")
def catalog(data_root: Path) -> list[Folder]:
    """Generated pools where `saflex generate --out DATA/pools` puts them: pools/<method>/<dataset>."""
    pools = sorted(p for p in (Path(data_root) / "pools").glob("*/*") if p.is_dir() and p.parent.name.lower() in METHOD_FOLDERS)
    return [Folder(f"pools/{p.parent.name}/{p.name}", p, partial(check_pool, p), "`saflex generate` makes it",
                   bad_words="differs from its manifest") for p in pools]


@dataclass
class PoolSelection:
    images: list[PoolImage]
    labels: list[int]
    source_ids: list[int]
    source_names: list[str]  # id -> name, over the whole manifest (stable across seeds)
    provenance: dict


def select_pool(manifest: Manifest, class_folders: dict[str, int], class_counts: dict[int, int], *, seed: int,
                prompts: tuple[str, ...] | None = None, held_out: frozenset[int] = frozenset()) -> PoolSelection:
    """ALIA's `num_extra: extra`: one random edit per source image (over all prompts), then per
    class a random subset of the size of the real extra set's class. Edits of held-out sources
    (our validation images) are dropped first; a class short of images keeps what it has."""
    unknown = sorted({i.class_folder for i in manifest.images} - set(class_folders))
    if unknown:
        raise SaflexError(f"pool {manifest.folder} has class folders the dataset does not know: {', '.join(unknown[:5])}; "
                          f"expected folder names like {', '.join(list(class_folders)[:3])}")
    source_names = sorted({i.source for i in manifest.images})
    images = sorted(manifest.images, key=lambda i: i.path)
    if prompts:
        missing = set(prompts) - {i.prompt for i in images}
        if missing:
            raise SaflexError(f"prompt folder(s) {', '.join(sorted(missing))} not in pool {manifest.folder}; "
                              f"it has: {', '.join(sorted({i.prompt for i in images}))}")
        images = [i for i in images if i.prompt in prompts]
    images = [i for i in images if i.source_image is None or i.source_image not in held_out]
    rng = np.random.default_rng(seed)
    edits: dict[int, list[PoolImage]] = {}
    for image in images:
        if image.source_image is not None:
            edits.setdefault(image.source_image, []).append(image)
    images = [i for i in images if i.source_image is None] + \
             [group[rng.integers(len(group))] for _, group in sorted(edits.items())]
    by_class: dict[int, list[PoolImage]] = {}
    for image in images:
        by_class.setdefault(class_folders[image.class_folder], []).append(image)
    chosen, short = [], {}
    for label, count in sorted(class_counts.items()):
        members = by_class.get(label, [])
        if len(members) < count:
            short[label] = (len(members), count)
        picks = rng.choice(len(members), size=min(count, len(members)), replace=False) if members else []
        chosen += [members[p] for p in sorted(picks)]
    chosen.sort(key=lambda i: i.path)
    name_to_id = {name: k for k, name in enumerate(source_names)}
    provenance = {"folder": str(manifest.folder), "manifest_sha256": manifest.checksum, "origin": manifest.origin,
                  "images": len(chosen), "sources": source_names, "prompts": list(prompts) if prompts else "all",
                  "per_source": dict(Counter(i.source for i in chosen)),
                  "short_classes": {str(k): list(v) for k, v in short.items()}, "selection_seed": seed}
    return PoolSelection(chosen, [class_folders[i.class_folder] for i in chosen],
                         [name_to_id[i.source] for i in chosen], source_names, provenance)


def read_pool_images(folder: Path, images: list[PoolImage], transform: Callable[[Image.Image], Tensor]) -> Tensor:
    """Decode the chosen images once (uint8), refusing any whose bytes differ from the manifest."""
    tensors = []
    for image in images:
        data = (Path(folder) / image.path).read_bytes()
        if sha256_bytes(data) != image.sha256:
            raise _differs(folder, image)
        with Image.open(io.BytesIO(data)) as decoded:
            tensors.append(transform(decoded))
    if not tensors:
        raise SaflexError(f"the pool {folder} has no image for any class of this dataset after selection")
    return torch.stack(tensors)
