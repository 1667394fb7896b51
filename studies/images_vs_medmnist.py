"""`saflex images` against `saflex medmnist` on the same images: the folder path adds nothing but the reading.

Exports the official BreastMNIST npz to PNG files in the ImageFolder layout (to a temporary folder;
nothing is committed), runs No Aug, RandAug and SAflex (w/ RandAug) through both commands, and
prints the test accuracy and AUC of each pair with whether every recorded epoch's metrics are equal.

    OMP_NUM_THREADS=1 python studies/images_vs_medmnist.py --data-root ../shared/data --epochs 2 --seeds 0

Each run is an ordinary `saflex` grid: with `--work DIR` (default: a temporary folder) a killed study
resumes where it stopped (`python -c` with `table(Path(DIR))` prints the pairs recorded so far).

What makes the two the same run: the same decoded tensors (PNG is lossless; grayscale files read as
1 channel, widened to 3 with `--channels 3` as `saflex medmnist`'s default `--as-rgb` widens them),
the same order (files named by their index in the npz, and the reader orders a split by file name),
and the same normalisation (`--normalize backbone`: the ResNet-18 (28)'s 0.5 / 0.5; the default,
the training split's statistics, is another input scale and so another run).
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
IMAGES_FLAGS = ("--channels", "3", "--normalize", "backbone")  # what makes `saflex images` read as `saflex medmnist`
RUNS = (("No Aug", ("--aug", "none")), ("RandAug", ("--aug", "randaug")),
        ("SAflex (w/ RandAug)", ("--aug", "randaug", "--saflex")))


def export_medmnist(npz: Path, out: Path, class_names: list[str], limit: int | None = None) -> Path:
    """out/{train,val,test}/<class>/<index>.png, the index zero-padded so that name order is npz order."""
    if class_names != sorted(class_names):
        raise ValueError(f"class folders {class_names} would not sort in label order")
    with np.load(npz) as arrays:
        for split in ("train", "val", "test"):
            images, labels = arrays[f"{split}_images"][:limit], arrays[f"{split}_labels"].reshape(-1)[:limit]
            for index, (image, label) in enumerate(zip(images, labels)):
                folder = out / split / class_names[int(label)]
                folder.mkdir(parents=True, exist_ok=True)
                Image.fromarray(image).save(folder / f"{index:05d}.png")
    return out


def saflex(*args: str) -> None:
    """One command at a time: six ResNet-18 runs at once took ~20 GB on the 24 GB development machine."""
    subprocess.run([sys.executable, "-m", "saflex_cli", *args, "--quiet"], check=True, cwd=ROOT,
                   env={**os.environ, "PYTHONPATH": str(ROOT)})


def records(out: Path, family: str) -> dict[str, dict]:
    """Run records by method label ("No Aug", "RandAug", "SAflex (w/ RandAug)")."""
    from saflex_cli.families.base import upstream_method_label
    found = {}
    for path in (out / "runs" / family).glob("*.json"):
        record = json.loads(path.read_text())
        found[upstream_method_label(record["config"]["aug"], record["config"]["refine"], {"randaug": "RandAug"})] = record
    return found


def same_numbers(a: dict, b: dict) -> bool:
    """Every epoch's losses and metrics, and every selection's, exactly equal."""
    strip = lambda epoch: {k: v for k, v in epoch.items() if "time" not in k and "seconds" not in k}  # noqa: E731
    return [strip(e) for e in a["epochs"]] == [strip(e) for e in b["epochs"]] and a["selections"] == b["selections"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-root", type=Path, default=ROOT.parent / "shared" / "data")
    parser.add_argument("--epochs", default="2")
    parser.add_argument("--seeds", default="0")
    parser.add_argument("--work", type=Path, help="keep the export and the records here (default: a temporary folder)")
    args = parser.parse_args()
    sys.path.insert(0, str(ROOT))
    from saflex_cli.data.medmnist import info
    names = [info("breastmnist")["label"][str(i)] for i in range(len(info("breastmnist")["label"]))]
    with tempfile.TemporaryDirectory() as temporary:
        work = args.work or Path(temporary)
        folder = export_medmnist(args.data_root / "medmnist" / "breastmnist.npz", work / "breastmnist", names)
        common = ("--epochs", args.epochs, "--seeds", args.seeds)
        for _, method in RUNS:
            saflex("images", "--root", str(folder), *IMAGES_FLAGS, *method, *common, "--out", str(work / "images"))
            saflex("medmnist", "--dataset", "breastmnist", "--data-root", str(args.data_root), *method, *common,
                   "--out", str(work / "medmnist"))
        print(table(work))


def table(work: Path) -> str:
    """The pairs recorded under `work`, as a markdown table."""
    ours, theirs = records(work / "images", "images"), records(work / "medmnist", "medmnist")
    lines = ["| method | `saflex images` test acc / AUC | `saflex medmnist` test acc / AUC | every epoch equal |",
             "|---|---|---|---|"]
    for label, _ in RUNS:
        if label in ours and label in theirs:
            a, b = (r["selections"]["best_val_acc"]["test"] for r in (ours[label], theirs[label]))
            lines.append(f"| {label} | {a['acc'] * 100:.2f} / {a['auc'] * 100:.2f} | {b['acc'] * 100:.2f} / "
                         f"{b['auc'] * 100:.2f} | {'yes' if same_numbers(ours[label], theirs[label]) else 'NO'} |")
    return "\n".join(lines)


if __name__ == "__main__":
    main()
