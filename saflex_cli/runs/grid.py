"""Runs a list of configs so that the results folder is the single source of truth.

Each run is claimed before it starts (claims.py), resumes from its newest checkpoint, and ends
in one atomic record: "completed", or "failed" with the reason, epoch and step (the grid then
goes on). Several workers (processes, GPUs, nodes, SLURM array tasks) may share one folder;
each run is executed by one of them. Every start, resume, completion and failure is appended
to OUT/events.jsonl, the audit trail of who ran what.
"""
from __future__ import annotations

import json
import multiprocessing
import os
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

import torch
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from ..compute.distributed import Ranks, broadcast, init_from_env, local_device
from ..compute.runtime import (deterministic_mode, device_description, git_commit, memory_format_name, package_versions,
                               pick_device, prepare_determinism, seed_everything)
from ..config import RECORD_SCHEMA, SAVE_MODEL, RunConfig
from ..errors import SaflexError
from ..registry import FAMILIES
from ..store.files import append_line, host, sweep_temp_files
from ..store.records import read_record, record_path, record_status, set_aside, stale_records, write_record
from ..training.checkpoint import Checkpoints
from ..training.live import LiveRun, require_tensorboard
from ..training.trainer import Trainer, TrainingDiverged
from ..training.weights import save_weights, wanted_selections
from .claims import Claim, sweep_claims

console = Console(stderr=True)
OUT_OF_MEMORY = (torch.OutOfMemoryError,)


@dataclass
class GridOutcome:
    ran: list[Path] = field(default_factory=list)
    skipped: list[RunConfig] = field(default_factory=list)  # already recorded
    failed: list[Path] = field(default_factory=list)
    busy: list[RunConfig] = field(default_factory=list)  # claimed by another worker


def make_trainer(config: RunConfig, device: torch.device, ranks: Ranks | None = None) -> Trainer:
    """Seed first, so the model's initial weights depend on the seed alone."""
    seed_everything(config.seed)
    return Trainer(FAMILIES.get(config.family).build(config, device), config, device, ranks=ranks)


@dataclass(frozen=True)
class GridOptions:
    retry_failed: bool = False  # rerun runs whose record says failed
    force: bool = False  # set aside records of the same cells made with another config
    checkpoint_every: int = 0  # steps between mid-epoch checkpoints (0: at epoch ends only)
    workers: int = 1  # worker processes on this machine (one per GPU when there are several)
    save_model: str = "best"  # whose weights stay beside the record (config.SAVE_MODEL); not part of the identity
    tensorboard: bool = False  # each epoch's scalars under OUT/tensorboard/<run_name>/

    def __post_init__(self):
        if self.save_model not in SAVE_MODEL:
            raise SaflexError(f"--save-model {self.save_model!r} is not one of: {' | '.join(SAVE_MODEL)}")


def completed_runs(out: Path, configs: list[RunConfig]) -> list[RunConfig]:
    return [c for c in configs if record_status(out, c) == "completed"]


def outcome_from_records(out: Path, configs: list[RunConfig], recorded_before: list[RunConfig]) -> GridOutcome:
    """What the folder says, once several workers have been at it (`recorded_before`: done already)."""
    outcome = GridOutcome(skipped=list(recorded_before))
    for config in configs:
        if config in recorded_before:
            continue
        status = record_status(out, config)
        {"completed": outcome.ran, "failed": outcome.failed}.get(status, outcome.busy).append(record_path(out, config))
    return outcome


def grid_problems(outcome: GridOutcome) -> str | None:
    """One line on the runs that failed, and what to do about it; None if none did."""
    if not outcome.failed:
        return None
    return (f"{len(outcome.failed)} run(s) failed, reasons in their records and the report "
            f"({', '.join(p.stem for p in outcome.failed[:3])}{', ...' if len(outcome.failed) > 3 else ''}): "
            f"fix the cause and rerun with --retry-failed")


def busy_note(outcome: GridOutcome) -> str | None:
    if not outcome.busy:
        return None
    return (f"{len(outcome.busy)} run(s) are held by other workers (OUT/claims/); rerun later to see them "
            f"recorded (a claim whose worker is gone is taken over)")


def checkpoint_folder(out: Path, config: RunConfig) -> Path:
    return Path(out) / "checkpoints" / config.family / config.run_name


def log_event(out: Path, event: str, config: RunConfig, **facts) -> None:
    """One JSON line per event, appended in a single write (atomic for short lines)."""
    append_line(Path(out) / "events.jsonl", json.dumps({
        "time": datetime.now(timezone.utc).isoformat(), "event": event, "run": config.run_name, "host": host(),
        "pid": os.getpid(), **facts}))


def run_one(config: RunConfig, out: Path, device: torch.device, progress: Progress | None = None, *,
            options: GridOptions = GridOptions(), ranks: Ranks | None = None, claim: Claim | None = None,
            lines: bool = False, prefix: bool = False) -> Path | None:
    """Train one run (from its checkpoint if there is one), keep its weights, and write its record.

    Only rank 0 writes; a run that diverges or runs out of memory gets a failure record. `progress`:
    the grid's bars (a terminal); `lines`: a line per epoch instead; `prefix`: the run's name on them.
    """
    leader = ranks is None or ranks.leader
    started = datetime.now(timezone.utc).isoformat()
    wall = time.perf_counter()
    with deterministic_mode(config.deterministic) as determinism:
        trainer = make_trainer(config, device, ranks)
        checkpoints = Checkpoints(checkpoint_folder(out, config))
        state = checkpoints.load_latest(config.identity())
        if state is not None:
            trainer.load_state_dict(state)
        if leader:
            log_event(out, "resume" if state else "start", config, epoch=trainer.epoch, step=trainer.step)
        live = LiveRun(out, config, console, files=leader, lines=lines and leader, prefix=prefix,
                       tensorboard=options.tensorboard, progress=progress if leader else None)
        live.begin(trainer.history, trainer.epoch, trainer.step, len(trainer.setup.train_batches),
                   resumed=state is not None)

        def save(t: Trainer) -> None:
            if leader:
                checkpoints.save(t.state_dict(), config.identity(), t.epoch, t.step)

        base = {"schema": RECORD_SCHEMA, "run_id": config.identity(), "run_name": config.run_name,
                "config": config.to_dict(), "data": trainer.setup.provenance, "versions": package_versions(),
                "device": device_description(device), "memory_format": memory_format_name(trainer.model),
                "world_size": ranks.world if ranks else 1,
                "git_commit": git_commit(), "started": started, **({"determinism": determinism} if determinism else {})}
        try:
            result = trainer.fit(live.epoch, save=save, save_every=options.checkpoint_every, on_step=live.step)
        except (TrainingDiverged, *OUT_OF_MEMORY) as error:
            epoch = getattr(error, "epoch", trainer.epoch + 1)
            step = getattr(error, "step", trainer.step + 1)
            record = {**base, "status": "failed", "reason": str(error).splitlines()[0], "error": type(error).__name__,
                      "epoch": epoch, "step": step, "finished": datetime.now(timezone.utc).isoformat()}
            return _finish(out, config, record, checkpoints, claim, leader, "fail", reason=record["reason"])
        finally:
            live.close()
    record = {**base, "status": "completed", "finished": datetime.now(timezone.utc).isoformat(),
              "wall_time_s": time.perf_counter() - wall, "resumed_at": [state["epoch"], state["step"]] if state else None,
              **result}
    return _finish(out, config, record, checkpoints, claim, leader, "complete",
                   keep=lambda: keep_weights(out, config, trainer, result["selections"], options.save_model))


def keep_weights(out: Path, config: RunConfig, trainer: Trainer, selections: dict, save_model: str) -> dict:
    """Write the weights of the selections `save_model` asks for; what the record says of them."""
    wanted = wanted_selections(save_model, FAMILIES.get(config.family).selection, list(selections))
    return {s: save_weights(out, config, s, selections[s]["epoch"], trainer.weights(s)) for s in wanted}


def _finish(out, config, record, checkpoints, claim, leader, event, keep=None, **facts) -> Path | None:
    if not leader:
        return None
    if claim is not None and not claim.held():
        console.print(f"[yellow]{config.run_name}: claim lost to another worker (heartbeat older than its TTL); "
                      f"its result is discarded[/yellow]")
        return None
    if keep is not None:  # the weights first: a record that lists them is never without them
        record["models"] = keep()
    path = write_record(out, config, record)
    log_event(out, event, config, **facts)
    if record["status"] == "completed":
        checkpoints.clear()
    return path


def _pending(out: Path, configs: list[RunConfig], options: GridOptions) -> tuple[list, list, dict]:
    """(to run, already recorded, the finish time of each failed record to retry)."""
    todo, skipped, failed_at = [], [], {}
    for config in configs:
        status = record_status(out, config)
        if status == "completed" or (status == "failed" and not options.retry_failed):
            skipped.append(config)
            continue
        if status == "failed":
            failed_at[config.run_name] = read_record(record_path(out, config)).get("finished")
        todo.append(config)
    return todo, skipped, failed_at


def _still_to_run(out: Path, config: RunConfig, failed_at: dict) -> bool:
    """Re-checked after claiming: another worker may have finished the run meanwhile."""
    status = record_status(out, config)
    if status is None:
        return True
    return status == "failed" and read_record(record_path(out, config)).get("finished") == failed_at.get(config.run_name)


def work(configs: list[RunConfig], out: Path, device: str | None = None, quiet: bool = False,
         options: GridOptions = GridOptions(), ranks: Ranks | None = None, worker: bool = False) -> GridOutcome:
    """One worker's pass over the grid: claim, run, record, release; skip what others hold.

    Under torchrun the ranks act as one worker: rank 0 claims and writes, the others follow.
    Progress bars on a terminal; a line per epoch without one, or in a `worker` among several
    (their lines interleave: each carries its run's name).
    """
    out = Path(out)
    target = local_device(ranks, pick_device(device))
    leader = ranks is None or ranks.leader
    todo, skipped, failed_at = _pending(out, configs, options)
    outcome = GridOutcome(skipped=skipped)
    bars = not quiet and leader and not worker and console.is_terminal
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
               TextColumn("{task.fields[status]}"))
    with Progress(*columns, console=console, disable=not bars, transient=False) as progress:
        overall = progress.add_task(f"grid on {target.type}", total=len(todo), status="")
        for config in todo:
            claim = Claim(out, config.family, config.run_name) if leader else None
            go = leader and claim.acquire()
            if go and not _still_to_run(out, config, failed_at):
                claim.release()
                go = False
            if not broadcast(go, ranks):
                outcome.busy.append(config)
                progress.update(overall, advance=1)
                continue
            try:
                path = run_one(config, out, target, progress if bars else None, options=options, ranks=ranks,
                               claim=claim, lines=not quiet and not bars, prefix=worker)
            finally:
                if claim is not None:
                    claim.release()
            if path is not None:
                (outcome.ran if read_record(path)["status"] == "completed" else outcome.failed).append(path)
            progress.update(overall, advance=1)
    return outcome


def _worker_main(index: int, configs, out, device, options, quiet) -> None:
    # The intra-op thread count is left as in a lone process: on the CPU it changes a run's numbers
    # (convolutions reduce in another order), which must not depend on how many workers share the
    # machine (docs/reliability.md). Set OMP_NUM_THREADS to trade speed for it, knowingly.
    if device is not None and torch.device(device).type == "cuda" and torch.device(device).index is not None:
        torch.cuda.set_device(torch.device(device))  # else every worker also opens a context on GPU 0
    work(configs, out, device, quiet=quiet, options=options, worker=True)


def worker_devices(device: str | None, workers: int) -> list[str | None]:
    """One slot per GPU when there are several; otherwise every worker on the one device."""
    if device is None and torch.cuda.device_count() > 1:
        return [f"cuda:{i % torch.cuda.device_count()}" for i in range(workers)]
    return [device] * workers


def run_grid(configs: list[RunConfig], out: Path, device: str | None = None, quiet: bool = False,
             options: GridOptions = GridOptions(), worker: bool = False) -> GridOutcome:
    """Run what is not recorded yet; `worker`: this process is one of several (an array task)."""
    out = Path(out)
    if options.tensorboard:
        require_tensorboard()
    prepare_determinism(any(c.deterministic for c in configs))  # before any CUDA work, workers included
    ranks = init_from_env(pick_device(device).type)
    if ranks is not None and options.workers > 1:
        raise SaflexError("--workers starts its own processes; under torchrun each process group is one worker: "
                          "drop --workers, or run without torchrun")
    leader = ranks is None or ranks.leader
    stale = stale_records(out, configs) if leader else {}
    if stale:
        first = next(iter(stale))
        example = f"{first.name}: {stale[first]}"
        if options.force:
            console.print(f"[yellow]{len(stale)} stale record(s) moved to {set_aside(out, list(stale))} "
                          f"(e.g. {example})[/yellow]", highlight=False)
        else:
            console.print(f"[yellow]{len(stale)} stale record(s) in {out} are not reused (e.g. {example}); the report "
                          f"shows them as their own rows: pass --force to move them to {out / 'superseded'}[/yellow]",
                          highlight=False)
    if options.workers > 1:
        recorded_before = completed_runs(out, configs)
        context = multiprocessing.get_context("spawn")
        processes = [context.Process(target=_worker_main, args=(i, configs, out, d, options, quiet))
                     for i, d in enumerate(worker_devices(device, options.workers))]
        for process in processes:
            process.start()
        for process in processes:
            process.join()
        stopped = [i for i, p in enumerate(processes) if p.exitcode != 0]
        if stopped:
            raise SaflexError(f"worker(s) {stopped} stopped with an error (message above); finished runs are "
                              f"recorded and the others resume from their checkpoints when you rerun")
        outcome = outcome_from_records(out, configs, recorded_before)
    else:
        outcome = work(configs, out, device, quiet, options, ranks, worker)
    if outcome.skipped and not quiet and leader:
        console.print(f"[dim]{len(outcome.skipped)} of {len(configs)} runs already recorded in {out}: skipped[/dim]")
    if leader:
        for config in configs:  # a worker killed between writing a record and clearing its checkpoints
            if record_status(out, config) == "completed":
                Checkpoints(checkpoint_folder(out, config)).clear()
        if all(record_status(out, c) is not None for c in configs):
            sweep_claims(out)
        sweep_temp_files(out)
    broadcast(None, ranks)  # the other ranks read the records only once rank 0 has written them
    return outcome
