"""What a SAflex step costs beside the plain step, per backbone, in one run on one device.

    python benchmarks/overhead.py --device cuda            # all backbones, JSON to saflex_cli/resources/benchmarks/
    python benchmarks/overhead.py --device cpu --backbones resnet18_28,mlp --steps 5
    python benchmarks/overhead.py --quick                  # this machine's plain steps, for --dry-run
    python benchmarks/overhead.py --device cpu --compile --backbones resnet18_28 --steps 5 --warmup 1

Every number is the real `Trainer.train_step` (issue 'Performance', sections 1, 2 and 4):
- plain: forward + backward on the union of the clean and augmented batches, uniform weights;
- exact: + a validation forward/backward and Pi through the clean + augmented union; at full
  precision (the CPU) from the training forward itself (one dual forward), under bf16 autocast
  (CUDA) by its own JVP pass; exact-separate: always by its own pass; exact-augmented: a JVP over
  the augmented batch alone (pi_forward 'augmented', the default before);
- last-layer: Pi of the final linear layer in closed form from the training forward itself;
- *-K10: the validation gradient refreshed every 10 steps;
- l2rw: learning-to-reweight (Ren et al. 2018), the method SAflex is compared with: a validation
  backward and a double backward over the union (reverse-mode through the virtual step);
- on CUDA also exact with Pi under bf16 autocast ('exact-bf16pi') and, for conv nets,
  every mode with the model in contiguous (NCHW) memory ('contiguous' block): the trainer runs
  BatchNorm CNNs channels-last on CUDA (runtime.on_device), and this block shows what that buys.
Batches are pre-staged on the device for these ratios. The data-path block then feeds the same
step from the real pipeline (TensorBatches + RandAugment / Mixup on the device) and reports
staged time / pipeline time (1.0 = the data path costs nothing) and images/s.
--compile measures instead plain and exact, eager and compiled (the trainer's --compile), in each
memory format for BatchNorm CNNs, every variant stepped in turn, and adds them to the JSON under
compile/<threads> (the rest of the file is kept; the first warmup step of a variant compiles).
Peak memory is torch.cuda.max_memory_allocated on CUDA; on the CPU it is not measured, and time
is the process's CPU time with one thread (robust on a machine shared with other jobs).
--quick times only the plain step of each backbone, at small batches, and writes the calibration
--dry-run prefers (estimate.calibrate: the other modes at the shipped JSON's ratios) to the user's cache.
"""
from __future__ import annotations

import argparse
import copy
import dataclasses
import json
import os
import statistics
import sys
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable

import torch
import torch.nn.functional as F
from torch import nn

sys.path[:0] = [str(Path(__file__).resolve().parents[1]), str(Path(__file__).resolve().parent)]

from saflex_cli.augment.base import AugBatch  # noqa: E402
from saflex_cli.compute.runtime import device_description, hardware  # noqa: E402
from saflex_cli.config import OptimConfig, RunConfig, SaflexConfig  # noqa: E402
from saflex_cli.data.batches import CyclingBatches, TensorBatches  # noqa: E402
from saflex_cli.method.objectives import CrossEntropy, weighted_soft_cross_entropy  # noqa: E402
from saflex_cli.models.base import Classifier, ImageNormalize  # noqa: E402
from saflex_cli.registry import AUGMENTERS, BACKBONES  # noqa: E402
from saflex_cli.runs.estimate import calibrate, calibrated_benchmark, default_benchmark, load_benchmark  # noqa: E402
from saflex_cli.training.trainer import EpochStats, Trainer, TrainSetup  # noqa: E402

MODES = {  # name -> (refinement, SAflex settings); exact = Pi through the union the step differentiates
    "plain": ("none", {}),
    "exact": ("saflex", {"pi_mode": "exact", "pi_refresh": 1}),
    "exact-separate": ("saflex", {"pi_mode": "exact"}),  # the union's Pi by its own JVP pass, not the training forward's
    "exact-augmented": ("saflex", {"pi_mode": "exact", "pi_forward": "augmented"}),
    "exact-K10": ("saflex", {"pi_mode": "exact", "pi_refresh": 10}),
    "last-layer": ("saflex", {"pi_mode": "last-layer", "pi_refresh": 1}),
    "last-layer-K10": ("saflex", {"pi_mode": "last-layer", "pi_refresh": 10}),
    "l2rw": ("l2rw", {}),
}
# Batch sizes per device: the recipe's where there is one (MedMNIST 128), small where a CPU must cope.
BATCH = {"resnet18_28": (128, 32), "mlp": (256, 256), "saint": (256, 256), "resnet50_224": (64, 4),
         "clip_vit_b16": (32, 2)}
# --quick on a CPU: a few seconds a step at most (on CUDA it keeps the batches above)
QUICK_CPU_BATCH = {"resnet18_28": 8, "mlp": 256, "saint": 256, "resnet50_224": 1, "clip_vit_b16": 1}


@dataclass
class Bench:
    """A backbone with random weights and a random batch maker, in the shape the trainer takes."""

    model: nn.Module
    objective: object
    batch: Callable[[int, torch.device, torch.Generator], tuple]  # -> (inputs, targets)
    num_classes: Callable[[int], int]  # batch size -> number of classes
    conv: bool = False  # the trainer runs it channels-last on CUDA: measure contiguous beside it


def image_batch(channels: int, size: int, classes: int):
    def make(n, device, gen):
        images = torch.randint(0, 256, (n, channels, size, size), generator=gen, dtype=torch.uint8)
        return images.to(device), torch.randint(0, classes, (n,), generator=gen).to(device)
    return make


def resnet18_28() -> Bench:
    return Bench(BACKBONES.get("resnet18_28")(in_channels=3, num_classes=9), CrossEntropy(),
                 image_batch(3, 28, 9), lambda b: 9, conv=True)


def tabular(model_name: str) -> Callable[[], Bench]:
    """The tabular family's MLP or SAINT, as its recipe builds them, on a Shrutime-shaped table."""
    def build() -> Bench:
        from tabular_overhead import CARDS, N_CONT, synthetic_rows

        from saflex_cli.families.tabular import build_model, defaults

        def make(n, device, gen):
            rows, labels = synthetic_rows(n, gen)
            return rows.to(device), labels.to(device)
        model = build_model(dataclasses.replace(defaults("shrutime"), model=model_name), CARDS, N_CONT, 2)
        return Bench(model, CrossEntropy(), make, lambda b: 2)
    return build


def resnet50_224() -> Bench:
    import torchvision

    body = torchvision.models.resnet50(weights=None)
    body.fc = nn.Identity()
    model = Classifier(body, 2048, 100, ImageNormalize([0.485, 0.456, 0.406], [0.229, 0.224, 0.225]))
    return Bench(model, CrossEntropy(), image_batch(3, 224, 100), lambda b: 100, conv=True)


class ClipPairs(nn.Module):
    """CLIP as a classifier whose classes are the batch's texts: (images, texts) -> (n_img, n_txt)."""

    def __init__(self, clip: nn.Module):
        super().__init__()
        self.clip = clip

    def forward(self, inputs):
        images, texts = inputs
        image = self.clip.encode_image(images, normalize=True)
        text = self.clip.encode_text(texts, normalize=True)
        return self.clip.logit_scale.exp() * image @ text.T


class PairedContrastive(CrossEntropy):
    """FLYP's loss shape (the B texts of a batch are the B proxy classes), for timing only: the
    augmented images share their batch's texts, so the union runs the text tower once."""

    def training_loss(self, model, inputs, targets, aug_inputs=None, aug_labels=None, aug_weights=None):
        images, texts = inputs
        logits = model((torch.cat([images, aug_inputs[0]]), texts))
        clean, augmented = logits[: len(targets)], logits[len(targets):]
        return self.loss(clean, targets) + weighted_soft_cross_entropy(augmented, aug_labels, aug_weights)

    def augmented_logits(self, call, inputs, aug_inputs):
        """The augmented images against the batch's texts, from the union forward training_loss runs."""
        images, texts = inputs
        return call((torch.cat([images, aug_inputs[0]]), texts))[len(images):]


def clip_vit_b16() -> Bench:
    import open_clip

    clip = open_clip.create_model("ViT-B-16", pretrained=None)

    def make(n, device, gen):
        images = torch.randn(n, 3, 224, 224, generator=gen)
        texts = torch.randint(1, clip.vocab_size, (n, clip.context_length), generator=gen)
        return (images.to(device), texts.to(device)), torch.arange(n, device=device)
    return Bench(ClipPairs(clip), PairedContrastive(), make, lambda b: b)


BACKBONE_BUILDERS = {"resnet18_28": resnet18_28, "mlp": tabular("mlp"), "saint": tabular("saint"),
                     "resnet50_224": resnet50_224, "clip_vit_b16": clip_vit_b16}


class Staged:
    """An augmenter that hands back one pre-made augmented batch: the data path costs nothing."""

    def __init__(self, aug: AugBatch):
        self.aug = aug

    def __call__(self, inputs, labels, generator) -> AugBatch:
        return self.aug


class Forever:
    def __init__(self, batch):
        self.batch = batch

    def __next__(self):
        return self.batch


def make_trainer(bench: Bench, model: nn.Module, mode: str, batches, augmenter, val_batches, num_classes: int,
                 device: torch.device, pi_autocast: bool = False, **run_settings) -> Trainer:
    """`run_settings`: RunConfig fields beside the mode's (compile, memory_format)."""
    refine, settings = MODES[mode]
    saflex = SaflexConfig(beta=0.0, tau=0.01, **settings)
    config = RunConfig(family="bench", dataset="random", model="bench", aug="staged", refine=refine, seed=0, epochs=1,
                       optim=OptimConfig(name="adam", lr=1e-4, schedule="constant"), saflex=saflex, **run_settings)
    setup = TrainSetup(model=model, objective=bench.objective, train_batches=batches, val_batches=val_batches,
                       augmenter=augmenter, evaluate=lambda m: {}, num_classes=num_classes)
    trainer = Trainer(setup, config, device)
    if mode == "exact-separate":
        trainer.refiner.step.share_forward = False
    if pi_autocast:
        trainer.refiner.step.pi_precision = trainer.refiner.step.autocast
    return trainer


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def endless(batches):
    while True:
        yield from batches


def measure(factories: dict, device: torch.device, steps: int, warmup: int) -> dict:
    """Seconds per trainer step for each named (trainer factory, batches) pair.

    CUDA: one trainer at a time (so the peak memory is its own), wall-clock over all steps with
    one sync. CPU: all trainers built first and stepped in turn, each step timed by the process's
    CPU time (run with one thread), the median kept: a machine shared with other work then
    inflates no variant more than another.
    """
    results = {}
    if device.type == "cuda":
        for name, (factory, batches) in factories.items():
            try:
                trainer, source, stats = factory(), endless(batches), EpochStats()
                for _ in range(warmup):
                    trainer.train_step(*next(source), stats)
                synchronize(device)
                torch.cuda.reset_peak_memory_stats(device)
                baseline = torch.cuda.memory_allocated(device)
                start = time.perf_counter()
                for _ in range(steps):
                    trainer.train_step(*next(source), stats)
                synchronize(device)
                seconds = (time.perf_counter() - start) / steps
                peak = torch.cuda.max_memory_allocated(device)
                results[name] = {"step_s": seconds, "peak_mib": peak / 2**20,
                                 "above_resident_mib": (peak - baseline) / 2**20}
            except Exception as error:  # a mode this backbone cannot do (last-layer without a head)
                results[name] = {"skipped": f"{type(error).__name__}: {error}"}
            trainer = source = None
            torch.cuda.empty_cache()
        return results
    running = {}
    for name, (factory, batches) in factories.items():
        try:
            trainer, source = factory(), endless(batches)
            for _ in range(warmup):
                trainer.train_step(*next(source), EpochStats())
            running[name] = (trainer, source, [])
        except Exception as error:
            results[name] = {"skipped": f"{type(error).__name__}: {error}"}
    for _ in range(steps):
        for name, (trainer, source, times) in running.items():
            inputs, targets = next(source)
            start = time.process_time()
            trainer.train_step(inputs, targets, EpochStats())
            times.append(time.process_time() - start)
    for name, (_, _, times) in running.items():
        results[name] = {"step_s": statistics.median(times), "peak_mib": None, "above_resident_mib": None}
    return {name: results[name] for name in factories}


def staged_batches(bench: Bench, batch: int, device: torch.device) -> tuple:
    """(the clean batch as a one-batch source, its augmented twin, a validation batch, classes)."""
    gen = torch.Generator().manual_seed(0)
    inputs, targets = bench.batch(batch, device, gen)
    aug_inputs, _ = bench.batch(batch, device, gen)
    val = bench.batch(batch, device, gen)
    classes = bench.num_classes(batch)
    aug = AugBatch(aug_inputs, F.one_hot(torch.randint(0, classes, (batch,), generator=gen), classes).float().to(device))
    return [(inputs, targets)], aug, val, classes


def measure_modes(bench: Bench, batch: int, steps: int, warmup: int, device: torch.device,
                  contiguous: bool = False, modes=tuple(MODES)) -> dict:
    staged, aug, val, classes = staged_batches(bench, batch, device)
    variants = {mode: (mode, False) for mode in modes}
    if device.type == "cuda" and not contiguous and "exact" in modes:
        variants["exact-bf16pi"] = ("exact", True)

    def factory(mode, pi_autocast):
        def build():
            trainer = make_trainer(bench, copy.deepcopy(bench.model), mode, staged, Staged(aug), Forever(val),
                                   classes, device, pi_autocast)
            if contiguous:  # in place: the optimizer keeps the same parameters
                trainer.model.to(memory_format=torch.contiguous_format)
            return trainer
        return build

    return measure({name: (factory(*variant), staged) for name, variant in variants.items()}, device, steps, warmup)


# --compile: eager vs compiled (trainer --compile), and for BatchNorm CNNs each memory format, in one run.
COMPILE_MODES = ("plain", "exact")


def measure_compiled(bench: Bench, batch: int, steps: int, warmup: int, device: torch.device) -> dict:
    """Step times of plain and exact, eager and compiled, per memory format; the first steps compile
    (warmup must be >= 1 so that no timed step includes a compilation)."""
    staged, aug, val, classes = staged_batches(bench, batch, device)
    layouts = ("contiguous", "channels-last") if bench.conv else ("auto",)

    def factory(mode, compiled, layout):
        return lambda: make_trainer(bench, copy.deepcopy(bench.model), mode, staged, Staged(aug), Forever(val),
                                    classes, device, compile=compiled, memory_format=layout)

    factories = {f"{layout}/{'compiled' if compiled else 'eager'}/{mode}": (factory(mode, compiled, layout), staged)
                 for layout in layouts for compiled in (False, True) for mode in COMPILE_MODES}
    timings = measure(factories, device, steps, warmup)
    out = {}
    for variant in sorted({name.rsplit("/", 1)[0] for name in factories}):
        plain, exact = timings[f"{variant}/plain"], timings[f"{variant}/exact"]
        out[variant] = {"plain_step_s": plain.get("step_s"), "exact_step_s": exact.get("step_s"),
                        "exact_over_plain": exact["step_s"] / plain["step_s"] if "step_s" in exact and "step_s" in plain
                        else None, **({"skipped": plain.get("skipped") or exact.get("skipped")}
                                      if "step_s" not in plain or "step_s" not in exact else {})}
    base = out[f"{layouts[0]}/eager"]
    for entry in out.values():  # what each variant buys over today's default (eager, first layout)
        if entry.get("plain_step_s") and base.get("plain_step_s"):
            entry["plain_speedup"] = base["plain_step_s"] / entry["plain_step_s"]
            entry["exact_speedup"] = base["exact_step_s"] / entry["exact_step_s"]
    return out


def print_compiled(name: str, batch: int, results: dict) -> None:
    print(f"\n{name}  (batch {batch}): step time, exact/plain, speed-up over {next(iter(results))}")
    for variant, entry in results.items():
        if entry.get("skipped"):
            print(f"  {variant:<26} skipped: {entry['skipped'][:100]}")
            continue
        print(f"  {variant:<26} plain {entry['plain_step_s'] * 1000:9.1f} ms  exact {entry['exact_step_s'] * 1000:9.1f} ms"
              f"  x{entry['exact_over_plain']:.2f}  speed-up plain {entry['plain_speedup']:.2f} exact {entry['exact_speedup']:.2f}")


def ratios(results: dict) -> dict:
    plain = results.get("plain", {})
    out = {}
    for name, result in results.items():
        if name == "plain" or "step_s" not in result or "step_s" not in plain:
            continue
        entry = {"time": result["step_s"] / plain["step_s"]}
        if name != "exact" and "step_s" in results.get("exact", {}):
            entry["time_over_exact"] = result["step_s"] / results["exact"]["step_s"]
        if result.get("peak_mib") and plain.get("peak_mib"):
            entry["peak_memory"] = result["peak_mib"] / plain["peak_mib"]
            entry["above_resident_memory"] = result["above_resident_mib"] / plain["above_resident_mib"]
        out[name] = entry
    return out


def data_path(batch: int, steps: int, warmup: int, device: torch.device) -> dict:
    """Trainer steps on ResNet-18 (28) fed by the real pipeline vs. on a pre-staged batch."""
    bench = resnet18_28()
    gen = torch.Generator().manual_seed(1)
    images, labels = bench.batch(batch * 8, device, gen)
    val = bench.batch(batch, device, gen)
    first = (images[:batch], labels[:batch])
    factories = {}
    for aug_name in ("randaug", "mixup"):
        augmenter = AUGMENTERS.get(aug_name)()
        made = augmenter(first[0], F.one_hot(first[1], 9).float(), torch.Generator(device=device).manual_seed(0))
        for mode in ("plain", "exact"):
            pipeline = TensorBatches(images, labels, batch, seed=0)

            def fed(mode=mode, pipeline=pipeline, augmenter=augmenter):
                return make_trainer(bench, copy.deepcopy(bench.model).to(device), mode, pipeline, augmenter,
                                    CyclingBatches(TensorBatches(*val, batch, seed=2)), 9, device)

            def staged(mode=mode, made=made):
                return make_trainer(bench, copy.deepcopy(bench.model).to(device), mode, [first], Staged(made),
                                    Forever(val), 9, device)
            factories[f"{aug_name}/{mode}/pipeline"] = (fed, pipeline)
            factories[f"{aug_name}/{mode}/staged"] = (staged, [first])
    timings = measure(factories, device, steps, warmup)
    out = {}
    for key in {name.rsplit("/", 1)[0] for name in factories}:
        fed, staged = timings[f"{key}/pipeline"], timings[f"{key}/staged"]
        if "step_s" not in fed or "step_s" not in staged:
            out[key] = {"skipped": fed.get("skipped") or staged.get("skipped")}
            continue
        out[key] = {"pipeline_step_s": fed["step_s"], "staged_step_s": staged["step_s"],
                    "staged_over_pipeline": staged["step_s"] / fed["step_s"], "images_per_s": batch / fed["step_s"]}
    return dict(sorted(out.items()))


def print_table(name: str, entry: dict) -> None:
    print(f"\n{name}  (batch {entry['batch_size']})")
    for mode, result in entry["modes"].items():
        if "skipped" in result:
            print(f"  {mode:<16} skipped: {result['skipped'][:100]}")
            continue
        ratio = entry["ratios"].get(mode, {})
        memory = f"peak {result['peak_mib']:.0f} MiB" if result["peak_mib"] is not None else "memory not measured (CPU)"
        text = f"  {mode:<16} {result['step_s'] * 1000:9.1f} ms/step  {memory}"
        if ratio:
            text += f"  x{ratio['time']:.2f} time"
            if "time_over_exact" in ratio:
                text += f" (x{ratio['time_over_exact']:.2f} of exact)"
            if "peak_memory" in ratio:
                text += f"  x{ratio['peak_memory']:.2f} peak mem  x{ratio['above_resident_memory']:.2f} above resident"
        print(text)


def save(report: dict, out: Path) -> None:
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(report, indent=1))
    os.replace(tmp, out)


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--steps", type=int, default=None, help="timed steps per mode (default 20, --quick 2)")
    parser.add_argument("--warmup", type=int, default=None, help="untimed steps per mode first (default 3, --quick 1)")
    parser.add_argument("--batch-size", type=int, default=None, help="one batch size for every backbone")
    parser.add_argument("--backbones", default=",".join(BACKBONE_BUILDERS))
    parser.add_argument("--no-data-path", action="store_true", help="skip the data-path measurement")
    parser.add_argument("--threads", type=int, default=1, help="CPU threads; CPU time per step is measured, so keep 1")
    parser.add_argument("--quick", action="store_true",
                        help="plain steps only, small batches, no data path: this machine's calibration for --dry-run")
    parser.add_argument("--compile", action="store_true",
                        help="measure eager vs compiled (--compile) plain and exact steps, each memory format for "
                             "BatchNorm CNNs, and add them to the JSON under compile/<threads> (the rest is kept)")
    parser.add_argument("--out", type=Path, default=None, help="JSON path (default saflex_cli/resources/benchmarks/"
                        "overhead-<device>.json, or with --quick ~/.cache/saflex/benchmarks/overhead-<device>.json, "
                        "which --dry-run prefers)")
    args = parser.parse_args(argv)
    args.steps = args.steps or (2 if args.quick else 20)
    args.warmup = args.warmup if args.warmup is not None else (1 if args.quick else 3)
    torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True
    column = 0 if device.type == "cuda" else 1
    clock = "wall-clock" if device.type == "cuda" else f"process CPU time, {args.threads} thread(s)"
    report = {"device": device_description(device), "hardware": hardware(device), "torch": torch.__version__,
              "clock": clock, "when": datetime.now(timezone.utc).isoformat(timespec="seconds"),
              "steps": args.steps, "warmup": args.warmup, "backbones": {}}
    print(f"SAflex step overhead on {report['device']} (torch {torch.__version__}; {clock})")
    out = args.out or (calibrated_benchmark if args.quick else default_benchmark)(device.type)
    reference = default_benchmark(device.type)

    def finish(report: dict) -> dict:  # --quick: the modes not timed here at the shipped JSON's ratios
        return calibrate(report, load_benchmark(reference), reference) if args.quick else report

    if args.compile:
        return compile_report(args, device, column, clock, out)
    if not (args.no_data_path or args.quick):  # first, and saved at once: the JSON keeps what finished if cut short
        batch = args.batch_size or BATCH["resnet18_28"][column]
        report["data_path"] = {"backbone": "resnet18_28", "batch_size": batch,
                               **data_path(batch, args.steps, args.warmup, device)}
        print(f"\ndata path, ResNet-18 (28), batch {batch}: staged step / pipeline step (target >= 0.9), images/s")
        for key, value in report["data_path"].items():
            if isinstance(value, dict) and "skipped" in value:
                print(f"  {key:<16} skipped: {value['skipped'][:100]}")
            elif isinstance(value, dict):
                print(f"  {key:<16} {value['staged_over_pipeline']:.2f}   {value['images_per_s']:8.0f} images/s")
        save(report, out)
    for name in [n.strip() for n in args.backbones.split(",") if n.strip()]:
        if name not in BACKBONE_BUILDERS:
            parser.error(f"unknown backbone {name!r}; choose from {', '.join(BACKBONE_BUILDERS)}")
        try:
            bench = BACKBONE_BUILDERS[name]()
        except ImportError as error:
            print(f"\n{name}: skipped, {error}")
            report["backbones"][name] = {"skipped": str(error)}
            continue
        batch = args.batch_size or (QUICK_CPU_BATCH[name] if args.quick and column else BATCH[name][column])
        torch.manual_seed(0)
        timed = ("plain",) if args.quick else tuple(MODES)
        modes = measure_modes(bench, batch, args.steps, args.warmup, device, modes=timed)
        entry = {"batch_size": batch, "modes": modes, "ratios": ratios(modes)}
        print_table(name, entry)
        if device.type == "cuda" and bench.conv and not args.quick:
            nchw = measure_modes(bench, batch, args.steps, args.warmup, device, contiguous=True)
            entry["contiguous"] = {"modes": nchw, "ratios": ratios(nchw)}
            print_table(f"{name} contiguous (NCHW)", {"batch_size": batch, **entry["contiguous"]})
        report["backbones"][name] = entry
        save(finish(report), out)
    print(f"\nwrote {out}")
    return finish(report)


def compile_report(args, device: torch.device, column: int, clock: str, out: Path) -> dict:
    """--compile: every backbone's compiled block, merged into the JSON at `out` (saved per backbone)."""
    report = json.loads(out.read_text()) if out.exists() else {"device": device_description(device), "backbones": {}}
    block = {"device": device_description(device), "hardware": hardware(device), "torch": torch.__version__, "clock": clock,
             "when": datetime.now(timezone.utc).isoformat(timespec="seconds"), "steps": args.steps,
             "warmup": max(1, args.warmup), "backbones": {}}
    report.setdefault("compile", {})[f"{args.threads} thread(s)"] = block
    for name in [n.strip() for n in args.backbones.split(",") if n.strip()]:
        bench = BACKBONE_BUILDERS[name]()
        batch = args.batch_size or BATCH[name][column]
        torch.manual_seed(0)
        block["backbones"][name] = {"batch_size": batch, **measure_compiled(bench, batch, args.steps,
                                                                              block["warmup"], device)}
        print_compiled(name, batch, {k: v for k, v in block["backbones"][name].items() if k != "batch_size"})
        save(report, out)
    print(f"\nwrote {out}")
    return report


if __name__ == "__main__":
    main()
