"""What a run says while it trains: a line per epoch without a terminal, the metrics file, the bars."""
from __future__ import annotations

import json

import pytest
import torch
from rich.progress import Progress
from typer.testing import CliRunner

from reliability_helpers import demo_config, one_thread
from saflex_cli.cli import app
from saflex_cli.errors import SaflexError
from saflex_cli.runs.grid import GridOptions, checkpoint_folder, run_grid, run_one, work
from saflex_cli.training.checkpoint import Checkpoints
from saflex_cli.training.live import LiveRun, metrics_path

CPU = torch.device("cpu")


def epoch_lines(text: str) -> list[str]:
    return [line for line in text.splitlines() if " epoch " in f" {line}" and "/2  loss " in line]


def test_without_a_terminal_each_epoch_prints_one_line(tmp_path):
    out = str(tmp_path / "out")  # CliRunner's output is not a TTY, as under nohup or SLURM
    result = CliRunner().invoke(app, ["demo", "--aug", "label-shift", "--saflex", "--seeds", "0", "--epochs", "2",
                                      "--out", out])
    assert result.exit_code == 0, result.output
    lines = epoch_lines(result.output)
    assert [line.split()[:2] for line in lines] == [["epoch", "1/2"], ["epoch", "2/2"]]
    assert all("val acc " in line and "kept " in line and "relabelled " in line for line in lines)
    quiet = CliRunner().invoke(app, ["demo", "--aug", "none", "--seeds", "0", "--epochs", "2", "--out", out, "--quiet"])
    assert quiet.exit_code == 0 and epoch_lines(quiet.output) == []


def test_a_worker_among_several_names_its_run_on_every_line(tmp_path, capsys):
    config = demo_config(epochs=2, saflex=False)
    with one_thread():
        work([config], tmp_path, "cpu", worker=True)
    lines = epoch_lines(capsys.readouterr().err)
    assert len(lines) == 2 and all(line.startswith(f"{config.run_name}  epoch ") for line in lines)


def test_the_metrics_file_grows_epoch_by_epoch(tmp_path, monkeypatch):
    config = demo_config(epochs=3, saflex=False)
    seen, original = [], LiveRun.epoch

    def spy(self, entry):
        original(self, entry)
        seen.append([json.loads(line)["epoch"] for line in metrics_path(tmp_path, config).read_text().splitlines()])

    monkeypatch.setattr(LiveRun, "epoch", spy)
    with one_thread():
        path = run_one(config, tmp_path, CPU)
    assert seen == [[1], [1, 2], [1, 2, 3]]
    lines = [json.loads(line) for line in metrics_path(tmp_path, config).read_text().splitlines()]
    assert lines == json.loads(path.read_text())["epochs"]  # the record's history, line by line


class Killed(Exception):
    pass


def run_cut_after_epoch_two_with_its_checkpoint_torn(config, out, monkeypatch, **options):
    """A run killed after epoch 2's line whose epoch-2 checkpoint is torn: it resumes from epoch 1."""
    original = LiveRun.epoch

    def cut_after_two(self, entry):
        original(self, entry)
        if entry["epoch"] == 2:
            raise Killed

    monkeypatch.setattr(LiveRun, "epoch", cut_after_two)
    with one_thread(), pytest.raises(Killed):
        run_one(config, out, CPU, **options)
    newest = Checkpoints(checkpoint_folder(out, config)).paths()[0]
    newest.write_bytes(newest.read_bytes()[:100])
    monkeypatch.setattr(LiveRun, "epoch", original)


def test_a_resumed_run_rewrites_its_metrics_file_from_the_checkpoint(tmp_path, monkeypatch, capsys):
    config = demo_config(epochs=3, saflex=False)
    run_cut_after_epoch_two_with_its_checkpoint_torn(config, tmp_path, monkeypatch)
    capsys.readouterr()
    with one_thread(), pytest.warns(UserWarning, match="unreadable"):
        run_one(config, tmp_path, CPU, lines=True)
    epochs = [json.loads(line)["epoch"] for line in metrics_path(tmp_path, config).read_text().splitlines()]
    assert epochs == [1, 2, 3]  # every epoch once, though epoch 2's line was written before the cut
    assert f"{config.run_name}: resumed from epoch 1 (step 0)" in capsys.readouterr().err


def test_on_a_terminal_the_step_bar_follows_each_epoch(tmp_path, monkeypatch):
    config = demo_config(epochs=2, saflex=False)
    completed, original = [], LiveRun.step

    def spy(self, step):
        original(self, step)
        task = next(t for t in self.progress.tasks if t.id == self.steps)
        completed.append((task.description.strip(), task.completed, task.total))

    monkeypatch.setattr(LiveRun, "step", spy)
    with one_thread(), Progress(disable=True) as progress:
        run_one(config, tmp_path, CPU, progress)
        assert progress.tasks == []  # the run's bars go with it
    assert completed == [(f"epoch {e}", s, 7) for e in (1, 2) for s in range(1, 8)]


def test_tensorboard_without_the_package_is_one_line_and_nothing_is_written(tmp_path, monkeypatch):
    import importlib.util
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "tensorboard" else real(name, *a))
    with pytest.raises(SaflexError, match=r"--tensorboard needs the tensorboard package: pip install 'saflex\[tensorboard\]'"):
        run_grid([demo_config(epochs=1)], tmp_path / "out", device="cpu", options=GridOptions(tensorboard=True))
    assert not (tmp_path / "out").exists()


def test_tensorboard_gets_each_epochs_scalars_once_across_a_resume(tmp_path, monkeypatch):
    pytest.importorskip("tensorboard")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    config = demo_config(epochs=3)
    options = GridOptions(tensorboard=True)
    run_cut_after_epoch_two_with_its_checkpoint_torn(config, tmp_path, monkeypatch, options=options)
    with one_thread(), pytest.warns(UserWarning, match="unreadable"):
        path = run_one(config, tmp_path, CPU, options=options)
    events = EventAccumulator(str(tmp_path / "tensorboard" / config.run_name))
    events.Reload()
    record = json.loads(path.read_text())
    for tag, key in (("train/loss", lambda e: e["train_loss"]), ("val/acc", lambda e: e["val"]["acc"]),
                     ("saflex/kept_fraction", lambda e: e["saflex"]["kept_fraction"])):
        scalars = events.Scalars(tag)
        assert [s.step for s in scalars] == [1, 2, 3]
        assert [s.value for s in scalars] == pytest.approx([key(e) for e in record["epochs"]], rel=1e-6)
