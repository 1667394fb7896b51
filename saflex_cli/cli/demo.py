"""`saflex demo`: the offline proof that SAflex does something (a few minutes on 2 CPU cores).

The demo is a family like the others (digits, an MLP, an upstream augmenter that shifts 60% of the
augmented labels), so it takes every shared flag: sweeps, --set, --refine, --workers.
"""
from __future__ import annotations

from . import options as opt
from .common import build_configs
from .shared import RunFlags, family_command


@family_command
def demo(
    aug: opt.Augs = "all",
    saflex: opt.Saflex = False,
    refine: opt.Refine = None,
    seeds: opt.Seeds = "0,1,2",
    epochs: opt.Epochs = None,
    run: RunFlags = None,
) -> None:
    """Digits + MLP + an augmenter that shifts 60% of labels: no aug vs upstream-only vs SAflex.

    Example: saflex demo --seeds 0,1,2 --beta 0,inf
    """
    from ..reporting.demo import print_summary, summarise
    configs = run.execute(build_configs("demo", "digits", aug, saflex, seeds, refine=refine, train={"epochs": epochs}))
    if configs:
        print_summary(summarise(configs, run.out))
