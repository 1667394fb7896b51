"""End to end: `saflex tabular` on a tiny CSV, its records, and `saflex report` rendering them."""
from __future__ import annotations

import json
import sys

import numpy as np
import pandas as pd
import pytest
from test_tabular_data import write_arrhythmia_twin
from typer.testing import CliRunner

from saflex_cli.cli import app, main
from saflex_cli.families.tabular import RECIPE, cells
from saflex_cli.reporting.paper import paper_value


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
    from saflex_cli.families.tabular import batch_for_width, defaults

    qsar = defaults("qsar")
    assert (qsar.epochs, qsar.batch_size, qsar.optim.name, qsar.optim.lr) == (200, 256, "adamw", 1e-4)
    assert (qsar.saflex.beta, qsar.saflex.tau) == (1.0, 0.01)
    assert (batch_for_width(100), batch_for_width(101)) == (256, 64)  # SAINT's train.py: beyond 100 features


def write_table(path, n_features: int, rows: int = 40):
    rng = np.random.default_rng(n_features)
    frame = pd.DataFrame(rng.normal(size=(rows, n_features)), columns=[f"f{i}" for i in range(n_features)])
    frame.assign(label=np.arange(rows) % 2).to_csv(path, index=False)
    return path


@pytest.fixture
def planned(monkeypatch):
    """The configs `saflex tabular` would run, without running them."""
    from saflex_cli.cli import shared

    seen = []
    monkeypatch.setattr(shared, "execute", lambda configs, *rest: seen.extend(configs))

    def plan(*args):
        seen.clear()
        result = CliRunner().invoke(app, ["tabular", "--model", "saint", "--aug", "cutmix", "--saflex", "--seeds", "0",
                                          *map(str, args)])
        assert result.exit_code == 0, result.output + repr(result.exception)
        return [(c.batch_size, c.saflex.val_batch_size) for c in seen]
    return plan


def test_batch_follows_the_feature_count_and_explicit_flags_win(tmp_path, planned):
    wide, narrow = write_table(tmp_path / "wide.csv", 120), write_table(tmp_path / "narrow.csv", 20)
    assert planned("--csv", wide, "--target", "label") == [(64, 64)]
    assert planned("--csv", narrow, "--target", "label") == [(256, 256)]
    assert planned("--csv", wide, "--target", "label", "--batch-size", 32) == [(32, 64)]
    assert planned("--csv", narrow, "--target", "label", "--batch-size", 32, "--val-batch-size", 16) == [(32, 16)]
    # dropping 20 of the 120 columns leaves 100: the rule counts the columns the model sees
    assert planned("--csv", wide, "--target", "label", "--drop", ",".join(f"f{i}" for i in range(20))) == [(256, 256)]
    (tmp_path / "tabular").mkdir()
    write_arrhythmia_twin(tmp_path / "tabular" / "arrhythmia.mat")  # a Table 2 dataset: by its loaded width, not its name
    assert planned("--dataset", "arrhythmia", "--data-root", tmp_path) == [(64, 64)]


def test_csv_settings_reach_the_config_the_record_and_the_console(tmp_path):
    rng = np.random.default_rng(5)
    rows = 60
    x = rng.normal(size=rows)
    frame = pd.DataFrame({"id": np.arange(rows), "city": rng.choice(["a", "b"], rows), "x": x.round(3).astype(str),
                          "z": rng.normal(size=rows), "y": (x > 0).astype(int)})
    frame.loc[[2, 9, 30], "x"] = "?"
    path = tmp_path / "bare.csv"
    frame.to_csv(path, index=False, header=False)
    out = tmp_path / "results"
    result = CliRunner().invoke(app, ["tabular", "--model", "mlp", "--csv", str(path), "--no-header", "--target", "4",
                                      "--drop", "0", "--na-values", "?", "--categorical", "1", "--aug", "none",
                                      "--seeds", "0", "--epochs", "1", "--out", str(out), "--device", "cpu", "--quiet"])
    assert result.exit_code == 0, result.output + repr(result.exception)
    assert "csv-bare: imputed 3 missing cell(s) in 1 column(s): 2 3 (train mean)" in " ".join(result.output.split())
    record, = [json.loads(p.read_text()) for p in (out / "runs" / "tabular").glob("*.json")]
    options = dict(record["config"]["options"])
    assert (options["no_header"], options["na_values"], options["drop"], options["categorical"]) == (True, ["?"], ["0"], ["1"])
    assert record["data"]["imputed"] == {"2": {"cells": 3, "filled_with": "train mean"}}
    assert record["data"]["batch_rule"] == {"features": 3, "batch_by_rule": 256}
    assert record["config"]["batch_size"] == 256


def test_imputation_line_names_a_few_columns_and_counts_the_rest():
    from saflex_cli.families.tabular import imputation_line

    imputed = {f"c{i}": {"cells": i + 1, "filled_with": "train mean"} for i in range(6)}
    line = imputation_line("t", imputed)
    assert line.startswith("t: imputed 21 missing cell(s) in 6 column(s): c0 1 (train mean), c1 2 (train mean)")
    assert "c3 4 (train mean), and 2 more column(s)" in line and "c4" not in line
    assert imputation_line("t", {}) is None


@pytest.mark.parametrize("args, message", [
    (("--csv", "{inf}", "--target", "churn"), "column 'x' has an infinite value (inf) in data row 4"),
    (("--drop", "x"), "--target, --categorical, --na-values, --no-header, --drop and --positive describe a --csv table"),
    (("--positive", "yes"), "--target, --categorical, --na-values, --no-header, --drop and --positive describe a --csv"),
    (("--csv", "{csv}", "--target", "churn", "--categorical", "x"), "column 'city' holds text"),
])
def test_bad_table_input_is_one_line_exit_2_and_nothing_written(tiny_csv, tmp_path, monkeypatch, capsys, args, message):
    frame = pd.read_csv(tiny_csv)
    frame.loc[3, "x"] = np.inf
    frame.to_csv(tmp_path / "inf.csv", index=False)
    args = [a.format(inf=tmp_path / "inf.csv", csv=tiny_csv) for a in args]
    out = tmp_path / "results"
    monkeypatch.setattr(sys, "argv", ["saflex", "tabular", *args, "--out", str(out), "--seeds", "0"])
    with pytest.raises(SystemExit) as exit_info:
        main()
    err = capsys.readouterr().err
    assert exit_info.value.code == 2 and message in " ".join(err.split()) and "Traceback" not in err
    assert not out.exists()


def test_load_lines_count_constant_columns_and_flag_features_beyond_the_bound():
    from saflex_cli.families.tabular import bound_line, constant_line

    assert constant_line("arrhythmia", {"rule": "unscaled", "count": 2, "columns": ["x81", "x122"]}) == (
        "arrhythmia: 2 column(s) constant in the training rows, left unscaled (scale 1): x81, x122 "
        "(data.constant_in_train)")
    assert constant_line("qsar", {"rule": "unscaled", "count": 0, "columns": []}) is None
    line = bound_line("arrhythmia", {"val": 1.6e7, "test": 4e7, "bound": 100.0})
    assert line.startswith("arrhythmia: standardised features reach 1.6e+07 in val, 4e+07 in test (bound 100)")
    assert bound_line("arrhythmia", {"val": 85.8, "test": 100.0, "bound": 100.0}) is None


def write_rare_column_table(path, seed: int = 0, rare: bool = True):
    """A CSV whose column 'rare' is 0 in every training row of the seed's split (one test row holds 40);
    without it (rare=False), no column is constant."""
    from saflex_cli.data.tabular import stratified_split

    rng = np.random.default_rng(1)
    label = np.arange(60) % 3 == 0
    frame = pd.DataFrame({"x": rng.normal(size=60), "rare": 0.0, "label": np.where(label, "yes", "no")})
    if rare:
        frame.loc[stratified_split(label.astype(np.int64), seed)["test"][0], "rare"] = 40.0
    (frame if rare else frame.drop(columns="rare")).to_csv(path, index=False)
    return path


def test_constant_rule_enters_the_identity_only_of_runs_it_touches(tmp_path):
    import dataclasses

    from saflex_cli.errors import SaflexError
    from saflex_cli.families.tabular import defaults
    from saflex_cli.runs.fingerprint import data_checksums, with_data_checksums

    def config(path, seed=0, **options):
        base = defaults("csv-t")
        options = {**dict(base.options), "csv": str(path), "target": "label", **options}
        return dataclasses.replace(base, model="mlp", seed=seed, options=tuple(options.items()))

    plain = write_rare_column_table(tmp_path / "plain.csv", rare=False)
    for rule in ({}, {"constant_columns": "floor"}):  # the rule touches no column: the run is as before
        settled, = with_data_checksums([config(plain, **rule)])
        assert settled == dataclasses.replace(config(plain), data_checksums=data_checksums(config(plain)))
    touched = write_rare_column_table(tmp_path / "touched.csv")
    default, floor, = with_data_checksums([config(touched), config(touched, constant_columns="floor")])
    assert default.option("constant_columns") == "unscaled" and floor.option("constant_columns") == "floor"
    unsettled = dataclasses.replace(config(touched), data_checksums=default.data_checksums)
    assert len({unsettled.identity(), default.identity(), floor.identity()}) == 3
    with pytest.raises(SaflexError, match="options.constant_columns = 'drop' is not one of: unscaled, floor"):
        with_data_checksums([config(plain, constant_columns="drop")])


ODDS_POSITIVE = "3,4,5,7,8,9,14,15"  # UCI Arrhythmia's class codes that ODDS's arrhythmia.mat makes its outliers
# UCI's 16 class codes (11-13 have no row there either), with rows per code: 8 has 2, as in the real file
UCI_CLASS_ROWS = {1: 28, 2: 8, 3: 4, 4: 3, 5: 3, 6: 3, 7: 3, 8: 2, 9: 3, 10: 4, 14: 3, 15: 3, 16: 3}


def write_uci_arrhythmia_twin(path):
    """UCI's arrhythmia.data layout: no header, ',' separated, '?' for a missing cell, integer and
    decimal measurements (age, sex, height, weight, QRS ms, T angle, an amplitude), the class code last."""
    rng = np.random.default_rng(7)
    codes = rng.permutation(np.repeat(list(UCI_CLASS_ROWS), list(UCI_CLASS_ROWS.values())))
    lines = []
    for i, code in enumerate(codes):
        t_angle = "?" if i % 9 == 0 else str(rng.integers(-180, 180))
        lines.append(f"{rng.integers(20, 80)},{rng.integers(0, 2)},{rng.integers(150, 190)},{rng.integers(50, 100)},"
                     f"{rng.integers(70, 120) + 10 * (code != 1)},{t_angle},{rng.normal(0.5, 0.3):.1f},{code}")
    path.write_text("\n".join(lines) + "\n")
    return path


def test_positive_makes_a_raw_multiclass_file_the_papers_binary_task(tmp_path, monkeypatch, capsys):
    data = write_uci_arrhythmia_twin(tmp_path / "arrhythmia.data")
    out = tmp_path / "results"
    raw = ["tabular", "--model", "mlp", "--csv", str(data), "--no-header", "--target", "7", "--na-values", "?",
           "--aug", "none", "--seeds", "0", "--epochs", "1", "--out", str(out), "--device", "cpu", "--quiet"]

    def refusal(*args) -> str:
        monkeypatch.setattr(sys, "argv", ["saflex", *raw, *args])
        with pytest.raises(SystemExit) as exit_info:
            main()
        assert exit_info.value.code == 2 and not out.exists()
        return " ".join(capsys.readouterr().err.split())

    assert "class '8' has only 2 row(s)" in refusal() and "make the task binary with --positive VALUES" in refusal()
    assert "--positive names value(s) 99 that the target column '7' never holds" in refusal("--positive", "3,99")

    result = CliRunner().invoke(app, raw + ["--positive", ODDS_POSITIVE])
    assert result.exit_code == 0, result.output + repr(result.exception)
    record, = [json.loads(p.read_text()) for p in (out / "runs" / "tabular").glob("*.json")]
    positives = sum(UCI_CLASS_ROWS[int(code)] for code in ODDS_POSITIVE.split(","))
    assert dict(record["config"]["options"])["positive"] == ODDS_POSITIVE.split(",")
    assert record["data"]["positive"] == ODDS_POSITIVE.split(",")
    assert record["data"]["classes"] == ["negative", "positive"]
    assert record["data"]["class_counts"] == [sum(UCI_CLASS_ROWS.values()) - positives, positives]
    assert "auc" in record["selections"]["best_val_acc"]["test"]  # a binary task: its AUROC is reported
