"""Step time of FLYP + RandAug vs FLYP + SAflex (w/ RandAug), through the real trainer step.

Both arms run `Trainer.train_step` on the same synthetic (image, caption) batches with WILDS'
RandAugment; the only difference is SAflex (validation gradient + JVP + refined loss), so the
ratio is SAflex's overhead. Random weights: the time does not depend on them.

    python benchmarks/flyp_overhead.py                                # tiny CLIP on the CPU
    python benchmarks/flyp_overhead.py --model ViT-B-16-quickgelu --batch-size 256 --device cuda
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import statistics
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

from saflex_cli.augment.paired import ImagePart  # noqa: E402
from saflex_cli.augment.wilds_randaug import WildsRandAugment  # noqa: E402
from saflex_cli.compute.runtime import device_description  # noqa: E402
from saflex_cli.data.batches import CyclingBatches  # noqa: E402
from saflex_cli.families.flyp import defaults  # noqa: E402
from saflex_cli.method.objectives import Contrastive  # noqa: E402
from saflex_cli.models.clip import image_size, load_clip, tokenizer  # noqa: E402
from saflex_cli.training.trainer import EpochStats, Trainer, TrainSetup  # noqa: E402


def synthetic_batches(arch: str, batch: int, count: int, device, seed: int):
    gen = torch.Generator().manual_seed(seed)
    captions = tokenizer(arch)([f"a photo of animal {i}." for i in range(batch * count)])
    out = []
    for i in range(count):
        size = image_size(arch)
        images = torch.randint(0, 256, (batch, 3, size, size), generator=gen, dtype=torch.uint8)
        out.append(((images.to(device), captions[i * batch:(i + 1) * batch].to(device)),
                    torch.arange(batch, device=device)))
    return out


def make_step(arch: str, batch: int, device: torch.device, saflex: bool):
    """One trainer (same seed, same batches) whose train_step differs from the other's only by SAflex."""
    torch.manual_seed(0)
    model = load_clip(arch, "random")
    config = dataclasses.replace(defaults(), model=arch, aug="randaug", batch_size=batch, refine="saflex" if saflex else "none",
                                 saflex=dataclasses.replace(defaults().saflex, val_batch_size=batch))
    train = synthetic_batches(arch, batch, 2, device, seed=1)
    setup = TrainSetup(model=model, objective=Contrastive(), train_batches=train,
                       val_batches=CyclingBatches(synthetic_batches(arch, batch, 2, device, seed=2)),
                       augmenter=ImagePart(WildsRandAugment()), evaluate=lambda m: {}, num_classes=batch)
    trainer = Trainer(setup, config, device)
    trainer.model.train()
    count = iter(range(10**9))

    def step() -> float:
        inputs, targets = train[next(count) % len(train)]
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        start = time.perf_counter()
        trainer.train_step(inputs, targets, EpochStats())
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        return time.perf_counter() - start

    return step


def median_step_times(arch: str, batch: int, steps: int, device: torch.device) -> tuple[float, float]:
    """Median step times, the two arms alternating step by step so that load drifts hit both alike."""
    plain, refined = make_step(arch, batch, device, False), make_step(arch, batch, device, True)
    for _ in range(2):  # warm-up: allocator, kernels, autotuning
        plain(), refined()
    times = [(plain(), refined()) for _ in range(steps)]
    return statistics.median(t[0] for t in times), statistics.median(t[1] for t in times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=None, help="open_clip architecture (default: the tests' tiny CLIP)")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=None, help="CPU threads (torch.set_num_threads)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.model is None:
        from flyp_helpers import register_tiny_clip
        args.model = register_tiny_clip()
    device = torch.device(args.device)
    plain, refined = median_step_times(args.model, args.batch_size, args.steps, device)
    result = {"model": args.model, "batch_size": args.batch_size, "steps": args.steps,
              "device": device_description(device), "flyp_randaug_s_per_step (median)": plain,
              "flyp_saflex_s_per_step (median)": refined, "ratio": refined / plain}
    print(json.dumps(result, indent=1))
    print(f"FLYP+SAflex / FLYP+RandAug step time: {refined / plain:.2f}x "
          f"({refined * 1000:.1f} ms vs {plain * 1000:.1f} ms per step, {args.model}, batch {args.batch_size}, "
          f"{result['device']})")


if __name__ == "__main__":
    main()
