"""What the fast Pi modes cost in accuracy: exact vs last-layer, each with g refreshed every step
or every K steps, through the real trainer and grid (issue 'Performance', section 3).

    python benchmarks/pi_modes.py                                  # offline demo, 5 seeds
    python benchmarks/pi_modes.py --family medmnist --dataset pneumoniamnist --aug randaug \\
        --data-root data --skip-md5 --seeds 0,1,2       # data/medmnist/pneumoniamnist.npz

Runs the upstream-only baseline (and No Aug where the recipe has it) beside the four SAflex
variants, skipping runs already recorded under --out, and writes (or replaces) this family and
dataset's section of results/pi-modes.md. A fast mode "holds the gain" when its mean is within
the larger of the two seeds' standard deviations of the exact mode's mean.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from saflex_cli.cli.common import build_configs  # noqa: E402
from saflex_cli.registry import FAMILIES  # noqa: E402
from saflex_cli.runs.fingerprint import with_data_checksums  # noqa: E402
from saflex_cli.runs.grid import GridOptions, run_grid  # noqa: E402
from saflex_cli.settings import Setting, expand  # noqa: E402
from saflex_cli.store.records import atomic_write_text, read_record, record_path  # noqa: E402

VARIANTS = (("exact", 1), ("exact", None), ("last-layer", 1), ("last-layer", None))


def variant_configs(args) -> dict[str, list]:
    """Row label -> the configs (one per seed) of that row."""
    recipe = FAMILIES.get(args.family)
    train = {"epochs": args.epochs, "data_root": str(args.data_root) if args.data_root else None}
    options = {"skip_md5": True} if args.skip_md5 else {}
    rows = {}
    if "none" in recipe.augmenters:
        rows["No Aug"] = build_configs(args.family, args.dataset, "none", False, args.seeds, train=train,
                                       options=options)
    rows["Upstream only"] = build_configs(args.family, args.dataset, args.aug, False, args.seeds, train=train,
                                          options=options)
    for mode, refresh in VARIANTS:
        refresh = refresh or args.refresh
        label = f"SAflex {mode}" + (f", K={refresh}" if refresh > 1 else "")
        rows[label] = expand(build_configs(args.family, args.dataset, args.aug, True, args.seeds, train=train,
                                           options=options),
                             [Setting("saflex.pi_mode", (mode,), "pi_modes.py"),
                              Setting("saflex.pi_refresh", (refresh,), "pi_modes.py")])
    return {label: with_data_checksums(configs) for label, configs in rows.items()}


def summarise(configs: list, out: Path, selection: str) -> dict[str, list[float]]:
    rows = {"acc": [], "kept": [], "recovery": [], "epoch_s": []}
    for config in configs:
        record = read_record(record_path(out, config))
        rows["acc"].append(record["selections"][selection]["test"]["acc"] * 100)
        rows["epoch_s"].append(float(np.median([e["train_time_s"] for e in record["epochs"]])))
        stats = record["epochs"][-1].get("saflex", {})
        if "kept_fraction" in stats:
            rows["kept"].append(stats["kept_fraction"] * 100)
        if "label_recovery" in stats:
            rows["recovery"].append(stats["label_recovery"] * 100)
    return rows


def cell(values: list[float], digits: int = 1) -> str:
    return f"{np.mean(values):.{digits}f} ± {np.std(values):.{digits}f}" if values else "—"


def verdict(row: dict, exact: dict, upstream: dict) -> str:
    """Does a fast mode keep SAflex's gain over upstream-only, within the seeds' spread?"""
    gain = np.mean(exact["acc"]) - np.mean(upstream["acc"])
    spread = max(np.std(row["acc"]), np.std(exact["acc"]))
    lost = np.mean(exact["acc"]) - np.mean(row["acc"])
    if gain <= 0:
        return f"no SAflex gain to hold here (exact {gain:+.1f} vs upstream-only); {-lost:+.1f} vs exact"
    if lost <= spread:
        return f"holds (−{lost:.1f} of +{gain:.1f} gain; spread {spread:.1f})" if lost > 0 else "holds"
    return f"**loses {lost:.1f} of SAflex's +{gain:.1f} gain** (spread {spread:.1f})"


def section(args, rows: dict, device: str, epochs: int) -> str:
    upstream, exact = rows["Upstream only"], rows["SAflex exact"]
    plain_s = np.mean(upstream["epoch_s"])
    seeds = len(upstream["acc"])
    lines = [f"## {args.family}: {args.dataset} ({args.aug}), {seeds} seeds, {epochs} epochs, {device}", "",
             "| method | test acc (%) | kept (%) | label recovery (%) | train time / epoch (s, median) | × upstream-only time | vs exact |",
             "|---|---|---|---|---|---|---|"]
    for label, row in rows.items():
        judged = verdict(row, exact, upstream) if label.startswith("SAflex") and label != "SAflex exact" else ""
        lines.append(f"| {label} | {cell(row['acc'])} | {cell(row['kept'])} | {cell(row['recovery'])} | "
                     f"{cell(row['epoch_s'], 3)} | {np.mean(row['epoch_s']) / plain_s:.2f} | {judged} |")
    lines += ["", "Test accuracy at the recipe's selection; kept and label recovery (true label restored on the "
              "corrupted augmented samples) of the last epoch; train time is the wall-clock of an epoch's "
              "training steps, so on a shared machine or a tiny model it is noise and fixed costs: "
              "`benchmarks/overhead.py` gives the step-time ratios."]
    if args.workers > 1:
        lines.append(f"\nThe runs were trained {args.workers} at a time on the one device: the times per epoch "
                     "include that sharing and are not each method's own cost.")
    return "\n".join(lines) + "\n"


def write_section(path: Path, title: str, text: str) -> None:
    """Replace this family/dataset's section of the file (or add it), leaving the others."""
    header = "# SAflex Pi modes: accuracy against cost\n\nWritten by `benchmarks/pi_modes.py`.\n"
    old = path.read_text() if path.exists() else header
    parts = old.split("\n## ")
    kept = [parts[0].rstrip("\n") + "\n"] + ["## " + p.rstrip("\n") + "\n" for p in parts[1:]
                                             if not p.startswith(title)]
    atomic_write_text(path, "\n".join(kept + ["## " + text[3:]]))


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--family", default="demo")
    parser.add_argument("--dataset", default=None, help="default: the recipe's first dataset")
    parser.add_argument("--aug", default=None, help="upstream augmenter (default: demo label-shift, else randaug)")
    parser.add_argument("--seeds", default="0,1,2,3,4")
    parser.add_argument("--epochs", type=int, default=None)
    parser.add_argument("--refresh", type=int, default=10, help="K of the reuse rows")
    parser.add_argument("--data-root", type=Path, default=None)
    parser.add_argument("--skip-md5", action="store_true")
    parser.add_argument("--device", default=None)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--workers", type=int, default=1, help="runs trained at once on this machine")
    parser.add_argument("--out", type=Path, default=Path("results/pi-modes-runs"), help="run records")
    parser.add_argument("--table", type=Path, default=Path("results/pi-modes.md"))
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    recipe = FAMILIES.get(args.family)
    args.dataset = args.dataset or recipe.datasets[0]
    args.aug = args.aug or ("label-shift" if args.family == "demo" else "randaug")
    by_row = variant_configs(args)
    outcome = run_grid([c for configs in by_row.values() for c in configs], args.out, device=args.device,
                       options=GridOptions(workers=args.workers))
    first = read_record(record_path(args.out, by_row["Upstream only"][0]))
    rows = {label: summarise(configs, args.out, recipe.selection) for label, configs in by_row.items()}
    text = section(args, rows, first["device"], first["config"]["epochs"])
    write_section(args.table, f"{args.family}: {args.dataset} ", text)
    print(text)
    print(f"{len(outcome.ran)} run(s) trained, {len(outcome.skipped)} already recorded; table in {args.table}")


if __name__ == "__main__":
    main()
