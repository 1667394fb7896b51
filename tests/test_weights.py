"""Trained weights kept beside the record, and `saflex eval` reproducing the record's metrics from them."""
from __future__ import annotations

import dataclasses
import json
import shutil
import subprocess
import sys

import pytest
from safetensors import safe_open
from safetensors.torch import load_file, save_file
from typer.testing import CliRunner

from reliability_helpers import child_env, demo_config, one_thread
from saflex_cli.cli import app
from saflex_cli.errors import SaflexError
from saflex_cli.runs.grid import GridOptions, run_grid
from saflex_cli.runs.reevaluate import reevaluate
from saflex_cli.store.records import record_path, set_aside


@pytest.fixture(scope="module")
def recorded(tmp_path_factory):
    """Two demo runs of 2 epochs that kept every selection's weights, and one that kept none."""
    out = tmp_path_factory.mktemp("weights")
    kept = [demo_config(epochs=2, seed=0), demo_config(epochs=2, seed=1)]
    with one_thread():
        run_grid(kept, out, device="cpu", quiet=True, options=GridOptions(save_model="all"))
        run_grid([demo_config(epochs=2, saflex=False)], out, device="cpu", quiet=True,
                 options=GridOptions(save_model="none"))
    return out, kept


def copy_of(out, tmp_path):
    shutil.copytree(out, tmp_path / "out")
    return tmp_path / "out"


def test_the_selected_weights_are_kept_beside_the_record_with_the_config(recorded):
    out, (config, _) = recorded
    record = json.loads(record_path(out, config).read_text())
    assert set(record["models"]) == {"last", "best_val_acc"}
    for selection, entry in record["models"].items():
        path = record_path(out, config).parent / entry["file"]
        assert path.name == f"{config.run_name}.{selection}.safetensors"
        assert entry["epoch"] == record["selections"][selection]["epoch"]
        with safe_open(str(path), "pt") as handle:
            metadata = handle.metadata()
        assert metadata["run_id"] == config.identity() and json.loads(metadata["config"]) == config.to_dict()
    none = demo_config(epochs=2, saflex=False)
    assert json.loads(record_path(out, none).read_text())["models"] == {}
    assert list(record_path(out, none).parent.glob(f"{none.run_name}.*.safetensors")) == []


@pytest.mark.parametrize("selection", ["last", "best_val_acc"])
@pytest.mark.parametrize("split", ["test", "val"])
def test_eval_rebuilds_the_model_and_reproduces_the_recorded_metrics(recorded, selection, split):
    out, (config, _) = recorded
    with one_thread():
        result = reevaluate(record_path(out, config), split, selection, device="cpu")
    record = json.loads(record_path(out, config).read_text())
    assert result.now == pytest.approx(record["selections"][selection][split], abs=1e-6)
    assert result.matches and set(result.differences) == set(record["selections"][selection][split])


def test_the_default_kept_selection_is_the_familys(tmp_path):
    config = demo_config(epochs=1, saflex=False)
    with one_thread():
        run_grid([config], tmp_path, device="cpu", quiet=True)
    assert set(json.loads(record_path(tmp_path, config).read_text())["models"]) == {"last"}  # the demo's selection


def test_eval_on_the_command_line_and_a_record_it_does_not_reproduce(recorded, tmp_path):
    out, (config, _) = recorded
    result = CliRunner().invoke(app, ["eval", str(record_path(out, config)), "--split", "val", "--device", "cpu"])
    assert result.exit_code == 0, result.output
    assert "reproduces the record" in result.output and "acc" in result.output
    out = copy_of(out, tmp_path)
    record = json.loads(record_path(out, config).read_text())
    record["selections"]["last"]["val"]["acc"] += 0.125  # a number the weights did not make
    record_path(out, config).write_text(json.dumps(record))
    result = CliRunner().invoke(app, ["eval", str(record_path(out, config)), "--split", "val", "--device", "cpu"])
    assert isinstance(result.exception, SaflexError)
    assert "differ from the record by up to 1.2e-01" in str(result.exception)


def test_a_missing_weights_file_is_one_line_and_exit_2(recorded, tmp_path):
    out, (config, _) = recorded
    out = copy_of(out, tmp_path)
    (record_path(out, config).parent / f"{config.run_name}.last.safetensors").unlink()
    result = subprocess.run([sys.executable, "-m", "saflex_cli", "eval", str(record_path(out, config)), "--selection",
                             "last"], capture_output=True, text=True, env=child_env(), timeout=120)
    assert result.returncode == 2
    assert result.stderr.strip().count("\n") == 0 and "is missing" in result.stderr, result.stderr


def test_weights_of_another_run_are_refused(recorded, tmp_path):
    out, (config, other) = recorded
    out = copy_of(out, tmp_path)
    folder = record_path(out, config).parent
    shutil.copy(folder / f"{other.run_name}.last.safetensors", folder / f"{config.run_name}.last.safetensors")
    with pytest.raises(SaflexError, match=f"belongs to run '{other.identity()}', not to this record's"):
        reevaluate(record_path(out, config), selection="last", device="cpu")


def test_a_stale_weights_file_of_the_same_run_is_refused(recorded, tmp_path):
    out, (config, _) = recorded
    out = copy_of(out, tmp_path)
    path = record_path(out, config).parent / f"{config.run_name}.last.safetensors"
    with safe_open(str(path), "pt") as handle:
        metadata = handle.metadata()
    tensors = load_file(path)
    first = next(iter(tensors))
    tensors[first] = tensors[first] + 1.0  # other weights under the same run's metadata
    save_file(tensors, path, metadata=metadata)
    with pytest.raises(SaflexError, match="is not the one recorded"):
        reevaluate(record_path(out, config), selection="last", device="cpu")


def test_a_selection_that_kept_no_weights_is_refused(recorded):
    out, _ = recorded
    none = demo_config(epochs=2, saflex=False)
    with pytest.raises(SaflexError, match=r"kept no weights for selection 'last' \(kept: none\)"):
        reevaluate(record_path(out, none), device="cpu")


def test_bad_save_model_values_are_refused_before_any_run(tmp_path):
    with pytest.raises(SaflexError, match=r"--save-model 'some' is not one of: best \| last \| all \| none"):
        GridOptions(save_model="some")


def test_force_sets_the_weights_and_metrics_aside_with_their_record(recorded, tmp_path):
    out, (config, _) = recorded
    out = copy_of(out, tmp_path)
    path = record_path(out, config)
    moved = set_aside(out, [path])
    names = sorted(p.name for p in (moved / "demo").iterdir())
    assert names == sorted([path.name, f"{config.run_name}.last.safetensors",
                            f"{config.run_name}.best_val_acc.safetensors", f"{config.run_name}.metrics.jsonl"])
    assert not list(path.parent.glob(f"{config.run_name}.*"))
    assert dataclasses.replace(config, seed=1).run_name + ".json" in {p.name for p in path.parent.iterdir()}
