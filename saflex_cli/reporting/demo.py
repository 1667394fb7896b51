"""The offline demo: the same trainer, on digits, with an upstream augmenter that lies.

Prints test accuracy for no augmentation, upstream-only and SAflex (and any other setting the
command was given), plus what SAflex did to the corrupted augmented samples: how many it kept,
and how many it gave their true label back.
"""
from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
from rich.console import Console
from rich.table import Table

from ..compute.distributed import is_leader
from ..config import RunConfig
from ..errors import SaflexError
from ..registry import FAMILIES
from ..runs.grid import GridOptions, busy_note, grid_problems, run_grid
from ..store.records import read_record, record_path
from .tables import recipe_default, row_name, setting_differences

METHODS = (("none", "none"), ("label-shift", "none"), ("label-shift", "saflex"))
COLUMNS = (("acc", "test acc (%)"), ("kept_fraction", "kept (%)"), ("corrupted_kept_fraction", "corrupted kept (%)"),
           ("uncorrupted_kept_fraction", "clean kept (%)"), ("label_recovery", "true label recovered (%)"))


def demo_configs(seeds: list[int], epochs: int | None = None) -> list[RunConfig]:
    base = FAMILIES.get("demo").defaults("digits")
    if epochs is not None:
        base = dataclasses.replace(base, epochs=epochs)
    return [dataclasses.replace(base, aug=aug, refine=refine, seed=seed) for aug, refine in METHODS for seed in seeds]


def summarise(configs: list[RunConfig], out: Path) -> dict[str, dict[str, list[float]]]:
    """Per row (method and setting): test accuracy per seed, and SAflex's last-epoch diagnostics, in %."""
    recipe = FAMILIES.get("demo")
    summary: dict[str, dict[str, list[float]]] = {}
    for config in configs:
        record = read_record(record_path(out, config))
        if record is None or record.get("status") != "completed":
            continue
        differences = setting_differences(config, recipe_default(config, recipe, record.get("data")))
        label = ", ".join(f"{k}={v}" for k, v in differences.items())
        rows = summary.setdefault(row_name(recipe.cells(record, recipe.selection)[0].method, label),
                                  {name: [] for name, _ in COLUMNS})
        rows["acc"].append(record["selections"][recipe.selection]["test"]["acc"] * 100)
        stats = record["epochs"][-1].get("saflex", {})
        for name, _ in COLUMNS[1:]:
            if name in stats:
                rows[name].append(stats[name] * 100)
    return summary


def print_summary(summary: dict[str, dict[str, list[float]]]) -> None:
    def cell(values):
        return f"{np.mean(values):.1f} ± {np.std(values):.1f}" if values else "—"

    table = Table(title="saflex demo: digits, MLP 64-256-256-10, 200 train images, 60% of augmented labels shifted")
    for _, title in (("", "method"), *COLUMNS):
        table.add_column(title)
    for label, rows in summary.items():
        table.add_row(label, *(cell(rows[name]) for name, _ in COLUMNS))
    Console().print(table)


def run_demo(seeds: list[int], out: Path, quiet: bool = False, epochs: int | None = None,
             options: GridOptions = GridOptions()) -> dict:
    """The three rows of the demo, trained (or read from their records) and summarised."""
    configs = demo_configs(seeds, epochs)
    outcome = run_grid(configs, out, device="cpu", quiet=quiet, options=options)
    if not is_leader():
        return {}
    if grid_problems(outcome):
        raise SaflexError(grid_problems(outcome))
    if busy_note(outcome):
        Console(stderr=True).print(f"[yellow]{busy_note(outcome)}[/yellow]")
        return {}
    return summarise(configs, out)
