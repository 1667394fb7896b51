"""What a grid will cost before it starts: device-hours from measured step times.

The step times come from a `benchmarks/overhead.py` JSON (plain step, exact SAflex step and each
fast mode, per backbone, at one batch size). A run's cost is its epochs x steps per epoch x the
step time of its method, scaled linearly from the benchmark's batch size to the run's (a run
without augmentation trains on the clean half of the union only) and by the family's
step_cost_scale (SAINT on a table wider than the benchmark's). Training steps only: the
per-epoch evaluation and the data loading of on-disk datasets are not counted.

The measured JSONs ship with the package (saflex_cli/resources/benchmarks/, where
benchmarks/overhead.py writes them), so the estimate works from any directory and any install.
They hold for the machine kind they name: the same step took 3.1× longer on another CPU of this
project's declared kind. `benchmarks/overhead.py --quick` times this machine's plain steps in
under a minute and writes a calibrated JSON to the user's cache, which the estimate then prefers.
"""
from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

from ..config import RunConfig
from ..errors import SaflexError
from ..registry import FAMILIES

# A run's model -> the benchmark backbone that stands in for it (the same network at the same
# input size; random weights do not change a step's time). Models not here are looked up by name.
STAND_INS = {"ViT-B-16-quickgelu": "clip_vit_b16", "ViT-B-16": "clip_vit_b16", "resnet50": "resnet50_224"}


def default_benchmark(device_type: str) -> Path:
    """The shipped benchmark of a device type (cpu, cuda); a file system path, as pip installs unpacked."""
    return Path(str(resources.files("saflex_cli") / "resources" / "benchmarks" / f"overhead-{device_type}.json"))


def calibrated_benchmark(device_type: str) -> Path:
    """Where `benchmarks/overhead.py --quick` writes this machine's JSON: the user's cache, not the
    package (one install can serve machines of several kinds)."""
    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return cache / "saflex" / "benchmarks" / f"overhead-{device_type}.json"


def pricing_benchmark(device_type: str) -> Path:
    """The JSON --dry-run prices from without --throughput: this machine's calibration where one was
    written, else the package's."""
    calibrated = calibrated_benchmark(device_type)
    return calibrated if calibrated.exists() else default_benchmark(device_type)


def other_machine(benchmark: dict, here: dict[str, str]) -> str | None:
    """What the benchmark was measured on, where that is not this machine's kind (runtime.machine_kind);
    None where it is. A JSON written before machines were named names none."""
    measured = benchmark.get("hardware", {})
    theirs = {key: measured.get(key) for key in here}
    if theirs == here:
        return None
    named = ", ".join(value for value in theirs.values() if value) or f"{benchmark.get('device')}, model not recorded"
    return f"measured on {named}, not on this machine's {', '.join(here.values())}"


def calibrate(measured: dict, reference: dict, reference_path: Path) -> dict:
    """This machine's benchmark from a quick run that timed each backbone's plain step alone: every
    other mode at the reference's ratio to its own plain step (those ratios moved by under 10 %
    between two CPU kinds whose plain steps differ 3×; docs/performance.md)."""
    backbones = {}
    for name, entry in measured["backbones"].items():
        plain = entry.get("modes", {}).get("plain", {}).get("step_s")
        reference_modes = reference["backbones"].get(name, {}).get("modes", {})
        reference_plain = reference_modes.get("plain", {}).get("step_s")
        if plain is None or reference_plain is None:
            backbones[name] = entry
            continue
        modes = {mode: {"step_s": plain * result["step_s"] / reference_plain, "ratio_from_reference": True}
                 for mode, result in reference_modes.items() if "step_s" in result}
        backbones[name] = {**entry, "modes": {**modes, "plain": entry["modes"]["plain"]}}
    return {**measured, "backbones": backbones,
            "calibration": {"measured": "plain", "reference": str(reference_path),
                            "reference_device": reference["device"]}}


def load_benchmark(path: Path) -> dict:
    try:
        data = json.loads(Path(path).read_text())
    except (OSError, ValueError) as error:
        raise SaflexError(f"cannot read the benchmark JSON {path} ({error}); run `python benchmarks/overhead.py` "
                          f"to write one, or leave --throughput out") from None
    if "backbones" not in data:
        raise SaflexError(f"{path} is not a benchmarks/overhead.py result (no 'backbones'); pass that file")
    return data


def step_mode(config: RunConfig) -> str:
    """The benchmark's name for a run's step: plain, exact, last-layer, or either with -K<refresh>."""
    if config.refine == "l2rw":
        return "l2rw"
    if not config.uses_saflex:
        return "plain"
    refresh = config.saflex.pi_refresh
    return config.saflex.pi_mode + (f"-K{refresh}" if refresh > 1 else "")


@dataclass
class GridEstimate:
    hours: dict[str, float] = field(default_factory=dict)  # run name -> device-hours
    missing: dict[str, str] = field(default_factory=dict)  # run name -> why there is no estimate
    notes: set[str] = field(default_factory=set)

    @property
    def total(self) -> float:
        return sum(self.hours.values())


def run_hours(config: RunConfig, benchmark: dict, estimate: GridEstimate) -> None:
    recipe = FAMILIES.get(config.family)
    size = recipe.train_size(config) if recipe.train_size else None
    if size is None:
        estimate.missing[config.run_name] = f"no training-set size known for {config.family} {config.dataset!r}"
        return
    if config.epochs == 0:  # zero-shot: evaluation only
        estimate.hours[config.run_name] = 0.0
        return
    backbone = STAND_INS.get(config.model, config.model)
    entry = benchmark["backbones"].get(backbone, {})
    modes = entry.get("modes", {})
    mode = step_mode(config)
    if mode not in modes and mode.startswith(config.saflex.pi_mode + "-K"):
        estimate.notes.add(f"{mode} was not measured: {config.saflex.pi_mode} (refresh 1) used, an upper bound")
        mode = config.saflex.pi_mode
    if "step_s" not in modes.get(mode, {}):
        estimate.missing[config.run_name] = f"no measured {mode} step for backbone {backbone!r}"
        return
    per_sample = modes[mode]["step_s"] / entry["batch_size"]
    step_s = per_sample * config.batch_size * (0.5 if config.aug == "none" else 1.0)
    scale = recipe.step_cost_scale(config) if recipe.step_cost_scale else 1.0
    if scale != 1.0:
        estimate.notes.add(f"{config.model} steps on {config.dataset} scaled ×{scale:.1f} from the benchmark's "
                           f"table width: a lower bound")
    step_s *= scale
    steps = math.ceil(size / config.batch_size)
    estimate.hours[config.run_name] = config.epochs * steps * step_s / 3600


def estimate_grid(configs: list[RunConfig], benchmark: dict) -> GridEstimate:
    estimate = GridEstimate()
    for config in configs:
        run_hours(config, benchmark, estimate)
    return estimate
