"""Runs a list of configs, skipping those already recorded; each run ends in one atomic record."""
from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

import torch
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from .config import RECORD_SCHEMA, RunConfig
from .records import is_done, write_record
from .registry import FAMILIES
from .runtime import device_description, git_commit, package_versions, pick_device, seed_everything
from .trainer import Trainer

console = Console(stderr=True)


@dataclass
class GridOutcome:
    ran: list[Path]
    skipped: list[RunConfig]


def make_trainer(config: RunConfig, device: torch.device) -> Trainer:
    """Seed first, so the model's initial weights depend on the seed alone."""
    seed_everything(config.seed)
    return Trainer(FAMILIES.get(config.family).build(config, device), config, device)


def run_one(config: RunConfig, out: Path, device: torch.device, progress: Progress | None = None) -> Path:
    started = datetime.now(timezone.utc).isoformat()
    wall = time.perf_counter()
    trainer = make_trainer(config, device)
    setup = trainer.setup
    task = progress.add_task(config.run_name, total=config.epochs, status="") if progress else None

    def on_epoch(entry: dict) -> None:
        if progress is None:
            return
        kept = entry.get("saflex", {}).get("kept_fraction")
        val = entry.get("val", {})
        first_metric = next(iter(val.values()), float("nan"))
        status = f"loss {entry['train_loss']:.3f}  val {first_metric:.3f}" + (f"  kept {kept:.2f}" if kept is not None else "")
        progress.update(task, advance=1, status=status)

    result = trainer.fit(on_epoch)
    if progress is not None:
        progress.remove_task(task)
    record = {
        "schema": RECORD_SCHEMA, "status": "completed", "run_id": config.identity(), "run_name": config.run_name,
        "config": config.to_dict(), "data": setup.provenance, "versions": package_versions(),
        "device": device_description(device), "git_commit": git_commit(), "started": started,
        "finished": datetime.now(timezone.utc).isoformat(), "wall_time_s": time.perf_counter() - wall,
        **result,
    }
    return write_record(out, config, record)


def run_grid(configs: list[RunConfig], out: Path, device: str | None = None, quiet: bool = False) -> GridOutcome:
    target = pick_device(device)
    todo = [c for c in configs if not is_done(out, c)]
    skipped = [c for c in configs if c not in todo]
    if skipped and not quiet:
        console.print(f"[dim]{len(skipped)} of {len(configs)} runs already recorded in {out}: skipped[/dim]")
    ran = []
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
               TextColumn("{task.fields[status]}"))
    with Progress(*columns, console=console, disable=quiet, transient=False) as progress:
        overall = progress.add_task(f"grid on {target.type}", total=len(todo), status="")
        for config in todo:
            ran.append(run_one(config, out, target, progress))
            progress.update(overall, advance=1)
    return GridOutcome(ran, skipped)
