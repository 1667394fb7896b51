"""--precision and --deterministic on the CPU: what each does to the forwards, the loss scaler, the record."""
from __future__ import annotations

import dataclasses
import io
import json
import os

import pytest
import torch

from reliability_helpers import demo_config, one_thread
from saflex_cli.runs.grid import make_trainer, run_one
from saflex_cli.training.live import LiveRun

CPU = torch.device("cpu")


def plain_config(precision: str, epochs: int = 1, **changes):
    """No augmentation: every forward of a step is the training forward."""
    return demo_config(epochs=epochs, saflex=False, aug="none", precision=precision, **changes)


def forward_dtypes(trainer) -> dict[str, set]:
    """The output dtypes of the model's first linear layer, in training and in evaluation."""
    seen = {"train": set(), "eval": set()}
    first = next(m for m in trainer.model.modules() if isinstance(m, torch.nn.Linear))
    first.register_forward_hook(lambda module, args, output: seen["train" if module.training else "eval"].add(output.dtype))
    trainer.fit()
    return seen


@pytest.mark.parametrize("precision, dtype", [("auto", torch.float32), ("fp32", torch.float32),
                                              ("bf16", torch.bfloat16), ("fp16", torch.float16)])
def test_each_precision_sets_the_dtype_of_the_training_and_evaluation_forwards(precision, dtype):
    trainer = make_trainer(plain_config(precision), CPU)
    assert forward_dtypes(trainer) == {"train": {dtype}, "eval": {dtype}}
    assert trainer.scaler.is_enabled() == (precision == "fp16")


def test_fp16_skips_overflowing_steps_without_diverging_and_the_scale_resumes_exactly():
    config = plain_config("fp16", epochs=2)
    snapshots = []
    with one_thread():
        reference = make_trainer(config, CPU)
        # A scale of 2**24 overflows fp16's gradients here (the loss's gradient is ~1/32 per logit):
        # the scaler skips those steps and halves its scale each time, and the run goes on (only a
        # non-finite loss is a divergence).
        reference.scaler = torch.amp.GradScaler("cpu", init_scale=2.0 ** 24)
        result = reference.fit(save=lambda t: snapshots.append(io.BytesIO(_saved(t))))
        first, last = (e["loss_scale"] for e in result["epochs"])
        assert first < 2.0 ** 24 and len(result["epochs"]) == 2
        state = torch.load(snapshots[0], weights_only=True)
        assert state["scaler"]["scale"] == first
        resumed = make_trainer(config, CPU)
        resumed.load_state_dict(state)
        assert resumed.scaler.get_scale() == first
        again = resumed.fit()
    assert again["epochs"][-1]["loss_scale"] == last
    for name, tensor in reference.model.state_dict().items():
        assert torch.equal(resumed.model.state_dict()[name], tensor), name


def _saved(trainer) -> bytes:
    buffer = io.BytesIO()
    torch.save(trainer.state_dict(), buffer)
    return buffer.getvalue()


def test_deterministic_mode_holds_during_the_run_only_and_is_recorded(tmp_path, monkeypatch):
    monkeypatch.delenv("CUBLAS_WORKSPACE_CONFIG", raising=False)
    assert not torch.are_deterministic_algorithms_enabled()
    during = []
    original = LiveRun.epoch

    def spy(self, entry):
        during.append((torch.are_deterministic_algorithms_enabled(), torch.backends.cudnn.deterministic,
                       torch.backends.cudnn.benchmark, os.environ.get("CUBLAS_WORKSPACE_CONFIG")))
        original(self, entry)

    monkeypatch.setattr(LiveRun, "epoch", spy)
    config = plain_config("bf16", deterministic=True)
    with one_thread():
        path = run_one(config, tmp_path, CPU)
    assert during == [(True, True, False, ":4096:8")]
    assert not torch.are_deterministic_algorithms_enabled() and not torch.backends.cudnn.deterministic
    record = json.loads(path.read_text())
    assert record["config"]["deterministic"] is True and record["config"]["precision"] == "bf16"
    assert record["determinism"]["use_deterministic_algorithms"] is True

    undetermined = run_one(dataclasses.replace(config, deterministic=False), tmp_path, CPU)
    assert "determinism" not in json.loads(undetermined.read_text())
    assert during[-1][0] is False
