"""A grid as a submitit array job, tested offline with submitit's local executor."""
from __future__ import annotations

import os
import signal
from collections import Counter

import pytest

from reliability_helpers import child_env, demo_config, events, records, wait_for
from saflex_cli.runs.grid import GridOptions, checkpoint_folder

submitit = pytest.importorskip("submitit")


def test_array_job_runs_each_run_once_and_a_preempted_task_resumes(tmp_path, monkeypatch):
    from saflex_cli.runs import executors

    for name, value in child_env().items():  # the tasks are fresh Pythons: same path and thread count
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("SAFLEX_SUBMITIT", '{"timeout_min": 10}')
    configs = [demo_config(epochs=2, seed=s) for s in (0, 1, 2)]
    outcome = executors.submit_grid(configs, tmp_path / "grid", "submitit-local", options=GridOptions(workers=2))
    assert len(outcome.ran) == 3
    starts = Counter(e["run"] for e in events(tmp_path / "grid") if e["event"] == "start")
    assert set(starts.values()) == {1} and len(starts) == 3
    assert len({e["pid"] for e in events(tmp_path / "grid")}) == 2  # both array tasks took runs

    # preemption: SIGUSR2 (what SLURM sends) -> claims released, task requeued, run resumed
    long_run = demo_config(epochs=40)
    out = tmp_path / "preempted"
    pool = submitit.AutoExecutor(folder=out / "submitit", cluster="local")
    pool.update_parameters(timeout_min=10)
    job = pool.submit(executors._checkpointable()(), [long_run], out, "cpu", GridOptions())
    wait_for(lambda: list(checkpoint_folder(out, long_run).glob("e0000[2-9]-*.pt")), timeout=120)
    os.kill(events(out)[0]["pid"], signal.SIGUSR2)  # to the task, as SLURM does (the local controller drops it)
    job.result()
    assert [e["event"] for e in events(out)] == ["start", "resume", "complete"]
    assert next(iter(records(out).values()))["status"] == "completed"
    assert not (out / "claims").exists()
