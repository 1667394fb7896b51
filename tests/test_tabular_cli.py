"""End to end: `saflex tabular` on a tiny CSV, its records, and `saflex report` rendering them."""
from __future__ import annotations

import json
import sys

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from saflex_cli.cli import app, main
from saflex_cli.families.tabular import RECIPE, cells
from saflex_cli.paper import paper_value


@pytest.fixture
def tiny_csv(tmp_path):
    rng = np.random.default_rng(0)
    rows = 90
    x = rng.normal(size=rows)
    frame = pd.DataFrame({"city": rng.choice(["a", "b", "c"], rows), "x": x, "z": rng.normal(size=rows),
                          "churn": np.where(x + 0.3 * rng.normal(size=rows) > 0.4, "yes", "no")})
    path = tmp_path / "tiny.csv"
    frame.to_csv(path, index=False)
    return path


def test_cli_trains_both_models_and_report_renders(tiny_csv, tmp_path):
    out = tmp_path / "results"
    runner = CliRunner()
    result = runner.invoke(app, ["tabular", "--model", "mlp,saint", "--csv", str(tiny_csv), "--target", "churn",
                                 "--aug", "all", "--seeds", "0", "--epochs", "2", "--batch-size", "32",
                                 "--eval-batch-size", "16", "--val-batch-size", "16", "--cutmix-prob", "0.5",
                                 "--out", str(out), "--device", "cpu", "--quiet"])
    assert result.exit_code == 0, result.output + repr(result.exception)
    records = [json.loads(p.read_text()) for p in sorted((out / "runs" / "tabular").glob("*.json"))]
    assert len(records) == 6  # 2 models x (No Aug, CutMix, SAflex w/ CutMix)
    saflex_runs = [r for r in records if r["config"]["refine"] == "saflex"]
    assert all(r["config"]["saflex"]["beta"] == 1.0 and "saflex" in r["epochs"][0] for r in saflex_runs)
    assert all(r["data"]["evaluation"]["batch_size"] == 16 and r["data"]["categorical"] == ["city"] for r in records)
    assert {dict(r["config"]["options"])["aug_kwargs"]["prob"] for r in records} == {0.5}

    report = runner.invoke(app, ["report", "--out", str(out), "--family", "tabular"])
    assert report.exit_code == 0, report.output
    table = (out / "tabular.md").read_text()
    assert "## MLP" in table and "## SAINT" in table and "csv-tiny" in table
    assert "SAflex (w/ CutMix)" in table and (out / "tabular.csv").is_file()


def test_cells_use_paper_labels_and_metric():
    record = {"config": {"aug": "cutmix", "refine": "saflex", "model": "saint", "dataset": "qsar"},
              "data": {"classes": ["NRB", "RB"]},
              "selections": {"best_val_acc": {"test": {"acc": 0.8, "auc": 0.9}}}}
    cell, = cells(record, "best_val_acc")
    assert (cell.method, cell.model, cell.column, cell.value) == ("SAflex (w/ CutMix)", "SAINT", "qsar", 90.0)
    assert paper_value(RECIPE.tables, cell.method, cell.model, cell.column) == (98.59, 0.21)
    record["data"]["classes"] = [str(k) for k in range(10)]
    record["config"].update(model="mlp", dataset="volkert", refine="none", aug="none")
    cell, = cells(record, "best_val_acc")
    assert (cell.method, cell.model, cell.value) == ("No Aug", "MLP", 80.0)  # accuracy for multiclass
    assert paper_value(RECIPE.tables, cell.method, cell.model, cell.column) is not None


def test_bad_input_is_one_line_and_exit_2(tiny_csv, tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(sys, "argv", ["saflex", "tabular", "--csv", str(tiny_csv), "--target", "churn",
                                      "--categorical", "city,nope", "--out", str(tmp_path), "--seeds", "0"])
    with pytest.raises(SystemExit) as exit_info:
        main()
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert "--categorical names column(s) nope" in err and "Traceback" not in err


def test_split_seed_fixes_the_split_across_run_seeds(tiny_csv):
    import dataclasses

    import torch

    from saflex_cli.families.tabular import build, defaults

    def setup(seed, split_seed):
        options = {**dict(defaults("csv-tiny").options), "csv": str(tiny_csv), "target": "churn", "split_seed": split_seed}
        config = dataclasses.replace(defaults("csv-tiny"), model="mlp", seed=seed, options=tuple(options.items()))
        return build(config, torch.device("cpu"))

    fixed = [setup(seed, 5).provenance["split"]["seed"] for seed in (0, 1)]
    assert fixed == [5, 5]
    assert [setup(seed, None).provenance["split"]["seed"] for seed in (0, 1)] == [0, 1]


def test_recipe_defaults_follow_the_paper_and_saint_code():
    from saflex_cli.families.tabular import defaults

    qsar, volkert = defaults("qsar"), defaults("volkert")
    assert (qsar.epochs, qsar.batch_size, qsar.optim.name, qsar.optim.lr) == (200, 256, "adamw", 1e-4)
    assert (qsar.saflex.beta, qsar.saflex.tau) == (1.0, 0.01)
    assert volkert.batch_size == 64  # SAINT's train.py beyond 100 features
