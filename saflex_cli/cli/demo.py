"""`saflex demo`: the offline proof that SAflex does something (a few minutes on 2 CPU cores)."""
from __future__ import annotations

from pathlib import Path

from . import options as opt
from .common import parse_seeds


def demo(seeds: opt.Seeds = "0,1,2", epochs: opt.Epochs = None, out: opt.Out = Path("results/demo"),
         quiet: opt.Quiet = False, retry_failed: opt.RetryFailed = False, force: opt.Force = False,
         workers: opt.Workers = 1, checkpoint_every: opt.CheckpointEvery = 0) -> None:
    """Digits + MLP + an augmenter that shifts 60% of labels: no aug vs upstream-only vs SAflex."""
    from ..demo import run_demo
    from ..grid import GridOptions
    run_demo(parse_seeds(seeds), out, quiet, epochs, GridOptions(retry_failed, force, checkpoint_every, workers))
