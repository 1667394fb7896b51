"""The offline demo: the same trainer, on digits, with an upstream augmenter that lies.

Prints test accuracy for no augmentation, upstream-only and SAflex, plus what SAflex did to
the corrupted augmented samples: how many it kept, and how many it gave their true label back.
"""
from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
from rich.console import Console
from rich.table import Table

from .distributed import is_leader
from .errors import SaflexError
from .grid import GridOptions, busy_note, grid_problems, run_grid
from .records import read_record
from .registry import FAMILIES

METHODS = (("No Aug", "none", False), ("Upstream only", "label-shift", False), ("SAflex", "label-shift", True))


def demo_configs(seeds: list[int], epochs: int | None = None):
    base = FAMILIES.get("demo").defaults("digits")
    if epochs is not None:
        base = dataclasses.replace(base, epochs=epochs)
    return {label: [dataclasses.replace(base, aug=aug, seed=seed, saflex=dataclasses.replace(base.saflex, enabled=on))
                    for seed in seeds] for label, aug, on in METHODS}


def summarise(by_method: dict, out: Path) -> dict[str, dict[str, list[float]]]:
    """Per method: test accuracy per seed, and SAflex's last-epoch diagnostics where present."""
    from .records import record_path
    summary = {}
    for label, configs in by_method.items():
        rows = {"acc": [], "kept": [], "recovery": [], "corrupted_kept": [], "clean_kept": []}
        for config in configs:
            record = read_record(record_path(out, config))
            rows["acc"].append(record["selections"]["last"]["test"]["acc"] * 100)
            stats = record["epochs"][-1].get("saflex", {})
            for key, name in (("kept", "kept_fraction"), ("recovery", "label_recovery"),
                              ("corrupted_kept", "corrupted_kept_fraction"), ("clean_kept", "uncorrupted_kept_fraction")):
                if name in stats:
                    rows[key].append(stats[name] * 100)
        summary[label] = rows
    return summary


def run_demo(seeds: list[int], out: Path, quiet: bool = False, epochs: int | None = None,
             options: GridOptions = GridOptions()) -> dict:
    by_method = demo_configs(seeds, epochs)
    outcome = run_grid([c for configs in by_method.values() for c in configs], out, device="cpu", quiet=quiet,
                       options=options)
    if not is_leader():
        return {}
    if grid_problems(outcome):
        raise SaflexError(grid_problems(outcome))
    if busy_note(outcome):
        Console(stderr=True).print(f"[yellow]{busy_note(outcome)}[/yellow]")
        return {}
    summary = summarise(by_method, out)

    def cell(values):
        return f"{np.mean(values):.1f} ± {np.std(values):.1f}" if values else "—"

    table = Table(title="saflex demo: digits, MLP 64-256-256-10, 200 train images, 60% of augmented labels shifted")
    for column in ("method", "test acc (%)", "kept (%)", "corrupted kept (%)", "clean kept (%)", "true label recovered (%)"):
        table.add_column(column)
    for label, rows in summary.items():
        table.add_row(label, cell(rows["acc"]), cell(rows["kept"]), cell(rows["corrupted_kept"]),
                      cell(rows["clean_kept"]), cell(rows["recovery"]))
    Console().print(table)
    return summary
