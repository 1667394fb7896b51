"""Flags -> RunConfigs -> grid -> report: the path every family command shares."""
from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import TYPE_CHECKING

from rich.console import Console

from ..config import RunConfig, override
from ..errors import SaflexError
from ..estimate import default_benchmark, estimate_grid, load_benchmark
from ..records import record_status
from ..registry import FAMILIES

if TYPE_CHECKING:  # the rest imports torch: inside the functions, so `--help` does not wait for it
    from ..families.base import Recipe
    from ..grid import GridOptions

console = Console(stderr=True)


def parse_list(text: str, what: str) -> list[str]:
    items = [item.strip() for item in text.split(",") if item.strip()]
    if not items:
        raise SaflexError(f"{what} is empty: give one value or a comma list")
    return items


def parse_seeds(text: str) -> list[int]:
    try:
        return [int(s) for s in parse_list(text, "--seeds")]
    except ValueError:
        raise SaflexError(f"--seeds must be a comma list of integers, got {text!r}") from None


def methods(recipe: Recipe, augs: str, saflex: bool) -> list[tuple[str, bool]]:
    """(augmenter, saflex) pairs: 'all' gives every row of the paper's table."""
    if augs == "all":
        upstream = [a for a in recipe.augmenters if a != "none"]
        return ([("none", False)] if "none" in recipe.augmenters else []) + \
            [(a, s) for a in upstream for s in (False, True)]
    chosen = parse_list(augs, "--aug")
    for aug in chosen:
        if aug not in recipe.augmenters:
            raise SaflexError(f"unknown augmenter {aug!r} for {recipe.name}; choose from: {', '.join(recipe.augmenters)}, all")
    if saflex and "none" in chosen:
        raise SaflexError("SAflex refines augmented samples: --saflex needs an upstream augmenter, not --aug none")
    return [(aug, saflex) for aug in chosen]


def build_configs(family: str, datasets: str, augs: str, saflex: bool, seeds: str, *, train: dict,
                  saflex_settings: dict | None = None, optim_settings: dict | None = None, options: dict | None = None,
                  known_datasets=None) -> list[RunConfig]:
    """Every (dataset, method, seed) run of a command; unset (None) settings keep the recipe's."""
    recipe = FAMILIES.get(family)
    names = list(recipe.datasets) if datasets == "all" else parse_list(datasets, "--dataset")
    if known_datasets is not None:
        unknown = [n for n in names if n not in known_datasets]
        if unknown:
            raise SaflexError(f"unknown {family} dataset(s) {', '.join(unknown)}; choose from: {', '.join(known_datasets)}, all")
    configs = []
    for dataset in names:
        base = recipe.defaults(dataset)
        base = override(base, **train)
        base = dataclasses.replace(base, saflex=override(base.saflex, **(saflex_settings or {})),
                                   optim=override(base.optim, **(optim_settings or {})),
                                   options=tuple({**dict(base.options), **{k: v for k, v in (options or {}).items() if v is not None}}.items()))
        for aug, use_saflex in methods(recipe, augs, saflex):
            for seed in parse_seeds(seeds):
                configs.append(dataclasses.replace(base, aug=aug, seed=seed,
                                                   saflex=dataclasses.replace(base.saflex, enabled=use_saflex)))
    return configs


def print_dry_run(configs: list[RunConfig], out: Path, device: str | None, throughput: Path | None) -> None:
    """The runs, which are recorded, and the device-hours of those still to run."""
    from ..runtime import pick_device
    path = throughput or default_benchmark(pick_device(device).type)
    benchmark = load_benchmark(path) if throughput is not None or path.exists() else None
    estimate = estimate_grid(configs, benchmark) if benchmark else None
    status = {config.run_name: record_status(out, config) for config in configs}  # one read per record
    todo = [config for config in configs if status[config.run_name] != "completed"]
    for config in configs:
        hours = estimate.hours.get(config.run_name) if estimate else None
        cost = f"{hours:8.3f} h" if hours is not None else "         "
        console.print(f"  {status[config.run_name] or 'to run':9}  {cost}  {config.run_name}", highlight=False)
    if benchmark is None:
        console.print(f"no device-hour estimate: no benchmark at {path}; run `python benchmarks/overhead.py "
                      f"--device {pick_device(device).type}` or pass --throughput FILE", highlight=False)
        return
    left = estimate_grid(todo, benchmark)
    console.print(f"estimated {left.total:.2f} device-hours for {len(left.hours)} of the {len(todo)} run(s) to do "
                  f"(training steps on {benchmark['device']}, from {path}; evaluation not counted)", highlight=False)
    for reason in sorted(set(left.missing.values()) | left.notes):
        console.print(f"  [dim]{reason}[/dim]")


def execute(configs: list[RunConfig], out: Path, device: str | None, quiet: bool, dry_run: bool,
            options: GridOptions | None = None, executor: str = "local", throughput: Path | None = None) -> None:
    from ..distributed import is_leader
    from ..executors import submit_grid
    from ..grid import GridOptions, busy_note, grid_problems, run_grid
    from ..report import write_report
    options = options or GridOptions()
    if not configs:
        raise SaflexError("no runs to do")
    console.print(f"[bold]{configs[0].family}[/bold]: {len(configs)} run(s); recipe of the first:")
    console.print(configs[0].to_dict(), highlight=False)
    if dry_run:
        print_dry_run(configs, out, device, throughput)
        return
    if executor == "slurm":  # days of work: submit and return; `saflex report` once the array job is done
        submit_grid(configs, out, executor, device=device, options=options, wait=False)
        return
    if executor == "local":
        outcome = run_grid(configs, out, device=device, quiet=quiet, options=options)
    else:
        outcome = submit_grid(configs, out, executor, device=device, options=options)
    if is_leader():
        console.print(f"{len(outcome.ran)} run(s) recorded, {len(outcome.skipped)} skipped (already recorded)")
        written = write_report(out, configs[0].family)
        if written:
            console.print(f"tables: {written[1]} and {written[0]}")
    if busy_note(outcome) and is_leader():
        console.print(f"[yellow]{busy_note(outcome)}[/yellow]")
    if grid_problems(outcome):
        raise SaflexError(grid_problems(outcome))
