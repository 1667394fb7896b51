"""The fast paths around the SAflex step: batched augmenters, the trainer's use of the Pi modes,
and the --dry-run cost estimate."""
from __future__ import annotations

import dataclasses
import json
import math
import sys

import pytest
import scipy.stats
import torch
from typer.testing import CliRunner

from saflex_cli.augment.mixup import Mixup, standard_gamma
from saflex_cli.cli import app
from saflex_cli.cli.common import build_configs
from saflex_cli.runs.estimate import estimate_grid
from saflex_cli.runs.grid import run_grid
from saflex_cli.settings import expand, parse_assignment
from saflex_cli.store.records import read_record, record_path

torch.set_num_threads(2)


@pytest.mark.parametrize("shape", [0.2, 1.0, 2.5])
def test_device_gamma_draws_follow_the_gamma_law(shape):
    draws = standard_gamma(shape, 20000, torch.Generator().manual_seed(0)).double().numpy()
    assert scipy.stats.kstest(draws, scipy.stats.gamma(shape).cdf).pvalue > 1e-3


def test_mixup_coefficients_are_per_sample_beta_and_labels_follow_them():
    labels = torch.eye(3)[torch.arange(2000) % 3]
    inputs = torch.arange(2000, dtype=torch.float32)[:, None]
    aug = Mixup(alpha=0.5)(inputs, labels, torch.Generator().manual_seed(1))
    lam = aug.meta["mixing_coefficient"].double().numpy()
    assert scipy.stats.kstest(lam, scipy.stats.beta(0.5, 0.5).cdf).pvalue > 1e-3
    partner_value = (aug.inputs[:, 0] - aug.meta["mixing_coefficient"] * inputs[:, 0]) / (1 - aug.meta["mixing_coefficient"])
    usable = (1 - aug.meta["mixing_coefficient"]) > 0.05
    partner = partner_value[usable].round().long()
    expected = aug.meta["mixing_coefficient"][usable, None] * labels[usable] + \
        (1 - aug.meta["mixing_coefficient"][usable, None]) * labels[partner]
    torch.testing.assert_close(aug.labels[usable], expected, atol=1e-3, rtol=0)


def test_trainer_runs_the_fast_mode_and_records_it(tmp_path):
    configs = expand(build_configs("demo", "digits", "label-shift", True, "0", train={"epochs": 1}),
                     [parse_assignment("saflex.pi_mode=last-layer"), parse_assignment("saflex.pi_refresh=3")])
    run_grid(configs, tmp_path, device="cpu", quiet=True)
    record = read_record(record_path(tmp_path, configs[0]))
    assert record["config"]["saflex"]["pi_mode"] == "last-layer"
    assert record["config"]["saflex"]["pi_refresh"] == 3
    stats = record["epochs"][0]["saflex"]
    assert 0.0 <= stats["kept_fraction"] <= 1.0 and "label_recovery" in stats
    exact = dataclasses.replace(configs[0], saflex=dataclasses.replace(configs[0].saflex, pi_mode="exact"))
    assert exact.identity() != configs[0].identity()


def bench_json(path, plain=0.1, exact=0.25, batch=64):
    path.write_text(json.dumps({"device": "test device", "backbones": {"resnet18_28": {
        "batch_size": batch, "modes": {"plain": {"step_s": plain}, "exact": {"step_s": exact}}}}}))
    return path


def test_estimate_is_epochs_times_steps_times_the_scaled_step_time(tmp_path):
    benchmark = json.loads(bench_json(tmp_path / "b.json").read_text())
    plain, saflex = (build_configs("medmnist", "pathmnist", "randaug", on, "0", train={"epochs": 3}) for on in (False, True))
    estimate = estimate_grid(plain + saflex, benchmark)
    steps = math.ceil(89996 / 128)  # pathmnist's training split, batch 128
    assert estimate.hours[plain[0].run_name] == pytest.approx(3 * steps * 0.1 * 128 / 64 / 3600)
    assert estimate.hours[saflex[0].run_name] / estimate.hours[plain[0].run_name] == pytest.approx(2.5)
    fast = expand(build_configs("medmnist", "pathmnist", "randaug", True, "0", train={"epochs": 3}),
                  [parse_assignment("saflex.pi_mode=last-layer")])
    assert "no measured last-layer step" in estimate_grid(fast, benchmark).missing[fast[0].run_name]


def test_dry_run_prints_the_device_hours(tmp_path):
    path = bench_json(tmp_path / "b.json")
    result = CliRunner().invoke(app, ["medmnist", "--dataset", "pathmnist,dermamnist", "--aug", "randaug",
                                      "--saflex", "--seeds", "0,1", "--dry-run", "--throughput", str(path),
                                      "--out", str(tmp_path / "out"), "--pi-refresh", "10"])
    assert result.exit_code == 0, result.output
    assert "device-hours for 4 of the 4 run(s)" in result.output.replace("\n", " ")
    assert "exact-K10 was not measured" in result.output.replace("\n", " ")


HERE = {"cpu_model": "AMD EPYC (family 25 model 17)", "cpu_capability": "AVX2"}


def test_a_benchmark_from_another_cpu_kind_is_named_and_one_from_this_kind_is_not():
    from saflex_cli.runs.estimate import other_machine
    assert other_machine({"device": "cpu", "hardware": {**HERE, "threads": 1}}, HERE) is None
    other = {"device": "cpu", "hardware": {**HERE, "cpu_capability": "AVX512", "threads": 1}}
    assert other_machine(other, HERE) == ("measured on AMD EPYC (family 25 model 17), AVX512, not on this "
                                          "machine's AMD EPYC (family 25 model 17), AVX2")
    assert other_machine({"device": "cpu: x86_64, 1 threads"}, HERE) == \
        "measured on cpu: x86_64, 1 threads, model not recorded, not on this machine's AMD EPYC (family 25 model 17), AVX2"


def test_calibration_keeps_the_measured_plain_step_and_scales_every_other_mode_by_the_reference_ratio(tmp_path):
    from saflex_cli.runs.estimate import calibrate
    reference = {"device": "cpu: fast", "backbones": {"resnet18_28": {"batch_size": 32, "modes": {
        "plain": {"step_s": 1.0}, "exact": {"step_s": 2.5}, "l2rw": {"step_s": 4.0}, "last-layer": {"skipped": "x"}}}}}
    measured = {"device": "cpu: slow", "hardware": HERE, "backbones": {
        "resnet18_28": {"batch_size": 8, "modes": {"plain": {"step_s": 0.75}}},
        "saint": {"batch_size": 256, "modes": {"plain": {"step_s": 0.5}}}}}  # not in the reference: kept as timed
    calibrated = calibrate(measured, reference, tmp_path / "ref.json")
    modes = calibrated["backbones"]["resnet18_28"]["modes"]
    assert modes["plain"] == {"step_s": 0.75} and set(modes) == {"plain", "exact", "l2rw"}
    assert modes["exact"]["step_s"] == 0.75 * 2.5 and modes["l2rw"]["step_s"] == 0.75 * 4.0
    assert calibrated["backbones"]["saint"] == measured["backbones"]["saint"]
    assert calibrated["hardware"] == HERE and calibrated["calibration"]["reference_device"] == "cpu: fast"
    saflex = build_configs("medmnist", "breastmnist", "randaug", True, "0", train={"epochs": 2})
    steps = math.ceil(546 / 128)  # breastmnist's training split, batch 128
    assert estimate_grid(saflex, calibrated).hours[saflex[0].run_name] == pytest.approx(
        2 * steps * 0.75 * 2.5 / 8 * 128 / 3600)


def dry_run(tmp_path, *extra):
    result = CliRunner().invoke(app, ["medmnist", "--dataset", "breastmnist", "--aug", "none", "--seeds", "0",
                                      "--device", "cpu", "--out", str(tmp_path / "out"), "--dry-run", *extra])
    assert result.exit_code == 0, result.output
    return " ".join(result.output.split())


def test_dry_run_prefers_this_machines_calibration_and_names_a_benchmark_from_another_cpu(tmp_path, monkeypatch):
    from saflex_cli.compute import runtime
    from saflex_cli.runs.estimate import calibrated_benchmark
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.setattr(runtime, "machine_kind", lambda device: HERE)
    shipped = dry_run(tmp_path)  # the package's JSON names no CPU model
    assert "saflex_cli/resources/benchmarks/overhead-cpu.json" in shipped
    assert "measured on cpu: x86_64, 1 threads, model not recorded, not on this machine's AMD EPYC" in shipped
    assert "benchmarks/overhead.py --device cpu --quick" in shipped
    path = calibrated_benchmark("cpu")
    assert path == tmp_path / "cache" / "saflex" / "benchmarks" / "overhead-cpu.json"
    path.parent.mkdir(parents=True)
    bench_json(path)
    path.write_text(json.dumps({**json.loads(path.read_text()), "hardware": {**HERE, "threads": 1},
                                "calibration": {"reference_device": "cpu: x86_64, 1 threads"}}))
    calibrated = dry_run(tmp_path)
    assert f"from{path}" in calibrated.replace(" ", "") and "not on this machine" not in calibrated  # rich wraps long paths
    assert "plain steps measured on this machine, the other modes at their ratios on cpu: x86_64" in calibrated
    steps = math.ceil(546 / 128)
    assert f"estimated {100 * steps * 0.1 / 64 * (128 * 0.5) / 3600:.2f} device-hours" in calibrated  # No Aug: 128 clean


def test_every_method_is_priced_from_the_shipped_cpu_benchmark():
    """--dry-run finds each refiner's step (l2rw its own mode, soft-aug the plain step) for MedMNIST."""
    from saflex_cli.runs.estimate import default_benchmark, load_benchmark, step_mode
    from saflex_cli.registry import REFINERS

    configs = build_configs("medmnist", "pathmnist", "crop", False, "0", refine=",".join(REFINERS.names()), train={})
    estimate = estimate_grid(configs, load_benchmark(default_benchmark("cpu")))
    assert not estimate.missing and len(estimate.hours) == len(REFINERS.names())
    hours = {config.refine: estimate.hours[config.run_name] for config in configs}
    assert {step_mode(config) for config in configs} == {"plain", "exact", "l2rw"}
    assert hours["soft-aug"] == hours["none"] < hours["saflex"] and hours["none"] < hours["l2rw"]


def overhead_script(monkeypatch):
    import importlib.util
    from pathlib import Path

    spec = importlib.util.spec_from_file_location("overhead", Path(__file__).parents[1] / "benchmarks" / "overhead.py")
    overhead = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, "overhead", overhead)  # dataclasses look their module up there
    spec.loader.exec_module(overhead)
    return overhead


def test_overhead_benchmark_writes_every_mode_and_ratio(tmp_path, monkeypatch):
    """A tiny CPU run of benchmarks/overhead.py, so the GPU run meets no broken code."""
    from saflex_cli.compute.runtime import machine_kind

    overhead = overhead_script(monkeypatch)
    out = tmp_path / "bench.json"
    report = overhead.main(["--device", "cpu", "--backbones", "mlp,saint", "--batch-size", "2", "--steps", "1",
                            "--warmup", "1", "--threads", "2", "--no-data-path", "--out", str(out)])
    assert json.loads(out.read_text()) == report
    assert report["hardware"] == {**machine_kind(torch.device("cpu")), "threads": 2}  # the JSON names the CPU
    for name in ("mlp", "saint"):  # the tabular family's own models
        entry = report["backbones"][name]
        assert set(entry["modes"]) == set(overhead.MODES) and set(entry["ratios"]) == set(overhead.MODES) - {"plain"}
        assert all(r["time"] > 0 for r in entry["ratios"].values())


def test_quick_calibration_times_the_plain_step_and_writes_this_machines_json_to_the_cache(tmp_path, monkeypatch):
    from saflex_cli.runs.estimate import calibrated_benchmark, default_benchmark, load_benchmark
    from saflex_cli.compute.runtime import machine_kind

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    report = overhead_script(monkeypatch).main(["--device", "cpu", "--backbones", "mlp", "--quick"])
    assert json.loads(calibrated_benchmark("cpu").read_text()) == report
    assert report["steps"] == 2 and report["hardware"] == {**machine_kind(torch.device("cpu")), "threads": 1}
    reference = load_benchmark(default_benchmark("cpu"))["backbones"]["mlp"]["modes"]
    modes = report["backbones"]["mlp"]["modes"]
    assert set(modes) == set(reference) and "ratio_from_reference" not in modes["plain"]
    assert modes["exact"]["step_s"] == modes["plain"]["step_s"] * reference["exact"]["step_s"] / reference["plain"]["step_s"]


def test_every_family_is_priced_from_the_backbone_that_stands_in_for_its_model():
    step = {"plain": {"step_s": 0.1}, "exact": {"step_s": 0.3}}
    benchmark = {"backbones": {name: {"batch_size": 64, "modes": step}
                               for name in ("mlp", "clip_vit_b16", "resnet50_224")}}
    tabular = build_configs("tabular", "qsar", "cutmix", True, "0", train={"model": "mlp"})
    diffusion = build_configs("diffusion", "cub", "randaug", True, "0", train={})
    flyp, zero_shot = (build_configs("flyp", "iwildcam", aug, False, "0", train={"epochs": epochs},
                                     options={"method": method})
                       for aug, method, epochs in (("randaug", "flyp", None), ("none", "zeroshot", 0)))
    saint = build_configs("tabular", "qsar", "cutmix", True, "0", train={"model": "saint"})
    estimate = estimate_grid(tabular + diffusion + flyp + zero_shot + saint, benchmark)
    per_sample = 0.3 / 64
    qsar = tabular[0]  # 1055 rows, 65% for training
    assert estimate.hours[qsar.run_name] == pytest.approx(
        qsar.epochs * math.ceil(round(1055 * 0.65) / qsar.batch_size) * per_sample * qsar.batch_size / 3600)
    cub = diffusion[0]  # ALIA's 4,994 train images less the 10% validation carve-out
    assert estimate.hours[cub.run_name] == pytest.approx(
        cub.epochs * math.ceil(round(4994 * 0.9) / cub.batch_size) * per_sample * cub.batch_size / 3600)
    wilds = flyp[0]  # plain step, 129,809 WILDS train images
    assert estimate.hours[wilds.run_name] == pytest.approx(
        wilds.epochs * math.ceil(129809 / wilds.batch_size) * 0.1 / 64 * wilds.batch_size / 3600)
    assert estimate.hours[zero_shot[0].run_name] == 0.0
    assert "no measured exact step for backbone 'saint'" in estimate.missing[saint[0].run_name]


def test_a_saint_step_is_priced_by_the_tables_width_and_an_mlp_step_is_not():
    """SAINT's cost grows with its feature tokens: on Arrhythmia (226 features in Table 5) its step is
    priced 22.6 times the benchmark's 10-feature one; the MLP's is the benchmark's."""
    benchmark = {"backbones": {name: {"batch_size": 64, "modes": {"plain": {"step_s": 0.1}, "exact": {"step_s": 0.3}}}
                               for name in ("mlp", "saint")}}
    configs = [config for model in ("mlp", "saint")
               for config in build_configs("tabular", "arrhythmia", "cutmix", True, "0", train={"model": model})]
    estimate = estimate_grid(configs, benchmark)
    for config, scale in zip(configs, (1.0, 226 / 10)):
        steps = math.ceil(round(452 * 0.65) / config.batch_size)
        assert estimate.hours[config.run_name] == pytest.approx(
            config.epochs * steps * 0.3 / 64 * config.batch_size * scale / 3600)
    assert any("saint steps on arrhythmia scaled ×22.6" in note for note in estimate.notes)
