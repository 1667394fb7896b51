"""Step time of SAflex vs a plain CutMix step, for the tabular MLP and SAINT, in one run.

The paper (Appendix C) reports SAflex costing on average 81% more time per epoch on its seven
tabular datasets. Here: a table shaped like Shrutime (2 categorical columns with 4 and 3 codes,
8 continuous), batch 256, validation batch 256, the recipe's optimiser; median over timed steps
after warm-up. Usage: python benchmarks/tabular_overhead.py [--device cuda] [--steps 30]
"""
from __future__ import annotations

import argparse
import dataclasses
import statistics
import time

import torch

from saflex_cli.compute.runtime import device_description
from saflex_cli.data.splits import Split, Splits
from saflex_cli.families.base import tensor_setup
from saflex_cli.families.tabular import BENCHMARK_CARDINALITIES, BENCHMARK_CONTINUOUS, build_model, defaults
from saflex_cli.training.trainer import EpochStats, Trainer

CARDS, N_CONT, ROWS = list(BENCHMARK_CARDINALITIES), BENCHMARK_CONTINUOUS, 4096  # the estimate's scale assumes them


def synthetic_rows(n: int, gen: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """n rows of a Shrutime-shaped table (category codes, then continuous values) and binary labels."""
    codes = torch.stack([torch.randint(0, c, (n,), generator=gen) for c in CARDS], 1).float()
    return torch.cat([codes, torch.randn(n, N_CONT, generator=gen)], 1), torch.randint(0, 2, (n,), generator=gen)


def synthetic_splits() -> Splits:
    gen = torch.Generator().manual_seed(0)
    return Splits(*(Split(*synthetic_rows(n, gen)) for n in (ROWS, ROWS // 4, ROWS // 4)), num_classes=2, task="binary")


def step_seconds(model_name: str, saflex: bool, device: torch.device, steps: int, warmup: int = 5) -> float:
    config = dataclasses.replace(defaults("shrutime"), model=model_name, aug="cutmix")
    config = dataclasses.replace(config, refine="saflex" if saflex else "none")
    torch.manual_seed(0)
    model = build_model(config, CARDS, N_CONT, 2)
    trainer = Trainer(tensor_setup(config, synthetic_splits(), model, device), config, device)
    trainer.model.train()
    batches = iter(trainer.setup.train_batches)
    times = []
    for index in range(warmup + steps):
        try:
            inputs, targets = next(batches)
        except StopIteration:
            batches = iter(trainer.setup.train_batches)
            inputs, targets = next(batches)
        if device.type == "cuda":
            torch.cuda.synchronize()
        start = time.perf_counter()
        trainer.train_step(inputs, targets, EpochStats()).item()  # .item(): wait for the step
        if index >= warmup:
            times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--threads", type=int, default=1, help="CPU threads (torch.set_num_threads)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    print(f"device: {device_description(device)}; batch 256 + CutMix, val batch 256; median of {args.steps} steps")
    print("model  plain_ms  saflex_ms  ratio")
    for name in ("mlp", "saint"):
        plain, refined = (step_seconds(name, s, device, args.steps) for s in (False, True))
        print(f"{name:6s} {plain * 1e3:8.2f} {refined * 1e3:10.2f} {refined / plain:6.2f}")


if __name__ == "__main__":
    main()
