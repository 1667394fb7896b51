"""A grid as one array job through submitit: SLURM on a cluster, or local processes to test it.

Each array task is a grid worker (grid.work): it claims runs, so tasks never repeat one, and
a task requeued after a preemption or timeout resumes its run from the run's checkpoint.
Cluster settings (partition, timeout, GPUs) come from SAFLEX_SUBMITIT as a JSON object of
submitit parameters, e.g. '{"slurm_partition": "gpu", "timeout_min": 240, "gpus_per_node": 1}'.
"""
from __future__ import annotations

import dataclasses
import json
import os
from pathlib import Path

from ..config import RunConfig
from ..errors import SaflexError
from .claims import release_held
from .grid import GridOptions, GridOutcome, completed_runs, outcome_from_records, run_grid

CLUSTERS = {"slurm": "slurm", "submitit-local": "local"}
DEFAULTS = {"timeout_min": 60 * 24, "gpus_per_node": 1, "cpus_per_task": 8}


def _submitit():
    try:
        import submitit
    except ImportError:
        raise SaflexError("--executor slurm needs submitit: pip install 'saflex[slurm]'") from None
    return submitit


def settings() -> dict:
    text = os.environ.get("SAFLEX_SUBMITIT", "{}")
    try:
        extra = json.loads(text)
    except ValueError:
        raise SaflexError(f"SAFLEX_SUBMITIT is not a JSON object: {text!r}") from None
    if not isinstance(extra, dict):
        raise SaflexError(f"SAFLEX_SUBMITIT must be a JSON object of submitit parameters, got {text!r}")
    return {**DEFAULTS, **extra}


def _checkpointable():
    submitit = _submitit()

    class GridTask(submitit.helpers.Checkpointable):
        """One array task: a grid worker; on preemption its claims are released and it is requeued."""

        def __call__(self, configs: list[RunConfig], out: Path, device: str | None, options: GridOptions,
                     quiet: bool = False) -> int:
            return len(run_grid(configs, out, device, quiet=quiet, options=dataclasses.replace(options, workers=1),
                                worker=True).ran)

        def checkpoint(self, *args, **kwargs):
            release_held()  # the run's checkpoint is on disk; a requeued task (or any worker) resumes it
            return super().checkpoint(*args, **kwargs)

    return GridTask


def submit_grid(configs: list[RunConfig], out: Path, executor: str, *, device: str | None = None,
                options: GridOptions = GridOptions(), wait: bool = True, quiet: bool = False) -> GridOutcome:
    """Submit `options.workers` array tasks over the grid; wait for them unless `wait` is False."""
    if executor not in CLUSTERS:
        raise SaflexError(f"unknown executor {executor!r}; choose local, slurm or submitit-local")
    submitit = _submitit()
    params = settings()
    if CLUSTERS[executor] == "local":
        params = {k: v for k, v in params.items() if k in ("timeout_min", "gpus_per_node")}
        params["gpus_per_node"] = min(params["gpus_per_node"], _gpu_count())
    recorded_before = completed_runs(Path(out), configs)
    folder = Path(out) / "submitit"
    pool = submitit.AutoExecutor(folder=folder, cluster=CLUSTERS[executor])
    pool.update_parameters(name="saflex-grid", slurm_array_parallelism=options.workers, **params) \
        if CLUSTERS[executor] == "slurm" else pool.update_parameters(**params)
    task = _checkpointable()()
    jobs = pool.map_array(task, *zip(*[(configs, Path(out), device, options, quiet)] * options.workers))
    print(f"submitted {len(jobs)} array task(s): {jobs[0].job_id.split('_')[0]} (logs in {folder})")
    if not wait:
        return GridOutcome()
    for job in jobs:
        job.result()
    return outcome_from_records(out, configs, recorded_before)


def _gpu_count() -> int:
    import torch
    return torch.cuda.device_count()
