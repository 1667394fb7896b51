"""The flags every family command shares, added to each command by one decorator.

A family command declares only its own flags and receives the shared ones as one `run: RunFlags`
argument; the decorator extends the signature Typer reads, so `--help` lists them all. The
training settings among them (batch size, lr, SAflex's beta, tau and validation batch) override
the recipe's defaults of every run the command builds, as the Pi settings do for its SAflex runs;
--epochs stays with each command (FLYP's zero-shot runs fix it at 0).
"""
from __future__ import annotations

import dataclasses
import functools
import inspect
from pathlib import Path

from ..config import RunConfig, override
from . import options as opt
from .common import execute

# name, Annotated option, default: the order `--help` shows them in, after the command's own.
SHARED = (
    ("batch_size", opt.BatchSize, None), ("lr", opt.Lr, None), ("beta", opt.Beta, None), ("tau", opt.Tau, None),
    ("val_batch_size", opt.ValBatchSize, None), ("pi_mode", opt.PiMode, None), ("pi_refresh", opt.PiRefresh, None),
    ("out", opt.Out, Path("results")), ("device", opt.Device, None), ("quiet", opt.Quiet, False),
    ("dry_run", opt.DryRun, False), ("throughput", opt.Throughput, None),
    ("retry_failed", opt.RetryFailed, False), ("force", opt.Force, False), ("workers", opt.Workers, 1),
    ("checkpoint_every", opt.CheckpointEvery, 0), ("executor", opt.Executor, "local"),
)


@dataclasses.dataclass(frozen=True)
class RunFlags:
    batch_size: int | None
    lr: float | None
    beta: float | None
    tau: float | None
    val_batch_size: int | None
    pi_mode: str | None
    pi_refresh: int | None
    out: Path
    device: str | None
    quiet: bool
    dry_run: bool
    throughput: Path | None
    retry_failed: bool
    force: bool
    workers: int
    checkpoint_every: int
    executor: str

    def execute(self, configs: list[RunConfig]) -> None:
        """Apply the training settings to every run and the Pi settings to the SAflex runs (the others'
        identity stays), then run the grid."""
        from ..core import pi_estimator
        from ..grid import GridOptions
        if self.pi_mode is not None:
            pi_estimator(self.pi_mode)  # an unknown --pi-mode fails here, before any run
        configs = [dataclasses.replace(override(c, batch_size=self.batch_size), optim=override(c.optim, lr=self.lr),
                                       saflex=override(c.saflex, beta=self.beta, tau=self.tau,
                                                       val_batch_size=self.val_batch_size))
                   for c in configs]
        configs = [dataclasses.replace(c, saflex=override(c.saflex, pi_mode=self.pi_mode, pi_refresh=self.pi_refresh))
                   if c.saflex.enabled else c for c in configs]
        options = GridOptions(self.retry_failed, self.force, self.checkpoint_every, self.workers)
        execute(configs, self.out, self.device, self.quiet, self.dry_run, options, self.executor, self.throughput)


def family_command(command):
    """Give `command(..., run: RunFlags)` the shared flags of every family command."""
    signature = inspect.signature(command, eval_str=True)  # Typer reads a __signature__ as it stands
    own = [p for p in signature.parameters.values() if p.name != "run"]
    shared = [inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, default=default, annotation=annotation)
              for name, annotation, default in SHARED]

    @functools.wraps(command)
    def with_shared_flags(**kwargs):
        run = RunFlags(**{name: kwargs.pop(name) for name, _, _ in SHARED})
        return command(**kwargs, run=run)

    with_shared_flags.__signature__ = signature.replace(parameters=own + shared)
    with_shared_flags.__annotations__ = {p.name: p.annotation for p in own + shared}
    return with_shared_flags
