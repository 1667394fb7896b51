"""Shared pieces of the FLYP tests: a tiny open_clip config and a tiny iWildCam in WILDS' layout."""
from __future__ import annotations

import uuid
from functools import lru_cache
from pathlib import Path

import numpy as np
import open_clip
import pandas as pd
import torch
from PIL import Image

TINY_CLIP = "saflex-tiny-clip"
CONFIG = Path(__file__).parent / "fixtures" / f"{TINY_CLIP}.json"
COLUMNS = ["split", "location_remapped", "location", "sequence_remapped", "seq_id", "y", "category_id",
           "datetime", "filename", "image_id"]  # WILDS iWildCam v2.0 metadata.csv (after its index column)


def register_tiny_clip() -> str:
    if TINY_CLIP not in open_clip.list_models():
        open_clip.add_model_config(CONFIG)
    return TINY_CLIP


def tiny_clip(seed: int = 0, dtype=torch.float32):
    from saflex_cli.models.clip import load_clip
    register_tiny_clip()
    torch.manual_seed(seed)
    return load_clip(TINY_CLIP, "random").to(dtype)


@lru_cache(maxsize=1)
def _tokenizer():
    return open_clip.get_tokenizer(register_tiny_clip())


def tiny_tokens(texts: list[str]) -> torch.Tensor:
    return _tokenizer()(texts)


def write_iwildcam(root: Path, sizes=None, classes=(0, 1, 2, 3), seed: int = 0) -> Path:
    """Images whose colour depends on the class, listed in metadata.csv as WILDS lists them."""
    sizes = sizes or {"train": 16, "val": 4, "id_val": 8, "id_test": 8, "test": 8}
    rng = np.random.default_rng(seed)
    folder = Path(root) / "iwildcam_v2.0"
    (folder / "train").mkdir(parents=True, exist_ok=True)
    rows = []
    for split, count in sizes.items():
        for i in range(count):
            y = classes[i % len(classes)]
            colour = np.array([60 * (y % 4), 200 - 50 * (y % 4), 40 + 30 * y]) % 256
            pixels = np.clip(colour + rng.normal(0, 25, (40, 48, 3)), 0, 255).astype(np.uint8)
            image_id = str(uuid.UUID(int=int(rng.integers(2**63)) * 7 + len(rows)))
            filename = f"{image_id}.jpg"
            Image.fromarray(pixels).save(folder / "train" / filename, quality=90)
            rows.append({"split": split, "location_remapped": i % 3, "location": 10 + i % 3, "sequence_remapped": i,
                         "seq_id": image_id, "y": y, "category_id": y, "datetime": "2013-06-01 15:40:00.000",
                         "filename": filename, "image_id": image_id})
    pd.DataFrame(rows, columns=COLUMNS).to_csv(folder / "metadata.csv")  # with WILDS' leading index column
    return Path(root)
