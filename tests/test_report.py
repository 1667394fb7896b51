"""The report's arithmetic, pooling and verdicts, on records whose numbers the test chooses."""
from __future__ import annotations

import dataclasses
import json

import pandas as pd
import pytest

from saflex_cli.config import RECORD_SCHEMA, RunConfig
from saflex_cli.errors import SaflexError
from saflex_cli.families.medmnist import defaults
from saflex_cli.reporting.comparison import paired_gain
from saflex_cli.reporting.report import write_report
from saflex_cli.store.records import write_record


def fake_record(out, aug, refine, seed, acc, dataset="dermamnist", family_defaults=defaults, saflex_stats=None,
                test_extra=None, provenance=None, **changes):
    config = dataclasses.replace(family_defaults(dataset), aug=aug, refine=refine, seed=seed, **changes)
    entry = {"epoch": 1, "train_time_s": 2.0, "val": {"acc": 0.5}, "test": {"acc": acc}}
    if saflex_stats:
        entry["saflex"] = saflex_stats
    test = {"acc": acc, **(test_extra or {})}
    record = {"status": "completed", "schema": RECORD_SCHEMA, "run_id": config.identity(), "run_name": config.run_name,
              "config": config.to_dict(), "epochs": [entry], "device": "cpu: test", "selections": {
                  "best_val_acc": {"epoch": 1, "val": {"acc": 0.5}, "test": test},
                  "last": {"epoch": 1, "val": {"acc": 0.5}, "test": {"acc": acc - 0.1}}}}
    if provenance is not None:
        record["data"] = provenance
    write_record(out, config, record)
    return config


def line_of(table: str, start: str) -> str:
    return next(line for line in table.splitlines() if line.startswith(start))


def test_cells_verdicts_and_paired_gains(tmp_path):
    # Paper, DermaMNIST: RandAug 73.71 ± 0.33, SAflex (w/ RandAug) 76.69 ± 0.33 (gain +2.98).
    for seed, acc in enumerate((0.7371, 0.7380, 0.7362)):
        fake_record(tmp_path, "randaug", "none", seed, acc)
    for seed, acc in enumerate((0.7000, 0.7010, 0.6990)):  # far below the paper, and a negative gain
        fake_record(tmp_path, "randaug", "saflex", seed, acc)
    csv_path, md_path = write_report(tmp_path, "medmnist")
    table = md_path.read_text()
    assert "73.71 ± 0.09 (3)" in line_of(table, "| RandAug |") and "Δ +0.00 ✓" in line_of(table, "| RandAug |")
    saflex_row = line_of(table, "| SAflex (w/ RandAug) |")
    assert "70.00 ± 0.10 (3)" in saflex_row and "Δ -6.69 ✗" in saflex_row
    gain = line_of(table, "| ResNet-18 | dermamnist | SAflex (w/ RandAug) | RandAug |")
    # Per-seed differences -3.71, -3.70, -3.72: an interval far below zero, which excludes the paper's gain.
    assert "| 3 | -3.71 |" in gain and "below zero: the paper's +2.98 is ruled out" in gain
    frame = pd.read_csv(csv_path)
    assert len(frame) == 6 and set(frame.seed) == {0, 1, 2}
    assert frame[frame.method == "RandAug"].paper_mean.unique().tolist() == [73.71]


def test_settings_are_never_pooled_as_seeds(tmp_path):
    """Two settings of one cell (another beta; other data) are rows of their own, n counts seeds."""
    for seed in (0, 1):
        fake_record(tmp_path, "randaug", "saflex", seed, 0.70)
        fake_record(tmp_path, "randaug", "saflex", seed, 0.60, saflex=dataclasses.replace(defaults("x").saflex, beta=1.0))
    fake_record(tmp_path, "randaug", "saflex", 0, 0.50, data_checksums=(("dermamnist.npz", "md5:aaa"),))
    fake_record(tmp_path, "randaug", "saflex", 0, 0.40, data_checksums=(("dermamnist.npz", "md5:bbb"),))
    _, md_path = write_report(tmp_path, "medmnist")
    table = md_path.read_text()
    assert "70.00 ± 0.00 (2)" in line_of(table, "| SAflex (w/ RandAug) [data unrecorded] |")
    assert "60.00 ± 0.00 (2)" in line_of(table, "| SAflex (w/ RandAug) [beta=1.0] |")
    assert "50.00 ± 0.00 (1)" in line_of(table, "| SAflex (w/ RandAug) [data dermamnist.npz aaa] |")
    assert "40.00 ± 0.00 (1)" in line_of(table, "| SAflex (w/ RandAug) [data dermamnist.npz bbb] |")


def test_a_sweep_row_pairs_with_the_upstream_run_of_its_own_training_settings(tmp_path):
    for seed, (up, ours) in enumerate(((0.70, 0.72), (0.71, 0.73), (0.69, 0.71))):
        fake_record(tmp_path, "randaug", "none", seed, up, epochs=5)
        fake_record(tmp_path, "randaug", "saflex", seed, ours, epochs=5,
                    saflex=dataclasses.replace(defaults("x").saflex, tau=0.1))
        fake_record(tmp_path, "randaug", "none", seed, 0.10, epochs=7)  # other training settings: not its pair
    table = write_report(tmp_path, "medmnist")[1].read_text()
    gain = line_of(table, "| ResNet-18 | dermamnist | SAflex (w/ RandAug) [epochs=5, tau=0.1] | RandAug [epochs=5] |")
    assert "| 3 | +2.00 |" in gain and "above zero" in gain


def test_paired_interval_on_constructed_differences():
    clear = paired_gain({0: 2.0, 1: 2.1, 2: 1.9}, {0: 1.0, 1: 1.0, 2: 1.0})
    assert clear.low > 0 and not clear.covers_zero
    noisy = paired_gain({0: 2.0, 1: 0.0, 2: 1.5}, {0: 1.0, 1: 1.0, 2: 1.0})
    assert noisy.covers_zero
    # t(0.975, 2) = 4.303: the half width of the interval of +1, -1, +0.5 around its mean.
    assert noisy.high - noisy.mean == pytest.approx(4.3027 * noisy.std / 3 ** 0.5, rel=1e-4)
    assert paired_gain({0: 1.0}, {1: 1.0}) is None and paired_gain({0: 1.0}, {0: 0.5}).n == 1


def test_selection_changes_the_numbers_and_an_unknown_one_is_refused(tmp_path):
    fake_record(tmp_path, "none", "none", 0, 0.8)
    _, best = write_report(tmp_path, "medmnist", selection="best_val_acc", name="best")
    _, last = write_report(tmp_path, "medmnist", selection="last", name="last")
    assert "80.00" in best.read_text() and "70.00" in last.read_text()
    with pytest.raises(SaflexError, match="no such checkpoint.*have: best_val_acc, last"):
        write_report(tmp_path, "medmnist", selection="best_val_auc")


def test_an_unknown_dataset_filter_is_refused(tmp_path):
    fake_record(tmp_path, "none", "none", 0, 0.8)
    with pytest.raises(SaflexError, match="--dataset foo: no medmnist records.*with records: dermamnist"):
        write_report(tmp_path, "medmnist", datasets={"dermamnist", "foo"})


def test_dataset_outside_the_paper_has_no_paper_value(tmp_path):
    fake_record(tmp_path, "none", "none", 0, 0.9, dataset="pneumoniamnist")
    _, md = write_report(tmp_path, "medmnist")
    assert "90.00 ± 0.00 (1) · paper —" in md.read_text()


def test_a_one_class_classifier_is_flagged(tmp_path):
    fake_record(tmp_path, "none", "none", 0, 0.625, test_extra={"top_prediction_share": 1.0})
    fake_record(tmp_path, "randaug", "none", 0, 0.70, test_extra={"top_prediction_share": 0.7})
    table = write_report(tmp_path, "medmnist")[1].read_text()
    assert "(1) ⚠" in line_of(table, "| No Aug |") and "⚠" not in line_of(table, "| RandAug |")
    assert "a degenerate classifier" in table


def test_lp_a3_is_shown_as_a_reference_row(tmp_path):
    fake_record(tmp_path, "none", "none", 0, 0.76)
    table = write_report(tmp_path, "medmnist")[1].read_text()
    assert "| LP-A3 (paper Table 8; not trained here) | paper 76.22 ± 0.27 | — |" in table


def test_table_7_rows_sit_beside_their_paper_values(tmp_path):
    # Paper Table 7, DermaMNIST: Crop 76.61 ± 0.14, Soft-Augmentation (w/ Crop) 77.05 ± 0.24; SAflex w/ Crop: none.
    for refine, acc in (("none", 0.7661), ("soft-aug", 0.7705), ("saflex", 0.7800)):
        fake_record(tmp_path, "crop", refine, 0, acc)
    table = write_report(tmp_path, "medmnist")[1].read_text()
    assert "76.61 ± 0.00 (1) · paper 76.61 ± 0.14 · Δ +0.00 ✓" in line_of(table, "| Crop |")
    assert "77.05 ± 0.00 (1) · paper 77.05 ± 0.24 · Δ +0.00 ✓" in line_of(table, "| Soft-Augmentation (w/ Crop) |")
    assert "78.00 ± 0.00 (1) · paper —" in line_of(table, "| SAflex (w/ Crop) |")
    rows = [line.split(" |")[0] for line in table.splitlines() if line.startswith("| ") and "paper" in line]
    assert rows[:3] == ["| Crop", "| Soft-Augmentation (w/ Crop)", "| SAflex (w/ Crop)"]  # the recipe's order
    assert "| ResNet-18 | dermamnist | Soft-Augmentation (w/ Crop) | Crop |" in table  # its gain over Crop
    assert "not trained here" in line_of(table, "| LP-A3") and "Crop (paper Table 7" not in table


def test_decisions_table_reports_saflex_statistics(tmp_path):
    stats = {"kept_fraction": 0.9, "changed_fraction": 0.4, "relabelled_among_correct": 0.3, "pi_margin": 12.5}
    fake_record(tmp_path, "randaug", "saflex", 0, 0.7, saflex_stats=stats)
    fake_record(tmp_path, "crop", "soft-aug", 0, 0.7)  # a refiner that records no decisions
    table = write_report(tmp_path, "medmnist")[1].read_text()
    row = line_of(table, "| ResNet-18 | dermamnist | SAflex (w/ RandAug) | 1 |")
    assert "| 90.0% | 40.0% | 30.0% | 12.50 |" in row
    decisions = table.split("## What the refinement decided")[1]
    assert "Soft-Augmentation" not in decisions


def test_incomplete_or_torn_records_are_ignored(tmp_path):
    fake_record(tmp_path, "none", "none", 0, 0.9)
    folder = tmp_path / "runs" / "medmnist"
    (folder / "torn.json").write_text('{"status": "compl')
    failure = {"status": "failed", "run_name": "x_seed3", "reason": "the training loss became NaN/inf",
               "epoch": 2, "step": 7, "config": {"dataset": "dermamnist"}}
    (folder / "failed.json").write_text(json.dumps(failure))
    csv_path, md_path = write_report(tmp_path, "medmnist")
    assert len(pd.read_csv(csv_path)) == 1
    assert "- `x_seed3`: the training loss became NaN/inf (epoch 2, step 7)" in md_path.read_text()


def test_records_of_an_older_schema_are_listed_not_read(tmp_path):
    fake_record(tmp_path, "none", "none", 0, 0.9)
    old = RunConfig.from_dict(defaults("dermamnist").to_dict()).to_dict()
    old["saflex"]["enabled"] = False  # schema 1 had this field
    record = {"status": "completed", "schema": 1, "run_name": "old_seed0", "config": old, "epochs": []}
    (tmp_path / "runs" / "medmnist" / "old_seed0_x.json").write_text(json.dumps(record))
    table = write_report(tmp_path, "medmnist")[1].read_text()
    assert "1 record(s) of another record schema are not read (e.g. old_seed0)" in table


def test_a_setting_the_identity_leaves_out_is_not_in_the_label(tmp_path):
    fake_record(tmp_path, "randaug", "saflex", 0, 0.7, train_mode="replace")  # pi_forward is not read then
    fake_record(tmp_path, "randaug", "saflex", 0, 0.6)
    table = write_report(tmp_path, "medmnist")[1].read_text()
    assert "| SAflex (w/ RandAug) [train_mode=replace] |" in table and "pi_forward" not in table


def test_each_setting_is_one_line_with_both_paired_gains_and_its_decisions(tmp_path):
    for seed, (none, up, ours) in enumerate(((0.60, 0.70, 0.75), (0.61, 0.71, 0.77), (0.62, 0.69, 0.74))):
        fake_record(tmp_path, "none", "none", seed, none)
        fake_record(tmp_path, "randaug", "none", seed, up)
        fake_record(tmp_path, "randaug", "saflex", seed, ours, saflex_stats={"kept_fraction": 0.5, "pi_margin": 3.0})
    table = write_report(tmp_path, "medmnist")[1].read_text()
    line = line_of(table, "| ResNet-18 | dermamnist | SAflex (w/ RandAug) | 3 | 75.33 ± 1.53 |")
    assert "| +5.33 [" in line and "| +14.33 [" in line and line.endswith("| 50.0% | 3.00 |")
    assert "| — | +9.00 [" in line_of(table, "| ResNet-18 | dermamnist | RandAug | 3 |")  # 10, 10, 7


def test_a_changed_choice_pairs_with_the_papers_saflex_of_its_own_training_settings(tmp_path):
    beta_one = dataclasses.replace(defaults("x").saflex, beta=1.0)
    for seed, (paper, changed, labels, other_epochs) in enumerate(((0.70, 0.73, 0.68, 0.10), (0.71, 0.75, 0.70, 0.20),
                                                                  (0.69, 0.72, 0.66, 0.30))):
        fake_record(tmp_path, "randaug", "saflex", seed, paper)
        fake_record(tmp_path, "randaug", "saflex", seed, changed, saflex=beta_one)
        fake_record(tmp_path, "randaug", "saflex-labels", seed, labels)
        fake_record(tmp_path, "randaug", "saflex", seed, other_epochs, epochs=5)  # other training: not the pair
        fake_record(tmp_path, "randaug", "saflex", seed, other_epochs + 0.05, epochs=5, saflex=beta_one)
    table = write_report(tmp_path, "medmnist")[1].read_text()
    # Per-seed differences +3, +4, +3; -2, -1, -3; and +5 on the 5-epoch pair.
    assert "| +3.33 [" in line_of(table, "| ResNet-18 | dermamnist | SAflex (w/ RandAug) [beta=1.0] | 3 |")
    assert "| -2.00 [" in line_of(table, "| ResNet-18 | dermamnist | SAflex labels only (w/ RandAug) | 3 |")
    assert "| +5.00 [" in line_of(table, "| ResNet-18 | dermamnist | SAflex (w/ RandAug) [epochs=5, beta=1.0] | 3 |")
    assert "| — |" in line_of(table, "| ResNet-18 | dermamnist | SAflex (w/ RandAug) | 3 |")  # the paper's own row
    gain = line_of(table, "| ResNet-18 | dermamnist | SAflex (w/ RandAug) [beta=1.0] | SAflex (w/ RandAug) |")
    assert "| 3 | +3.33 |" in gain and "| — |" in gain  # the paper has no value for a changed choice


def test_the_settings_table_has_as_many_cells_as_columns_when_nothing_was_refined(tmp_path):
    for seed in range(2):
        fake_record(tmp_path, "none", "none", seed, 0.60 + seed / 100)
        fake_record(tmp_path, "randaug", "none", seed, 0.70)
    table = write_report(tmp_path, "medmnist")[1].read_text()
    section = table.split("## Each setting against its counterparts")[1].split("## ")[0]
    rows = [line for line in section.splitlines() if line.startswith("|")]
    assert len(rows) == 3 and len({line.count("|") for line in rows}) == 1


def test_the_claims_section_reads_the_papers_two_claims_at_its_settings_only(tmp_path):
    """Upstream vs No Aug and SAflex vs its upstream at the paper's settings; a changed choice (beta) is
    a row of the other tables, not a decision on the paper's claim."""
    beta_one = dataclasses.replace(defaults("x").saflex, beta=1.0)
    for seed, (noaug, randaug, saflex) in enumerate(((0.70, 0.72, 0.76), (0.71, 0.72, 0.77), (0.69, 0.71, 0.75))):
        fake_record(tmp_path, "none", "none", seed, noaug)
        fake_record(tmp_path, "randaug", "none", seed, randaug)
        fake_record(tmp_path, "randaug", "saflex", seed, saflex)
        fake_record(tmp_path, "randaug", "saflex", seed, saflex - 0.05, saflex=beta_one)
    _, md_path = write_report(tmp_path, "medmnist")
    claims = md_path.read_text().split("## Decisions on the paper's claims")[1].split("\n## ")[0]
    rows = [line for line in claims.splitlines() if line.startswith("| ResNet-18")]
    assert len(rows) == 2 and "beta" not in claims
    saflex = line_of(claims, "| ResNet-18 | dermamnist | SAflex vs its upstream | SAflex (w/ RandAug) | RandAug | 3 |")
    assert "+4.33" in saflex and "| +2.98 | reproduced" in saflex  # the paper's DermaMNIST gain: 76.69 - 73.71
    pattern = line_of(claims, "| ResNet-18 | dermamnist | upstream vs No Aug | RandAug | No Aug | 3 |")
    assert "+1.67" in pattern
