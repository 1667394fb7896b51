"""The shared trainer: the union step, the baseline's uniform weights, NaN refusal, selection."""
from __future__ import annotations

import copy
import dataclasses

import pytest
import torch

from saflex_cli.config import RunConfig
from saflex_cli.data.batches import CyclingBatches, TensorBatches
from saflex_cli.families.demo import build, defaults
from saflex_cli.runs.grid import make_trainer
from saflex_cli.training.trainer import Trainer, TrainingDiverged


def demo_config(**changes) -> RunConfig:
    return dataclasses.replace(defaults("digits"), **{"epochs": 3, **changes})


def saflex_on(config: RunConfig) -> RunConfig:
    return dataclasses.replace(config, refine="saflex")


def test_upstream_only_uses_uniform_weights_and_upstream_labels(monkeypatch):
    config = demo_config()
    trainer = Trainer(build(config, torch.device("cpu")), config, torch.device("cpu"))
    seen = []
    original = trainer.setup.objective.training_loss

    def spy(model, x, y, x_aug, labels, weights):
        seen.append((len(y), labels.clone(), weights.clone()))
        return original(model, x, y, x_aug, labels, weights)

    monkeypatch.setattr(trainer.setup.objective, "training_loss", spy)
    trainer.train_epoch(1)
    for batch, labels, weights in seen:
        torch.testing.assert_close(weights, torch.full((batch,), 1.0 / batch))
        assert torch.all(labels.max(1).values == 1.0)  # one-hot upstream labels, not refined


def test_saflex_run_records_its_diagnostics():
    config = saflex_on(demo_config())
    result = Trainer(build(config, torch.device("cpu")), config, torch.device("cpu")).fit()
    stats = result["epochs"][-1]["saflex"]
    assert 0.0 < stats["kept_fraction"] <= 1.0
    assert 0.0 <= stats["label_recovery"] <= 1.0
    assert stats["corrupted_count"] + stats["uncorrupted_count"] == 200  # every training image, once


def test_same_seed_same_run_different_seed_different_run():
    results = []
    for seed in (0, 0, 1):
        config = saflex_on(demo_config(seed=seed))
        results.append(make_trainer(config, torch.device("cpu")).fit())
    losses = [[e["train_loss"] for e in r["epochs"]] for r in results]
    assert losses[0] == losses[1] and losses[0] != losses[2]


def test_nan_loss_is_refused_naming_epoch_and_step():
    config = demo_config(epochs=2)
    setup = build(config, torch.device("cpu"))
    inputs = setup.train_batches.inputs
    inputs[5] = float("nan")  # one poisoned training row: its batch's loss is NaN
    trainer = Trainer(setup, config, torch.device("cpu"))
    with pytest.raises(TrainingDiverged, match=r"NaN/inf at epoch 1, step \d+") as caught:
        trainer.fit()
    assert 1 <= caught.value.step <= len(setup.train_batches)


def test_selected_weights_are_a_copy_not_an_alias():
    config = demo_config(epochs=4)
    trainer = Trainer(build(config, torch.device("cpu")), config, torch.device("cpu"))
    result = trainer.fit()
    best = trainer.best["acc"]
    assert result["selections"]["best_val_acc"]["epoch"] == best["epoch"]
    if best["epoch"] < 4:
        live = trainer.model.state_dict()
        assert any(not torch.equal(best["state"][k], live[k]) for k in live)
    for key, tensor in best["state"].items():
        assert tensor.data_ptr() != trainer.model.state_dict()[key].data_ptr()


def test_validation_stream_cycles_in_its_own_order():
    targets = torch.arange(10)
    val = CyclingBatches(TensorBatches(targets.float(), targets, 4, seed=3, min_batch=1))
    seen = torch.cat([next(val)[1] for _ in range(3)])  # 4 + 4 + 2: one full pass
    assert sorted(seen.tolist()) == list(range(10))
    assert len(next(val)[1]) == 4  # and it starts over


def test_validation_order_does_not_follow_the_training_order():
    config = demo_config()
    fresh = build(config, torch.device("cpu"))
    used = build(config, torch.device("cpu"))
    for _ in range(3):
        list(used.train_batches)  # consuming training epochs must not move the validation stream
    for _ in range(5):
        assert torch.equal(next(fresh.val_batches)[1], next(used.val_batches)[1])


def test_multistep_schedule_drops_the_lr_at_half_and_three_quarters():
    from saflex_cli.training.trainer import lr_factor
    config = dataclasses.replace(demo_config(), epochs=8, optim=dataclasses.replace(demo_config().optim, schedule="multistep"))
    factor = lr_factor(config, steps_per_epoch=10)
    assert [factor(s) for s in (0, 39, 40, 59, 60, 79)] == pytest.approx([1, 1, 0.1, 0.1, 0.01, 0.01])


def test_batchnorm_cnns_go_channels_last_on_cuda_only_and_compute_the_same():
    from conftest import TinyCNN, tiny_mlp

    from saflex_cli import refine
    from saflex_cli.compute.runtime import memory_format

    cnn = TinyCNN(num_classes=4).train()
    cuda, cpu = torch.device("cuda"), torch.device("cpu")
    assert memory_format(cnn, cuda) == torch.channels_last
    assert memory_format(cnn, cpu) == torch.preserve_format
    assert memory_format(tiny_mlp(5, 3), cuda) == torch.preserve_format
    # The layout changes no number the method computes (checked where it can run: the CPU).
    torch.manual_seed(0)
    x, y, xv, yv = torch.randn(6, 3, 8, 8), torch.randint(0, 4, (6,)), torch.randn(10, 3, 8, 8), torch.randint(0, 4, (10,))
    strided = copy.deepcopy(cnn).to(memory_format=torch.channels_last)
    assert strided.body[0].weight.is_contiguous(memory_format=torch.channels_last)
    expected = refine(cnn, x, y, xv, yv, beta=0.0, tau=0.01, gumbel=False).pi
    torch.testing.assert_close(refine(strided, x, y, xv, yv, beta=0.0, tau=0.01, gumbel=False).pi, expected,
                               rtol=1e-4, atol=1e-5)
