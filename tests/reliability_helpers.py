"""Shared by the reliability tests: tiny demo configs, the CLI as a subprocess, record metrics."""
from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import torch

from saflex_cli.registry import FAMILIES

REPO = Path(__file__).resolve().parents[1]
TIMINGS = {"train_time_s", "eval_time_s"}


def demo_config(epochs: int = 3, saflex: bool = True, seed: int = 0, aug: str = "label-shift", **changes):
    base = FAMILIES.get("demo").defaults("digits")
    return dataclasses.replace(base, epochs=epochs, seed=seed, aug=aug,
                               refine="saflex" if saflex else "none", **changes)


def child_env(**extra) -> dict:
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1", "SAFLEX_OFFLINE": "1",
           "PYTHONWARNINGS": "ignore"}
    env.update(extra)
    return env


def cli(*args: str, **popen) -> subprocess.Popen:
    """`python -m saflex_cli ARGS` in a child process (so it can be SIGKILLed)."""
    return subprocess.Popen([sys.executable, "-m", "saflex_cli", *args], cwd=REPO, env=child_env(),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **popen)


def default_stop_signals() -> None:
    """A shell that starts a job in the background (no job control) has it ignore SIGINT, and the
    ignoring is inherited: a worker must start with the default actions for the signal tests to mean
    anything, however the suite was launched."""
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, signal.SIG_DFL)


def worker(out: Path, spec: dict) -> subprocess.Popen:
    """tests/grid_worker.py: run_grid over demo configs in a child process."""
    return subprocess.Popen([sys.executable, str(REPO / "tests" / "grid_worker.py"), str(out), json.dumps(spec)],
                            cwd=REPO, env=child_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            preexec_fn=default_stop_signals)


def wait_for(predicate, timeout: float = 60.0, every: float = 0.005):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(every)
    raise TimeoutError("condition not reached")


def metrics(record: dict) -> dict:
    """What a run measured: every epoch's numbers and the selections, without wall-clock times."""
    epochs = [{k: v for k, v in e.items() if k not in TIMINGS} for e in record["epochs"]]
    return {"epochs": epochs, "selections": record["selections"], "trust": record.get("trust")}


def records(out: Path) -> dict[str, dict]:
    return {p.name: json.loads(p.read_text()) for p in sorted(Path(out).glob("runs/*/*.json"))}


def events(out: Path) -> list[dict]:
    path = Path(out) / "events.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


@contextlib.contextmanager
def one_thread():
    """Bit-identical float sums between this process and a child need the same thread count."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)
