"""Where the exact SAflex step's time goes: its phases, and how much of it the GPU is busy.

    python benchmarks/profile_step.py --device cuda            # ResNet-18 (28), batch 128
    python benchmarks/profile_step.py --device cuda --compile  # the same step under --compile

Times each phase on its own (median of --steps, synchronised): the plain union step, the
validation gradient, the JVP that gives Pi, and the whole exact step; then profiles the exact
step with torch.profiler and prints the GPU kernel time as a share of the wall-clock. A share
well under 1 means the step is bound by the host launching kernels, not by the GPU's arithmetic:
fewer, larger kernels (not fewer FLOPs) are what make it faster.
"""
from __future__ import annotations

import argparse
import copy
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from overhead import Forever, Staged, make_trainer, resnet18_28  # noqa: E402

from saflex_cli.augment.base import AugBatch  # noqa: E402
from saflex_cli.method.pi import compiled_directional_log_probs, directional_log_probs, validation_gradient  # noqa: E402
from saflex_cli.training.trainer import EpochStats  # noqa: E402


def timed(call, device: torch.device, steps: int) -> float:
    """Median seconds of `call`, synchronised on both sides."""
    times = []
    for index in range(steps + 3):
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        start = time.perf_counter()
        call()
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        if index >= 3:
            times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--compile", action="store_true", help="the trainer's --compile (the first calls compile)")
    args = parser.parse_args()
    device = torch.device(args.device)
    torch.backends.cudnn.benchmark = True
    bench, gen = resnet18_28(), torch.Generator().manual_seed(0)
    inputs, targets = bench.batch(args.batch_size, device, gen)
    aug_inputs, aug_targets = bench.batch(args.batch_size, device, gen)
    val = bench.batch(args.batch_size, device, gen)
    aug = AugBatch(aug_inputs, torch.nn.functional.one_hot(aug_targets, 9).float())
    trainers = {mode: make_trainer(bench, copy.deepcopy(bench.model).to(device), mode, [(inputs, targets)], Staged(aug),
                                   Forever(val), 9, device, compile=args.compile) for mode in ("plain", "exact")}
    model, objective = trainers["exact"].model, trainers["exact"].setup.objective
    grad = validation_gradient(model, objective, *val)
    along = compiled_directional_log_probs if args.compile else directional_log_probs
    phases = {
        "plain step (union fwd+bwd+optimizer)": lambda: trainers["plain"].train_step(inputs, targets, EpochStats()),
        "validation gradient": lambda: validation_gradient(model, objective, *val),
        "JVP (Pi of the augmented batch)": lambda: along(
            model, lambda call: objective.logits(call, aug_inputs), grad, -1.0),
        "exact SAflex step": lambda: trainers["exact"].train_step(inputs, targets, EpochStats()),
    }
    print(f"ResNet-18 (28), batch {args.batch_size}, {device}{', compiled' if args.compile else ''}")
    for name, call in phases.items():
        print(f"  {name:<40} {timed(call, device, args.steps) * 1000:8.2f} ms")
    if device.type != "cuda":
        return
    exact = phases["exact SAflex step"]
    with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU,
                                            torch.profiler.ProfilerActivity.CUDA]) as profile:
        torch.cuda.synchronize(device)
        start = time.perf_counter()
        for _ in range(args.steps):
            exact()
        torch.cuda.synchronize(device)
        wall = time.perf_counter() - start
    kernels = [e for e in profile.events() if e.device_type == torch.autograd.DeviceType.CUDA]
    busy = sum(e.device_time for e in kernels) / 1e6  # microseconds -> seconds
    print(f"  exact step under the profiler: {len(kernels) / args.steps:.0f} kernels per step, GPU busy "
          f"{busy / wall:.0%} of the wall-clock ({busy / args.steps * 1000:.1f} of {wall / args.steps * 1000:.1f} ms)")
    print(profile.key_averages().table(sort_by="cuda_time_total", row_limit=12))


if __name__ == "__main__":
    main()
