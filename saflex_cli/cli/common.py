"""Flags -> RunConfigs -> grid -> report: the path every family command shares."""
from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import TYPE_CHECKING

from rich.console import Console

from ..config import REFINE_NEEDS, REFINE_READS, RunConfig, override
from ..errors import SaflexError
from ..registry import AUGMENTERS, FAMILIES
from ..runs.estimate import estimate_grid, load_benchmark, other_machine, pricing_benchmark
from ..store.records import record_status
from ..seeds import parse_seeds

if TYPE_CHECKING:  # the rest imports torch: inside the functions, so `--help` does not wait for it
    from ..families.base import Recipe
    from ..runs.grid import GridOptions

console = Console(stderr=True)


def parse_list(text: str, what: str) -> list[str]:
    items = [item.strip() for item in text.split(",") if item.strip()]
    if not items:
        raise SaflexError(f"{what} is empty: give one value or a comma list")
    return items


def parse_refiners(refine: str | None, saflex: bool) -> list[str]:
    """--refine's comma list (or 'saflex' for --saflex; 'none', the upstream row, by default)."""
    if refine is None:
        return ["saflex" if saflex else "none"]
    chosen = parse_list(refine, "--refine")
    if saflex and "saflex" not in chosen:
        chosen.append("saflex")
    unknown = [r for r in chosen if r not in REFINE_READS]
    if unknown:
        raise SaflexError(f"unknown --refine {', '.join(unknown)}; choose from: {', '.join(REFINE_READS)}")
    return list(dict.fromkeys(chosen))


def methods(recipe: Recipe, augs: str, refiners: list[str], *, table_rows: bool) -> list[tuple[str, str]]:
    """(augmenter, refinement) pairs. `--aug all` gives every row of the paper's table (No Aug, and
    each upstream with and without SAflex), or with --refine each upstream under each listed method.
    Pairs of the cross product that do not exist are left out, named in one line; none left: refused."""
    if augs == "all":
        upstream = [a for a in recipe.augmenters if a != "none"]
        rows = ["none", "saflex"] if table_rows else refiners
        pairs = ([("none", "none")] if "none" in recipe.augmenters else []) + [(a, r) for a in upstream for r in rows]
    else:
        chosen = parse_list(augs, "--aug")
        known = recipe.augmenters + recipe.extra_augmenters
        for aug in chosen:
            if aug not in known:
                raise SaflexError(f"unknown augmenter {aug!r} for {recipe.name}; choose from: {', '.join(known)}, all")
        pairs = [(aug, refine) for aug in chosen for refine in refiners]
    missing = {pair: why_missing(recipe, *pair) for pair in pairs}
    kept = [pair for pair in pairs if missing[pair] is None]
    if not kept:
        raise SaflexError("; ".join(dict.fromkeys(missing.values())))
    if len(kept) < len(pairs):
        console.print(left_out_line({pair: why for pair, why in missing.items() if why}, len(pairs)), highlight=False,
                      soft_wrap=True)  # one line, for grep
    return kept


def why_missing(recipe: Recipe, aug: str, refine: str) -> str | None:
    """Why the pair (aug, refine) does not exist, or None: a refiner needs augmented samples, and
    some read what only one augmenter gives them (its class's `provides`)."""
    if aug == "none" and refine != "none":
        return "--saflex / --refine refine augmented samples: they need an upstream augmenter, not --aug none"
    needs = [need for need in REFINE_NEEDS.get(refine, ()) if need not in provided(aug)]
    if not needs:
        return None
    givers = [a for a in recipe.augmenters + recipe.extra_augmenters if set(needs) <= set(provided(a))]
    remedy = f"use --aug {' or '.join(givers)}" if givers else f"no {recipe.name} augmenter gives it"
    return f"--refine {refine} reads each sample's {', '.join(needs)}, which --aug {aug} does not give: {remedy}"


def left_out_line(missing: dict[tuple[str, str], str], total: int) -> str:
    """One line naming the pairs left out, grouped by why."""
    groups: dict[str, list[str]] = {}
    for (aug, refine), why in missing.items():
        groups.setdefault(why, []).append(f"{aug}+{refine}")
    return (f"left out {len(missing)} of {total} (augmenter, method) pair(s) that do not exist: "
            + "; ".join(f"{', '.join(names)} ({why})" for why, names in groups.items()))


def provided(aug: str) -> tuple[str, ...]:
    """The AugBatch.meta entries an augmenter gives a refiner (its class's `provides`)."""
    return getattr(AUGMENTERS.get(aug), "provides", ()) if aug in AUGMENTERS else ()


def build_configs(family: str, datasets: str, augs: str, saflex: bool, seeds: str, *, train: dict,
                  refine: str | None = None, options: dict | None = None, known_datasets=None) -> list[RunConfig]:
    """Every (dataset, method, seed) run of a command; unset (None) settings keep the recipe's."""
    recipe = FAMILIES.get(family)
    names = list(recipe.datasets) if datasets == "all" else parse_list(datasets, "--dataset")
    if known_datasets is not None:
        unknown = [n for n in names if n not in known_datasets]
        if unknown:
            raise SaflexError(f"unknown {family} dataset(s) {', '.join(unknown)}; choose from: {', '.join(known_datasets)}, all")
    pairs = methods(recipe, augs, parse_refiners(refine, saflex), table_rows=refine is None)
    configs = []
    for dataset in names:
        base = override(recipe.defaults(dataset), **train)
        base = dataclasses.replace(base, options=tuple({**dict(base.options),
                                                        **{k: v for k, v in (options or {}).items() if v is not None}}.items()))
        for aug, method in pairs:
            for seed in parse_seeds(seeds):
                configs.append(dataclasses.replace(base, aug=aug, seed=seed, refine=method))
    return configs


def print_dry_run(configs: list[RunConfig], out: Path, device: str | None, throughput: Path | None) -> None:
    """The runs, which are recorded, and the device-hours of those still to run, priced for this
    machine's kind (or saying that the benchmark was measured on another). Runs whose data is not on
    disk are listed and priced too (a grid is planned before its data is fetched): their identities
    are computed once the files are there."""
    from ..compute.runtime import machine_kind, pick_device
    from ..runs.fingerprint import missing_data
    chosen = pick_device(device)
    path = throughput or pricing_benchmark(chosen.type)
    benchmark = load_benchmark(path) if throughput is not None or path.exists() else None
    estimate = estimate_grid(configs, benchmark) if benchmark else None
    status = {config.run_name: record_status(out, config) for config in configs}  # one read per record
    todo = [config for config in configs if status[config.run_name] != "completed"]
    waiting = {config.run_name: missing_data(config) for config in configs}
    for config in configs:
        hours = estimate.hours.get(config.run_name) if estimate else None
        cost = f"{hours:8.3f} h" if hours is not None else "         "
        mark = "  (no data)" if waiting[config.run_name] else ""
        console.print(f"  {status[config.run_name] or 'to run':9}  {cost}  {config.run_name}{mark}", highlight=False)
    files = sorted({name for names in waiting.values() for name in names})
    if files:
        shown = ", ".join(files[:5]) + (f" and {len(files) - 5} more" if len(files) > 5 else "")
        console.print(f"{sum(map(bool, waiting.values()))} run(s) (no data): data not on disk ({shown}): identity "
                      f"computed when present", highlight=False)
    if benchmark is None:
        console.print(f"no device-hour estimate: no benchmark at {path}; run `python benchmarks/overhead.py "
                      f"--device {chosen.type} --quick` or pass --throughput FILE", highlight=False)
        return
    left = estimate_grid(todo, benchmark)
    elsewhere = other_machine(benchmark, machine_kind(chosen))
    caveat = (f"; {elsewhere}: step times differ up to 3× between kinds, `python benchmarks/overhead.py "
              f"--device {chosen.type} --quick` measures this one in about a minute" if elsewhere else "")
    console.print(f"estimated {left.total:.2f} device-hours for {len(left.hours)} of the {len(todo)} run(s) to do "
                  f"(training steps on {benchmark['device']}, from {path}; evaluation not counted{caveat})",
                  highlight=False)
    if "calibration" in benchmark:
        console.print(f"  [dim]plain steps measured on this machine, the other modes at their ratios on "
                      f"{benchmark['calibration']['reference_device']}[/dim]", highlight=False)
    for reason in sorted(set(left.missing.values()) | left.notes):
        console.print(f"  [dim]{reason}[/dim]")


def check_runs(configs: list[RunConfig], out: Path, device: str | None) -> None:
    """Refuse, before anything is written, what would fail later: an unusable --out or --device,
    an unknown Pi mode."""
    from ..store.files import writable_folder
    from ..method.pi import pi_estimator
    from ..compute.runtime import pick_device
    if not configs:
        raise SaflexError("no runs to do")
    pick_device(device)
    writable_folder(Path(out))
    for config in configs:
        if config.uses_saflex:
            pi_estimator(config.saflex.pi_mode)


def execute(configs: list[RunConfig], out: Path, device: str | None, quiet: bool, dry_run: bool,
            options: GridOptions | None = None, executor: str = "local",
            throughput: Path | None = None) -> list[RunConfig] | None:
    """Run the grid (or list it: --dry-run) and write the report; the configs run, with their data
    checksums (None for a dry run or a submitted SLURM job)."""
    from ..compute.distributed import is_leader
    from ..runs.executors import submit_grid
    from ..runs.fingerprint import with_data_checksums
    from ..runs.grid import GridOptions, busy_note, grid_problems, run_grid
    from ..reporting.report import write_report
    options = options or GridOptions()
    check_runs(configs, out, device)
    configs = with_data_checksums(configs, fetch=not dry_run)
    console.print(f"[bold]{configs[0].family}[/bold]: {len(configs)} run(s); recipe of the first:")
    console.print(configs[0].to_dict(), highlight=False)
    if dry_run:
        print_dry_run(configs, out, device, throughput)
        return None
    if executor == "slurm":  # days of work: submit and return; `saflex report` once the array job is done
        submit_grid(configs, out, executor, device=device, options=options, wait=False, quiet=quiet)
        return None
    if executor == "local":
        outcome = run_grid(configs, out, device=device, quiet=quiet, options=options)
    else:
        outcome = submit_grid(configs, out, executor, device=device, options=options, quiet=quiet)
    if is_leader():
        console.print(f"{len(outcome.ran)} run(s) recorded, {len(outcome.skipped)} skipped (already recorded)")
        written = write_report(out, configs[0].family)
        if written:
            console.print(f"tables: {written[1]} and {written[0]}")
    if busy_note(outcome) and is_leader():
        console.print(f"[yellow]{busy_note(outcome)}[/yellow]")
    if grid_problems(outcome):
        raise SaflexError(grid_problems(outcome))
    return configs
