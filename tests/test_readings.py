"""What a paired gain decides about the paper's gain (readings.py), on intervals and on records
whose numbers the test chooses; the MedMNIST v2 row and the superseded reduced copy in the report."""
from __future__ import annotations

import math
from pathlib import Path

import pandas as pd
import pytest
from scipy import stats

from saflex_cli.reporting.readings import Reference, read_gain, reference_gain, seeds_to_decide
from saflex_cli.reporting.comparison import paired_gain
from saflex_cli.reporting.paper import paper_tables, resource_table
from saflex_cli.reporting.report import write_report
from test_report import fake_record, line_of

PAPER = Reference(1.0, "")
SHARED_BENCHMARK = Path(__file__).resolve().parents[2] / "shared" / "paper" / "medmnist_v2_benchmark.csv"


@pytest.mark.parametrize("low, high, decision, text", [
    (0.5, 1.5, "reproduced", "reproduced: above zero; the paper's +1.00 lies inside the interval"),
    (0.2, 0.8, "reproduced", "reproduced: above zero; the paper's +1.00 lies above the interval"),
    (1.2, 1.8, "reproduced", "reproduced: above zero; the paper's +1.00 lies below the interval"),
    (-0.9, -0.1, "below zero", "below zero: the paper's +1.00 is ruled out"),
    (-0.3, 0.7, "ruled out", "ruled out: the paper's +1.00 lies above the interval, which holds zero"),
    (-0.5, 1.5, "undecided", "undecided: the interval holds 0 and the paper's +1.00"),
])
def test_each_reading_of_a_positive_paper_gain(low, high, decision, text):
    reading = read_gain(low, high, PAPER, 1.0, 3)
    assert reading.decision == decision and reading.text.startswith(text)
    assert (reading.seeds_to_decide is not None) == (decision == "undecided")


@pytest.mark.parametrize("low, high, decision, text", [
    (-1.5, -0.5, "reproduced", "reproduced: below zero; the paper's -1.00 lies inside the interval"),
    (-0.8, -0.2, "reproduced", "reproduced: below zero; the paper's -1.00 lies below the interval"),
    (0.1, 0.9, "above zero", "above zero: the paper's -1.00 is ruled out"),
    (-0.7, 0.3, "ruled out", "ruled out: the paper's -1.00 lies below the interval, which holds zero"),
    (-1.5, 0.5, "undecided", "undecided: the interval holds 0 and the paper's -1.00"),
])
def test_a_negative_paper_gain_mirrors_the_readings(low, high, decision, text):
    reading = read_gain(low, high, Reference(-1.0, ""), 1.0, 3)
    assert reading.decision == decision and reading.text.startswith(text)


def test_without_a_reference_or_an_interval_only_zero_is_read():
    assert read_gain(0.1, 0.9, None, 1.0, 3).decision == "above zero"
    assert read_gain(-0.9, 0.9, None, 1.0, 3).decision == "not distinguishable from zero"
    assert read_gain(math.nan, math.nan, PAPER, math.nan, 1).text == "one seed: no interval"


@pytest.mark.parametrize("spread, gain", [(1.0, 1.0), (0.4, -0.73), (2.5, 0.2), (0.05, 3.0)])
def test_seeds_to_decide_is_the_least_n_whose_t_interval_is_narrower_than_the_gain(spread, gain):
    half = lambda n: stats.t.ppf(0.975, n - 1) * spread / n ** 0.5  # noqa: E731
    n = next(n for n in range(2, 100_000) if half(n) < abs(gain) / 2)
    assert seeds_to_decide(spread, gain) == n
    # and at that n an interval centred anywhere cannot hold both 0 and the gain
    assert 2 * half(n) < abs(gain) <= 2 * half(n - 1) or n == 2


def test_seeds_to_decide_in_an_undecided_reading():
    gain = paired_gain({0: 1.5, 1: -0.5, 2: 1.0}, {0: 0.0, 1: 0.0, 2: 0.0})
    reading = read_gain(gain.low, gain.high, PAPER, gain.std, gain.n)
    assert reading.decision == "undecided" and reading.seeds_to_decide == seeds_to_decide(gain.std, 1.0)
    assert f"{reading.seeds_to_decide} seeds would decide it" in reading.text


def table1_gains(method: str, versus: str) -> pd.Series:
    table = paper_tables()
    table = table[(table.table == 1) & (table.model == "ResNet-18")].pivot(index="column", columns="method", values="mean")
    return (table[method] - table[versus]).dropna()


def test_the_reference_gain_is_the_papers_own_or_its_smallest_for_the_comparison():
    own = reference_gain((1, 7, 8), "SAflex (w/ RandAug)", "RandAug", "ResNet-18", "dermamnist")
    assert own.source == "" and own.gain == table1_gains("SAflex (w/ RandAug)", "RandAug")["dermamnist"]
    gains = table1_gains("SAflex (w/ Mixup)", "Mixup")
    assert (gains > 0).all()
    reference = reference_gain((1, 7, 8), "SAflex (w/ Mixup)", "Mixup", "ResNet-18", "breastmnist")
    assert reference.gain == gains.min() and reference.source.endswith(f"Table 1, {gains.idxmin()}")
    # The upstream pattern: every Table 1 gain of RandAug over No Aug is negative; the smallest in size.
    gains = table1_gains("RandAug", "No Aug")
    assert (gains < 0).all()
    assert reference_gain((1, 7, 8), "RandAug", "No Aug", "ResNet-18", "pneumoniamnist").gain == gains.max()
    # SAflex over No Aug changes sign across Table 1: no claim to read against.
    assert (table1_gains("SAflex (w/ RandAug)", "No Aug") < 0).any()
    assert reference_gain((1, 7, 8), "SAflex (w/ RandAug)", "No Aug", "ResNet-18", "pneumoniamnist") is None


def gain_line(table: str, row: str, versus: str, dataset: str) -> str:
    return line_of(table, f"| ResNet-18 | {dataset} | {row} | {versus} |")


def test_the_report_reads_each_gain_of_chosen_records(tmp_path):
    # DermaMNIST (the paper: No Aug 76.14, RandAug 73.71, SAflex (w/ RandAug) 76.69, Mixup 75.22, SAflex (w/ Mixup) 76.94)
    for seed, (noaug, randaug, saflex, mixup, saflex_mixup) in enumerate((
            (0.760, 0.735, 0.765, 0.740, 0.750), (0.762, 0.736, 0.764, 0.739, 0.760), (0.761, 0.737, 0.766, 0.745, 0.732))):
        for aug, refine, acc in (("none", "none", noaug), ("randaug", "none", randaug), ("randaug", "saflex", saflex),
                                 ("mixup", "none", mixup), ("mixup", "saflex", saflex_mixup)):
            fake_record(tmp_path, aug, refine, seed, acc)
    # PneumoniaMNIST, not in the paper: Mixup's row is read against Table 1's smallest SAflex-over-Mixup gain.
    for seed, (mixup, saflex) in enumerate(((0.80, 0.83), (0.81, 0.80), (0.82, 0.84))):
        fake_record(tmp_path, "mixup", "none", seed, mixup, dataset="pneumoniamnist")
        fake_record(tmp_path, "mixup", "saflex", seed, saflex, dataset="pneumoniamnist")
    csv_path, md_path = write_report(tmp_path, "medmnist")
    table = md_path.read_text()
    # SAflex (w/ RandAug) - RandAug: +3.0, +2.8, +2.9 points: [+2.65, +3.15] holds the paper's +2.98.
    assert "reproduced: above zero; the paper's +2.98 lies inside" in gain_line(table, "SAflex (w/ RandAug)", "RandAug", "dermamnist")
    # RandAug - No Aug: -2.5, -2.6, -2.4; the paper's -2.43: reproduced, mirrored.
    assert "reproduced: below zero; the paper's -2.43 lies inside" in gain_line(table, "RandAug", "No Aug", "dermamnist")
    # SAflex (w/ Mixup) - Mixup: +1.0, +2.1, -1.3: holds 0 and the paper's +1.72.
    undecided = gain_line(table, "SAflex (w/ Mixup)", "Mixup", "dermamnist")
    assert "undecided: the interval holds 0 and the paper's +1.72" in undecided
    gains = pd.read_csv(csv_path.with_name("medmnist_gains.csv"))
    derma = gains[(gains.column == "dermamnist") & (gains.method == "SAflex (w/ Mixup)") & (gains.kind == "upstream")].iloc[0]
    assert derma.decision == "undecided" and derma.seeds_to_decide == seeds_to_decide(derma.gain_std, derma.paper_gain)
    # Mixup - No Aug: -2.0, -2.3, -1.6 against the paper's -0.92: below it, so the paper's gain is ruled out.
    assert "reproduced: below zero; the paper's -0.92 lies above the interval" in gain_line(table, "Mixup", "No Aug", "dermamnist")
    reference = table1_gains("SAflex (w/ Mixup)", "Mixup")
    pneumonia = gain_line(table, "SAflex (w/ Mixup)", "Mixup", "pneumoniamnist")
    assert f"| {reference.min():+.2f} ref. |" in pneumonia and f"Table 1, {reference.idxmin()})" in pneumonia
    row = gains[(gains.column == "pneumoniamnist") & (gains.kind == "upstream")].iloc[0]
    assert pd.isna(row.paper_gain) and row.reference_gain == reference.min() and row.decision == "undecided"
    # The settings table, which the findings page shows, carries the decision after each interval.
    settings = line_of(table, "| ResNet-18 | dermamnist | SAflex (w/ RandAug) | 3 |")
    assert "] reproduced |" in settings
    settings = line_of(table, "| ResNet-18 | dermamnist | SAflex (w/ Mixup) | 3 |")
    assert f"] undecided ({seeds_to_decide(derma.gain_std, derma.paper_gain)} seeds decide) |" in settings


def test_a_tabular_fixed_split_gain_is_ruled_out_against_table_2(tmp_path):
    from saflex_cli.families.tabular import defaults as tabular_defaults
    # Shrutime's MLP (the paper: CutMix 86.39, SAflex 86.90): -0.7, -0.8, -0.7 points rule +0.51 out.
    for seed, (cutmix, saflex) in enumerate(((0.850, 0.843), (0.851, 0.843), (0.852, 0.845))):
        for refine, acc in (("none", cutmix), ("saflex", saflex)):
            fake_record(tmp_path, "cutmix", refine, seed, acc, dataset="shrutime", family_defaults=tabular_defaults,
                        model="mlp", provenance={})  # no classes recorded: the report reads accuracy
    table = write_report(tmp_path, "tabular")[1].read_text()
    row = line_of(table, "| MLP | shrutime | SAflex (w/ CutMix) | CutMix |")
    assert "below zero: the paper's +0.51 is ruled out" in row


def test_the_medmnist_v2_row_stands_beside_no_aug_and_the_reduced_copy_is_superseded(tmp_path):
    official = {"release": "current", "md5": "28209eda62fecd6e6a2d98b1501bb15f"}
    reduced = {"release": "unverified", "md5": "3062d8c693378b506564f35a50301b11"}
    for seed in (0, 1):
        fake_record(tmp_path, "none", "none", seed, 0.85, dataset="pneumoniamnist", provenance=official,
                    data_checksums=(("pneumoniamnist.npz", "md5:28209eda62fecd6e6a2d98b1501bb15f"),))
        fake_record(tmp_path, "none", "none", seed, 0.83, dataset="pneumoniamnist", provenance=reduced, epochs=5,
                    options=(("as_rgb", True), ("size", 28), ("skip_md5", True)),
                    data_checksums=(("pneumoniamnist.npz", "md5:3062d8c693378b506564f35a50301b11"),))
        fake_record(tmp_path, "mixup", "none", seed, 0.86, dataset="pneumoniamnist", provenance=official,
                    data_checksums=(("pneumoniamnist.npz", "md5:28209eda62fecd6e6a2d98b1501bb15f"),))
    table = write_report(tmp_path, "medmnist")[1].read_text()
    rows = [line for line in table.splitlines() if line.startswith("| ")]
    benchmark = resource_table("medmnist_v2_benchmark.csv")
    published = benchmark[(benchmark.model == "ResNet-18 (28)") & (benchmark.dataset == "pneumoniamnist")].iloc[0]
    expected = f"| No Aug, MedMNIST v2 benchmark (Yang et al. 2023, Table 3; not trained here) | " \
               f"{100 * published.test_acc:.2f} (AUC {published.test_auc:.3f}) | — |"
    position = rows.index(expected)
    assert rows[position - 1].startswith("| No Aug") and rows[position + 1].startswith("| Mixup")
    superseded = line_of(table, "| No Aug [epochs=5, skip_md5=True, unofficial pneumoniamnist.npz 3062d8c6 "
                                "(superseded by the official file)] |")
    assert "83.00 ± 0.00 (2)" in superseded and "85.00 ± 0.00 (2)" in line_of(table, "| No Aug | ")


def test_the_reduced_copy_alone_is_not_called_superseded(tmp_path):
    fake_record(tmp_path, "none", "none", 0, 0.83, dataset="pneumoniamnist",
                provenance={"release": "unverified"}, data_checksums=(("pneumoniamnist.npz", "md5:3062d8c6"),))
    assert "superseded" not in write_report(tmp_path, "medmnist")[1].read_text()


@pytest.mark.skipif(not SHARED_BENCHMARK.exists(), reason="../shared/paper is not on this machine")
def test_the_shipped_benchmark_is_the_published_one():
    shipped = resource_table("medmnist_v2_benchmark.csv")
    assert shipped.drop(columns="source").equals(pd.read_csv(SHARED_BENCHMARK)) and shipped.source.str.contains("MedMNIST v2").all()
