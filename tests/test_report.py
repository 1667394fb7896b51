"""The report's arithmetic and verdicts, on records whose numbers the test chooses."""
from __future__ import annotations

import json

import pandas as pd

from saflex_cli.config import RunConfig
from saflex_cli.families.medmnist import defaults
from saflex_cli.records import write_record
from saflex_cli.report import upstream_row, write_report


def fake_record(out, aug, saflex, seed, acc, dataset="dermamnist"):
    base = defaults(dataset)
    config = RunConfig.from_dict({**base.to_dict(), "aug": aug, "seed": seed,
                                  "saflex": {**base.to_dict()["saflex"], "enabled": saflex}})
    entry = {"epoch": 1, "train_time_s": 2.0, "val": {"acc": 0.5}, "test": {"acc": acc}}
    record = {"status": "completed", "schema": 1, "run_id": config.identity(), "config": config.to_dict(),
              "epochs": [entry], "device": "cpu: test", "selections": {
                  "best_val_acc": {"epoch": 1, "val": {"acc": 0.5}, "test": {"acc": acc}},
                  "last": {"epoch": 1, "val": {"acc": 0.5}, "test": {"acc": acc - 0.1}}}}
    write_record(out, config, record)


def test_upstream_row_names():
    assert upstream_row("SAflex (w/ RandAug)") == "RandAug"
    assert upstream_row("FLYP+SAflex (w/ RandAug)") == "FLYP+RandAug"
    assert upstream_row("Mixup") is None


def test_cells_verdicts_and_gain_signs(tmp_path):
    # Paper, DermaMNIST: RandAug 73.71 ± 0.33, SAflex (w/ RandAug) 76.69 ± 0.33 (gain +2.98).
    for seed, acc in enumerate((0.7371, 0.7380, 0.7362)):
        fake_record(tmp_path, "randaug", False, seed, acc)
    for seed, acc in enumerate((0.7000, 0.7010, 0.6990)):  # far below the paper, and a negative gain
        fake_record(tmp_path, "randaug", True, seed, acc)
    csv_path, md_path = write_report(tmp_path, "medmnist")
    table = md_path.read_text()
    randaug_row = next(line for line in table.splitlines() if line.startswith("| RandAug |"))
    assert "73.71 ± 0.09 (3)" in randaug_row and "Δ +0.00 ✓" in randaug_row
    saflex_row = next(line for line in table.splitlines() if line.startswith("| SAflex (w/ RandAug) |"))
    assert "70.00 ± 0.10 (3)" in saflex_row and "Δ -6.69 ✗" in saflex_row
    assert "dermamnist -3.71 (paper +2.98) ✗" in table
    frame = pd.read_csv(csv_path)
    assert len(frame) == 6 and set(frame.seed) == {0, 1, 2}
    assert frame[frame.method == "RandAug"].paper_mean.unique().tolist() == [73.71]


def test_selection_changes_the_numbers(tmp_path):
    fake_record(tmp_path, "none", False, 0, 0.8)
    _, best = write_report(tmp_path, "medmnist", selection="best_val_acc", name="best")
    _, last = write_report(tmp_path, "medmnist", selection="last", name="last")
    assert "80.00" in best.read_text() and "70.00" in last.read_text()


def test_dataset_outside_the_paper_has_no_paper_value(tmp_path):
    fake_record(tmp_path, "none", False, 0, 0.9, dataset="pneumoniamnist")
    _, md = write_report(tmp_path, "medmnist")
    assert "90.00 ± 0.00 (1) · paper —" in md.read_text()


def test_incomplete_or_torn_records_are_ignored(tmp_path):
    fake_record(tmp_path, "none", False, 0, 0.9)
    folder = tmp_path / "runs" / "medmnist"
    (folder / "torn.json").write_text('{"status": "compl')
    failure = {"status": "failed", "run_name": "x_seed3", "reason": "the training loss became NaN/inf",
               "epoch": 2, "step": 7, "config": {"dataset": "dermamnist"}}
    (folder / "failed.json").write_text(json.dumps(failure))
    csv_path, md_path = write_report(tmp_path, "medmnist")
    assert len(pd.read_csv(csv_path)) == 1
    assert "- `x_seed3`: the training loss became NaN/inf (epoch 2, step 7)" in md_path.read_text()
