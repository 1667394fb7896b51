"""Checkpoints and exact resume: a run cut off anywhere ends as if it had never stopped."""
from __future__ import annotations

import io
import signal

import pytest
import torch

from reliability_helpers import demo_config, one_thread, records, wait_for, worker
from saflex_cli.compute.runtime import seed_everything
from saflex_cli.data.batches import CyclingBatches, LoaderBatches, TensorBatches
from saflex_cli.data.digits import load_digits_splits
from saflex_cli.families.base import tensor_setup
from saflex_cli.registry import BACKBONES, FAMILIES
from saflex_cli.runs.grid import checkpoint_folder, run_one
from saflex_cli.training.checkpoint import Checkpoints
from saflex_cli.training.trainer import Trainer

CPU = torch.device("cpu")


def _batches_after(source, state, count):
    source.load_state_dict(state)
    it = iter(source)
    return [next(it)[1].tolist() for _ in range(count)]


def test_batch_sources_resume_mid_pass():
    data = torch.arange(50).float().unsqueeze(1)
    batches = TensorBatches(data, torch.arange(50), 8, seed=3)
    first = iter(batches)
    for _ in range(4):
        next(first)
    state = batches.state_dict()
    rest = [t.tolist() for _, t in first]
    following = [t.tolist() for _, t in batches]  # the next pass, drawn after this one
    fresh = TensorBatches(data, torch.arange(50), 8, seed=99)
    assert _batches_after(fresh, state, len(rest)) == rest
    assert [t.tolist() for _, t in fresh] == following

    cycling = CyclingBatches(TensorBatches(data, torch.arange(50), 16, seed=5, min_batch=1))
    for _ in range(6):  # past the end of a pass (4 batches per pass)
        next(cycling)
    state = cycling.state_dict()
    expected = [next(cycling)[1].tolist() for _ in range(5)]
    other = CyclingBatches(TensorBatches(data, torch.arange(50), 16, seed=0, min_batch=1))
    other.load_state_dict(state)
    assert [next(other)[1].tolist() for _ in range(5)] == expected


class Indexed(torch.utils.data.Dataset):
    """A dataset read item by item, as LoaderBatches reads images from disk."""

    def __len__(self):
        return 45

    def __getitem__(self, index):
        return torch.tensor([float(index)]), index


def test_loader_batches_resume_mid_pass():
    batches = LoaderBatches(Indexed(), 8, CPU, seed=3)
    first = iter(batches)
    next(first), next(first)
    state = batches.state_dict()
    rest = [t.tolist() for _, t in first]
    fresh = LoaderBatches(Indexed(), 8, CPU, seed=4)
    assert _batches_after(fresh, state, len(rest)) == rest


def _dropout_trainer(config, seed_offset=0):
    """Demo data with a dropout MLP, so the global torch RNG matters as well as the generators."""
    seed_everything(config.seed + seed_offset)
    model = BACKBONES.get("mlp")(in_features=64, num_classes=10, dropout=0.3)
    setup = tensor_setup(config, load_digits_splits(config.seed), model, CPU, metrics=("acc",), selection=("acc",))
    return Trainer(setup, config, CPU)


def _without_times(history):
    return [{k: v for k, v in e.items() if not k.endswith("_time_s")} for e in history]


def test_resume_from_epoch_end_and_mid_epoch_is_exact():
    config = demo_config(epochs=3)
    snapshots = []

    def save(trainer):
        buffer = io.BytesIO()
        torch.save(trainer.state_dict(), buffer)
        snapshots.append(((trainer.epoch, trainer.step), buffer.getvalue()))

    with one_thread():
        reference = _dropout_trainer(config)
        expected = reference.fit(save=save, save_every=3)
        chosen = {pos: blob for pos, blob in snapshots if pos in {(1, 0), (1, 3), (2, 6)}}
        assert set(chosen) == {(1, 0), (1, 3), (2, 6)}
        for position, blob in chosen.items():
            resumed = _dropout_trainer(config, seed_offset=1000)  # other init and RNG: all must be restored
            resumed.load_state_dict(torch.load(io.BytesIO(blob), weights_only=True))
            result = resumed.fit()
            assert _without_times(result["epochs"]) == _without_times(expected["epochs"]), position
            assert result["selections"] == expected["selections"]
            for name, tensor in reference.model.state_dict().items():
                assert torch.equal(resumed.model.state_dict()[name], tensor), (position, name)


def test_unreadable_checkpoint_is_set_aside_and_previous_used(tmp_path):
    store = Checkpoints(tmp_path / "ck")
    store.save({"value": torch.tensor([1.0])}, "run", 1, 0)
    newest = store.save({"value": torch.tensor([2.0])}, "run", 2, 0)
    newest.write_bytes(newest.read_bytes()[:100])  # torn, as by a kill mid-write without os.replace
    with pytest.warns(UserWarning, match="unreadable"):
        state = store.load_latest("run")
    assert state["value"].item() == 1.0
    assert (tmp_path / "ck" / (newest.name + ".unreadable")).exists()
    assert store.load_latest("another run") is None  # a foreign checkpoint is never used


def test_sigkilled_run_resumes_to_identical_weights_and_metrics(tmp_path):
    """The CLI is SIGKILLed after an epoch's checkpoint; resuming from it ends bit-identical."""
    config = demo_config(epochs=8)
    folder = checkpoint_folder(tmp_path, config)
    child = worker(tmp_path, {"runs": [{"epochs": 8}], "options": {"checkpoint_every": 3}})
    try:
        wait_for(lambda: list(folder.glob("e0000[2-9]-*.pt")), timeout=120)
        child.send_signal(signal.SIGKILL)
    finally:
        child.wait()
    assert child.returncode == -signal.SIGKILL
    assert not any(name.startswith(config.run_name) for name in records(tmp_path))  # cut off: no record

    with one_thread():
        seed_everything(config.seed)
        reference = Trainer(FAMILIES.get("demo").build(config, CPU), config, CPU)
        expected = reference.fit()
        seed_everything(config.seed + 1)
        resumed = Trainer(FAMILIES.get("demo").build(config, CPU), config, CPU)
        state = Checkpoints(folder).load_latest(config.identity())
        assert 1 <= state["epoch"] < config.epochs
        resumed.load_state_dict(state)
        result = resumed.fit()
    assert _without_times(result["epochs"]) == _without_times(expected["epochs"])
    for name, tensor in reference.model.state_dict().items():
        assert torch.equal(resumed.model.state_dict()[name], tensor), name

    # and the grid itself, restarted, finishes from the checkpoint with the same record
    with one_thread():
        path = run_one(config, tmp_path, CPU)
    assert records(tmp_path)[path.name]["resumed_at"][0] >= 1
    assert _without_times(records(tmp_path)[path.name]["epochs"]) == _without_times(expected["epochs"])
    assert not folder.exists()  # checkpoints go once the record is written


def test_numpy_values_in_the_state_do_not_make_checkpoints_unreadable(tmp_path):
    import numpy as np
    store = Checkpoints(tmp_path)
    store.save({"history": [{"auc": np.float64(0.5), "counts": np.arange(3)}]}, "run", 1, 0)
    state = store.load_latest("run")
    assert state["history"][0]["auc"] == 0.5 and state["history"][0]["counts"].tolist() == [0, 1, 2]
