"""`saflex images` against `saflex medmnist` on the same images: the folder path adds nothing but the reading.

Exports the official BreastMNIST npz to PNG files in the ImageFolder layout (to a temporary folder;
nothing is committed), runs No Aug, RandAug and SAflex (w/ RandAug) through both commands, and
prints the test accuracy and AUC of each pair with whether every recorded epoch's metrics are equal.

    OMP_NUM_THREADS=1 python studies/images_vs_medmnist.py --data-root ../shared/data --epochs 2 --seeds 0

Each run is an ordinary `saflex` grid: with `--work DIR` (default: a temporary folder) a killed study
resumes where it stopped; `--parallel` starts the six commands at once.

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


def saflex(*args: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "saflex_cli", *args, "--quiet"], cwd=ROOT,
                            env={**os.environ, "PYTHONPATH": str(ROOT)})


def run_all(commands: list[tuple[str, ...]], parallel: bool) -> None:
    started = []
    for command in commands:
        started.append(saflex(*command))
        if not parallel and started[-1].wait():
            raise SystemExit(f"saflex {' '.join(command)} failed")
    if any(process.wait() for process in started):
        raise SystemExit("a saflex command failed (see above)")


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
    parser.add_argument("--parallel", action="store_true", help="start every command at once")
    args = parser.parse_args()
    sys.path.insert(0, str(ROOT))
    from saflex_cli.data.medmnist import info
    names = [info("breastmnist")["label"][str(i)] for i in range(len(info("breastmnist")["label"]))]
    with tempfile.TemporaryDirectory() as temporary:
        work = args.work or Path(temporary)
        folder = export_medmnist(args.data_root / "medmnist" / "breastmnist.npz", work / "breastmnist", names)
        common = ("--epochs", args.epochs, "--seeds", args.seeds)
        run_all([command for _, method in RUNS for command in (
            ("images", "--root", str(folder), *IMAGES_FLAGS, *method, *common, "--out", str(work / "images")),
            ("medmnist", "--dataset", "breastmnist", "--data-root", str(args.data_root), *method, *common,
             "--out", str(work / "medmnist")))], args.parallel)
        ours, theirs = records(work / "images", "images"), records(work / "medmnist", "medmnist")
        print("| method | `saflex images` test acc / AUC | `saflex medmnist` test acc / AUC | every epoch equal |")
        print("|---|---|---|---|")
        for label, _ in RUNS:
            a, b = (r["selections"]["best_val_acc"]["test"] for r in (ours[label], theirs[label]))
            print(f"| {label} | {a['acc'] * 100:.2f} / {a['auc'] * 100:.2f} | {b['acc'] * 100:.2f} / {b['auc'] * 100:.2f} "
                  f"| {'yes' if same_numbers(ours[label], theirs[label]) else 'NO'} |")


if __name__ == "__main__":
    main()
