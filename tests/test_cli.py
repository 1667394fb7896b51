"""The `saflex` command end to end, on files in the real MedMNIST format that the test writes."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import write_medmnist_npz
from typer.testing import CliRunner

from saflex_cli.cli import app

runner = CliRunner()


def invoke(*args):
    result = runner.invoke(app, [str(a) for a in args])
    if result.exception and not isinstance(result.exception, SystemExit):
        raise result.exception
    return result


@pytest.fixture
def derma_root(tmp_path):
    """tmp/data is the data root: MedMNIST files go to tmp/data/medmnist/."""
    (tmp_path / "data" / "medmnist").mkdir(parents=True)
    write_medmnist_npz(tmp_path / "data" / "medmnist" / "dermamnist.npz", counts=(24, 16, 16), num_classes=7)
    return tmp_path


def test_medmnist_grid_then_report(derma_root, offline):
    out = derma_root / "results"
    common = ("--dataset", "dermamnist", "--epochs", 2, "--seeds", "0,1", "--skip-md5",
              "--data-root", derma_root / "data", "--out", out, "--quiet", "--batch-size", 16)
    invoke("medmnist", "--aug", "randaug", *common)
    invoke("medmnist", "--aug", "randaug", "--saflex", *common)
    records = sorted((out / "runs" / "medmnist").glob("*.json"))
    assert len(records) == 4  # 2 rows of Table 1 x 2 seeds
    record = json.loads(records[0].read_text())
    assert record["status"] == "completed" and len(record["epochs"]) == 2
    assert record["data"]["md5_check_skipped"] and record["data"]["release"] == "unverified"
    assert {"config", "versions", "device", "run_id", "git_commit", "wall_time_s", "data"} <= record.keys()
    assert record["config"]["seed"] in (0, 1) and record["versions"]["torch"]
    assert {"last", "best_val_acc", "best_val_auc"} <= record["selections"].keys()
    assert all(e["train_time_s"] > 0 for e in record["epochs"])
    table = (out / "medmnist.md").read_text()
    for row in ("RandAug", "SAflex (w/ RandAug)"):
        assert f"| {row} |" in table
    assert "paper 73.71 ± 0.33" in table  # Table 1, RandAug, DermaMNIST
    assert "| ResNet-18 | dermamnist | SAflex (w/ RandAug) [batch_size=16, epochs=2, skip_md5=True] | RandAug [" in table
    csv = (out / "medmnist.csv").read_text().splitlines()
    assert len(csv) == 1 + 4  # one raw row per seed and method

    mtimes = {p: p.stat().st_mtime_ns for p in records}
    invoke("medmnist", "--aug", "randaug", "--saflex", *common)  # recorded already: nothing reruns
    assert all(p.stat().st_mtime_ns == t for p, t in mtimes.items())


def test_report_can_choose_the_checkpoint(derma_root, offline):
    out = derma_root / "results"
    invoke("medmnist", "--dataset", "dermamnist", "--epochs", 1, "--seeds", "0", "--aug", "none", "--skip-md5",
           "--data-root", derma_root / "data" / "medmnist",  # the older form, naming the family folder, works too
           "--out", out, "--quiet", "--batch-size", 32)
    invoke("report", "--out", out, "--selection", "last", "--name", "derma-last")
    assert "Checkpoint: `last`" in (out / "derma-last.md").read_text()


def test_dry_run_lists_runs_without_training(derma_root):
    out = derma_root / "results"
    result = invoke("medmnist", "--dataset", "dermamnist", "--aug", "randaug", "--saflex", "--seeds", "0,1,2",
                    "--out", out, "--dry-run")
    assert result.output.count("to run") == 3
    assert not (out / "runs").exists()


def run_cli(*args, cwd):
    # PYTHONPATH: this checkout's saflex, not the one the environment installed (another worktree's)
    env = {"SAFLEX_OFFLINE": "1", "PATH": "/usr/bin:/bin", "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    return subprocess.run([sys.executable, "-m", "saflex_cli", *map(str, args)], capture_output=True, text=True,
                          env=env, timeout=120, cwd=cwd)  # a default --out lands in cwd, never in the checkout


@pytest.mark.parametrize("args, message", [
    (("medmnist", "--dataset", "nosuchmnist"), "unknown medmnist dataset"),
    (("medmnist", "--aug", "cutout"), "unknown augmenter 'cutout'"),
    (("medmnist", "--aug", "none", "--saflex"), "they need an upstream augmenter, not --aug none"),
    (("medmnist", "--aug", "randaug", "--refine", "soft-aug"), "which --aug randaug does not give: use --aug crop"),
    (("medmnist", "--seeds", "a,b"), "--seeds must be integers >= 0 or ranges A-B, comma separated"),
    (("medmnist", "--tau", "0"), "saflex.tau = 0.0 is out of range: give a finite number > 0"),
    (("medmnist", "--dataset", "bloodmnist", "--data-root", "{tmp}"), "place the file at"),
    (("report", "--out", "{tmp}"), "no completed run records"),
])
def test_bad_input_gets_one_clear_message_and_no_traceback(args, message, tmp_path):
    result = run_cli(*(a.format(tmp=tmp_path) if isinstance(a, str) else a for a in args), cwd=tmp_path)
    assert result.returncode == 2
    assert message in " ".join(result.stderr.split()), result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize("family", [["medmnist"], ["tabular"], ["flyp", "--method", "all", "--aug", "all", "--saflex"],
                                    ["diffusion", "--aug", "randaug"]])
def test_shared_training_flags_reach_every_run_of_every_family(family, monkeypatch):
    from saflex_cli.cli import shared

    seen = []
    monkeypatch.setattr(shared, "execute", lambda configs, *rest: seen.extend(configs))
    invoke(*family, "--seeds", "0", "--batch-size", 24, "--lr", 0.125, "--beta", 0.25, "--tau", 0.5,
           "--val-batch-size", 12, "--pi-refresh", 3)
    assert seen
    for config in seen:
        assert (config.batch_size, config.optim.lr) == (24, 0.125)
        assert (config.saflex.beta, config.saflex.tau, config.saflex.val_batch_size) == (0.25, 0.5, 12)
        assert config.saflex.pi_refresh == 3
    if family[0] == "flyp":  # SAflex runs among them, and the zero-shot runs keep their 0 epochs
        assert any(c.uses_saflex for c in seen) and any(c.epochs == 0 for c in seen)


@pytest.mark.parametrize("args, runs, line", [
    # Table 1's five rows, asked for as a cross product: No Aug with SAflex does not exist
    (("--aug", "none,randaug,mixup", "--refine", "none,saflex"),
     ["none", "randaug", "randaug+saflex", "mixup", "mixup+saflex"],
     "left out 1 of 6 (augmenter, method) pair(s) that do not exist: none+saflex (--saflex / --refine refine "
     "augmented samples: they need an upstream augmenter, not --aug none)"),
    (("--aug", "none,randaug,crop", "--refine", "none,soft-aug,l2rw"),
     ["none", "randaug", "randaug+l2rw", "crop", "crop+soft-aug", "crop+l2rw"],
     "left out 3 of 9 (augmenter, method) pair(s) that do not exist: none+soft-aug, none+l2rw (--saflex / --refine "
     "refine augmented samples: they need an upstream augmenter, not --aug none); randaug+soft-aug (--refine "
     "soft-aug reads each sample's visible_fraction, which --aug randaug does not give: use --aug crop)"),
])
def test_a_cross_product_runs_the_pairs_that_exist_and_names_the_others(args, runs, line):
    result = CliRunner().invoke(app, ["config", "show", "medmnist", "--seeds", "0", *args])
    assert result.exit_code == 0, result.output + repr(result.exception)
    names = [run["run_name"].split("_")[3] for run in json.loads(result.stdout)]
    assert names == runs
    assert line in result.stderr.splitlines()  # one line
