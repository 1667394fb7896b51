"""--compile: the compiled step computes what the eager step does, resumes like it, and is its own identity.

torch.compile on the CPU takes seconds to tens of seconds per graph, so each test compiles a tiny
model once. Numbers are compared in float64 (the models' parameters and inputs), where compiled
and eager kernels differ by rounding far below the tolerances, whatever the CPU.
"""
from __future__ import annotations

import copy
import dataclasses
import io
import json
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from typer.testing import CliRunner

from conftest import TinyCNN
from reliability_helpers import demo_config, one_thread
from saflex_cli.cli import app
from saflex_cli.compute.compiled import compile_model
from saflex_cli.compute.runtime import memory_format, memory_format_name, seed_everything
from saflex_cli.config import RunConfig
from saflex_cli.errors import SaflexError
from saflex_cli.method.core import SaflexStep
from saflex_cli.method.objectives import CrossEntropy
from saflex_cli.registry import BACKBONES, FAMILIES
from saflex_cli.training.trainer import Trainer

CPU = torch.device("cpu")
REPO = Path(__file__).resolve().parents[1]


class Forever:
    def __init__(self, batch):
        self.batch = batch

    def __next__(self):
        return self.batch


def one_step(model, compiled: bool, batches, network_mode=None):
    """A SAflex step as the trainer takes it on the CPU: eager with Pi from the shared union forward,
    or compiled with Pi by its own compiled JVP. Returns what the step decided and changed."""
    x, y, x_aug, y_aug, val = batches
    step = SaflexStep(CrossEntropy(), beta=0.0, tau=0.01, share_forward=not compiled, compile=compiled,
                      network_mode=network_mode)
    if compiled:
        compile_model(model)
    loss, refined = step.training_loss(model, x, y, x_aug, y_aug, Forever(val), torch.Generator().manual_seed(0))
    loss.backward()
    return {"loss": loss.detach(), "pi": refined.pi, "labels": refined.labels, "weights": refined.weights,
            **{f"grad {n}": p.grad for n, p in model.named_parameters()},
            **{f"buffer {n}": b.clone() for n, b in model.state_dict().items()}}


def assert_same_step(model, batches, network_mode=None):
    eager = one_step(copy.deepcopy(model), False, batches, network_mode)
    compiled = one_step(copy.deepcopy(model), True, batches, network_mode)
    assert eager["pi"].abs().max() > 1e-2 and 0 < eager["weights"].count_nonzero() < len(eager["weights"])
    assert torch.equal(compiled["weights"], eager["weights"])  # float64 Pi: no decision near the rounding
    for name, value in eager.items():
        torch.testing.assert_close(compiled[name], value, rtol=1e-6, atol=1e-9, msg=name)


def image_batches(n=12, classes=4):
    gen = torch.Generator().manual_seed(1)
    images = lambda: torch.randn(n, 3, 8, 8, generator=gen, dtype=torch.float64)  # noqa: E731
    labels = lambda: torch.randint(0, classes, (n,), generator=gen)  # noqa: E731
    return images(), labels(), images(), F.one_hot(labels(), classes).double(), (images(), labels())


@pytest.mark.slow
def test_compiled_step_equals_eager_on_a_batchnorm_cnn_in_training_mode():
    """Pi through the clean + augmented union, BatchNorm normalising with the batch's statistics and
    updating its running ones once: labels, weights, loss, gradients and buffers as in eager mode."""
    torch.manual_seed(0)
    assert_same_step(TinyCNN(num_classes=4).double().train(), image_batches())


@pytest.mark.slow
@pytest.mark.parametrize("name", ["tabular_mlp", "saint"])
def test_compiled_step_equals_eager_on_the_tabular_models(name):
    from test_tabular_models import CARDS, K, table_batch, tiny_saint

    torch.manual_seed(0)
    model = tiny_saint() if name == "saint" else BACKBONES.get(name)(CARDS, 3, K, batchnorm=True)
    gen = torch.Generator().manual_seed(3)
    labels = lambda n: torch.randint(0, K, (n,), generator=gen)  # noqa: E731
    batches = (table_batch(16, 1).double(), labels(16), table_batch(16, 2).double(),
               F.one_hot(labels(16), K).double(), (table_batch(16, 3).double(), labels(16)))
    # eval: dropout off (compiled and eager dropout draw different masks); BatchNorm uses running stats
    assert_same_step(model.double().eval(), batches, network_mode="eval")


@pytest.mark.slow
def test_a_compiled_run_resumes_from_its_checkpoint_like_an_eager_one():
    config = demo_config(epochs=2, compile=True)
    saved = []

    def trainer(seed):
        seed_everything(seed)
        return Trainer(FAMILIES.get("demo").build(config, CPU), config, CPU)

    with one_thread():
        reference = trainer(config.seed)
        expected = reference.fit(save=lambda t: saved.append(io.BytesIO()) or torch.save(t.state_dict(), saved[-1]))
        resumed = trainer(config.seed + 1)  # other weights and RNG: the checkpoint must restore them all
        resumed.load_state_dict(torch.load(io.BytesIO(saved[0].getvalue()), weights_only=True))
        result = resumed.fit()
    without_times = lambda epochs: [{k: v for k, v in e.items() if not k.endswith("_s")} for e in epochs]  # noqa: E731
    assert resumed.epoch == 2 and without_times(result["epochs"]) == without_times(expected["epochs"])
    for name, tensor in reference.model.state_dict().items():
        assert torch.equal(resumed.model.state_dict()[name], tensor), name


def test_committed_records_keep_their_identity():
    """The settings added after them (memory_format, compile) leave their defaults out of the identity."""
    paths = sorted((REPO / "results").rglob("runs/*/*.json"))
    assert len(paths) > 100
    for path in paths:
        record = json.loads(path.read_text())
        assert RunConfig.from_dict(record["config"]).identity() == record["run_id"], path.name


def test_compiled_and_channels_last_runs_never_pool_with_the_default():
    run = demo_config(epochs=3)
    variants = [run, dataclasses.replace(run, compile=True), dataclasses.replace(run, memory_format="channels-last"),
                dataclasses.replace(run, memory_format="contiguous"),
                dataclasses.replace(run, compile=True, memory_format="channels-last")]
    assert len({v.identity() for v in variants}) == len({v.setting_key() for v in variants}) == len(variants)


def test_the_memory_format_setting_decides_the_layout_on_every_device():
    cnn, mlp = TinyCNN(num_classes=4), torch.nn.Linear(3, 2)
    cpu, cuda = torch.device("cpu"), torch.device("cuda")
    assert memory_format(cnn, cpu, "channels-last") == memory_format(cnn, cuda, "auto") == torch.channels_last
    assert memory_format(cnn, cuda, "contiguous") == torch.contiguous_format
    assert memory_format(cnn, cpu, "auto") == memory_format(mlp, cpu, "channels-last") == torch.preserve_format
    assert memory_format_name(copy.deepcopy(cnn).to(memory_format=torch.channels_last)) == "channels-last"
    assert memory_format_name(cnn) == memory_format_name(mlp) == "contiguous"


def test_compile_is_a_recorded_flag_and_what_cannot_compile_is_one_line(tmp_path):
    result = CliRunner().invoke(app, ["medmnist", "--help"])
    assert "--compile" in result.output and "--memory-format" in result.output
    shown = CliRunner().invoke(app, ["config", "show", "demo", "--seeds", "0", "--saflex", "--compile",
                                     "--memory-format", "channels-last"])
    assert shown.exit_code == 0, shown.output
    runs = [run["config"] for run in json.loads(shown.stdout)]
    assert runs and all(c["compile"] is True and c["memory_format"] == "channels-last" for c in runs)
    out = tmp_path / "out"
    for refusal in (["--refine", "l2rw"], ["--saflex", "--pi-mode", "last-layer"]):
        result = CliRunner().invoke(app, ["demo", "--seeds", "0", "--compile", "--out", str(out), *refusal])
        # a SaflexError: saflex's main prints it as one line and exits 2 (test_cli.py)
        assert isinstance(result.exception, SaflexError), result.output
        assert "\n" not in str(result.exception) and "--compile" in str(result.exception)
    assert not out.exists()


@pytest.mark.slow
def test_the_overhead_benchmark_measures_eager_against_compiled(tmp_path, monkeypatch):
    """A tiny CPU run of `benchmarks/overhead.py --compile`, so the GPU script meets no broken code;
    it adds its block to the JSON and keeps what was there."""
    import importlib.util
    import sys

    spec = importlib.util.spec_from_file_location("overhead", REPO / "benchmarks" / "overhead.py")
    overhead = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, "overhead", overhead)  # dataclasses look their module up there
    spec.loader.exec_module(overhead)
    out = tmp_path / "bench.json"
    out.write_text(json.dumps({"device": "earlier run", "backbones": {"mlp": {"kept": True}}}))
    report = overhead.main(["--device", "cpu", "--compile", "--backbones", "mlp", "--batch-size", "4", "--steps", "1",
                            "--warmup", "1", "--out", str(out)])
    assert json.loads(out.read_text()) == report and report["backbones"] == {"mlp": {"kept": True}}
    variants = report["compile"]["1 thread(s)"]["backbones"]["mlp"]
    assert set(variants) == {"batch_size", "auto/eager", "auto/compiled"}
    for name in ("auto/eager", "auto/compiled"):
        assert variants[name]["exact_over_plain"] > 0 and variants[name]["exact_speedup"] > 0
    assert variants["auto/eager"]["plain_speedup"] == 1.0


@pytest.mark.slow
def test_a_model_that_cannot_compile_stops_in_one_line_before_any_step(monkeypatch):
    """Here inductor finds no C++ compiler (as on a machine without one): one line, no step taken."""
    import torch._inductor.config

    import torch._functorch.config

    monkeypatch.setattr(torch._inductor.config.cpp, "cxx", ("/nonexistent/c++",))
    # a graph compiled before (in this process or cached on disk) needs no compiler: compile afresh
    monkeypatch.setattr(torch._inductor.config, "fx_graph_cache", False)
    monkeypatch.setattr(torch._functorch.config, "enable_autograd_cache", False)
    torch._dynamo.reset()
    config = demo_config(epochs=1, compile=True)
    with one_thread():
        seed_everything(config.seed)
        trainer = Trainer(FAMILIES.get("demo").build(config, CPU), config, CPU)
        with pytest.raises(SaflexError, match="^--compile: torch.compile cannot compile") as raised:
            trainer.fit()
    assert "\n" not in str(raised.value) and trainer.step == 0 and not trainer.history
