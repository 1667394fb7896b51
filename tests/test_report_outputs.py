"""The report's LaTeX table, tidy summary CSV and plots, on records whose numbers the test chooses."""
from __future__ import annotations

import importlib.util
import json
import re

import pandas as pd
import pytest

from saflex_cli.errors import SaflexError
from saflex_cli.reporting import plots
from saflex_cli.reporting.latex import escape
from saflex_cli.reporting.report import write_report
from saflex_cli.store.records import record_path, write_record
from test_report import fake_record, line_of

# (aug, refine, seed, test acc, per-epoch val acc, kept, relabelled)
RUNS = [("randaug", "none", 0, 0.7371, (0.50, 0.60, 0.70), None, None),
        ("randaug", "none", 1, 0.7380, (0.52, 0.62, 0.66), None, None),
        ("randaug", "saflex", 0, 0.7000, (0.40, 0.55, 0.65), (0.9, 0.8, 0.7), (0.3, 0.2, 0.1)),
        ("randaug", "saflex", 1, 0.7100, (0.44, 0.57, 0.69), (0.7, 0.6, 0.5), (0.1, 0.2, 0.3))]


def write_runs(out, dataset="dermamnist", device="cpu: test", seconds=2.0, **changes):
    """Records of 3 epochs each; the No Aug row of pneumoniamnist runs with batch_size=16. Seed 0 runs on
    `device` at `seconds` per epoch, the other seeds on 'cpu: test' at 2 s."""
    for aug, refine, seed, acc, vals, kept, changed in RUNS:
        config = fake_record(out, aug, refine, seed, acc, dataset=dataset, **changes)
        record = json.loads(record_path(out, config).read_text())
        record["device"] = device if seed == 0 else "cpu: test"
        record["epochs"] = [{"epoch": e + 1, "train_time_s": seconds if seed == 0 else 2.0, "val": {"acc": v}, "test": {"acc": acc},
                             **({"saflex": {"kept_fraction": kept[e], "changed_fraction": changed[e]}} if kept else {})}
                            for e, v in enumerate(vals)]
        write_record(out, config, record)
    fake_record(out, "none", "none", 0, 0.80, dataset="pneumoniamnist", batch_size=16)


def tabular_body(tex: str) -> tuple[str, list[str], list[list[str]]]:
    """(column spec, header cells, body rows' cells) of the one booktabs tabular in `tex`."""
    spec, body = re.search(r"\\begin\{tabular\}\{(\w+)\}\n(.*?)\\end\{tabular\}", tex, re.S).groups()
    top, rest = body.split("\\toprule\n")[1].split("\\midrule\n")
    rows, bottom = rest.split("\\bottomrule\n")
    cells = lambda line: [c.strip() for c in re.split(r"(?<!\\)&", line.removesuffix(r" \\"))]  # noqa: E731
    assert bottom == "" and top.endswith("\\\\\n")
    return spec, cells(top.strip()), [cells(line) for line in rows.strip().splitlines()]


def test_latex_is_a_booktabs_tabular_with_a_column_per_dataset_and_the_markdowns_numbers(tmp_path):
    write_runs(tmp_path)
    _, md_path = write_report(tmp_path, "medmnist")
    tex = (tmp_path / "medmnist.tex").read_text()
    spec, header, rows = tabular_body(tex)
    assert spec == "lcc" and header == ["Method", "dermamnist", "pneumoniamnist"]
    assert [row[0] for row in rows] == ["No Aug [batch\\_size=16]", "RandAug", "SAflex (w/ RandAug)"]
    assert all(len(row) == 3 for row in rows)
    markdown = line_of(md_path.read_text(), "| RandAug |")
    assert "73.75 ± 0.06 (2) · paper 73.71" in markdown
    # seeds differ between cells (2 and 1): each cell says how many
    assert rows[1][1] == r"73.75 $\pm$ 0.06$^{2}$ (73.71)" and rows[1][2] == "--"
    assert rows[0][2] == r"80.00 $\pm$ 0.00$^{1}$ (--)"
    caption = re.search(r"\\caption\{(.*)\}", tex).group(1)
    assert r"accuracy (\%)" in caption and "skip" not in caption
    assert re.search(r"(?<!\\)[_%#]", tex.split("\n", 1)[1]) is None  # only the comment line has a bare %


def test_escape_covers_latex_specials_and_the_reports_symbols():
    assert escape(r"a_b & 50% #1 $x$ {y} ~z ^w \ ±") == \
        r"a\_b \& 50\% \#1 \$x\$ \{y\} \textasciitilde{}z \textasciicircum{}w \textbackslash{} $\pm$"


def test_the_summary_csv_has_one_row_per_cell_with_the_markdowns_values(tmp_path):
    write_runs(tmp_path, device="cuda: other")  # seed 0 of each dermamnist row ran on another device
    _, md_path = write_report(tmp_path, "medmnist")
    table = md_path.read_text()
    summary = pd.read_csv(tmp_path / "medmnist_summary.csv")
    assert len(summary) == 3  # RandAug and SAflex on dermamnist, No Aug on pneumoniamnist
    assert list(summary.columns[:11]) == ["method", "label", "model", "dataset", "mean", "std", "n", "paper_mean",
                                          "paper_std", "difference", "verdict"]
    for cell in summary.itertuples():
        row = line_of(table, f"| {cell.method}{f' [{cell.label}]' if isinstance(cell.label, str) else ''} |")
        text = f"{cell.mean:.2f} ± {cell.std:.2f} ({cell.n})"
        if cell.verdict != "no paper value":
            text += f" · paper {cell.paper_mean:.2f} ± {cell.paper_std:.2f} · Δ {cell.difference:+.2f} " \
                    f"{'✓' if cell.verdict == 'agrees' else '✗'}"
        assert text in row, (text, row)
    by_method = summary.set_index("method")
    assert by_method.loc["RandAug", "train_s_per_epoch"] == "mixed devices: 2.00 on cpu: test; 2.00 on cuda: other"
    assert by_method.loc["RandAug", "train_s_per_epoch"] in line_of(table, "| RandAug |")
    assert by_method.loc["No Aug", "train_s_per_epoch"] == "2.0"  # one device: its median seconds
    assert by_method.loc["SAflex (w/ RandAug)", "verdict"] == "differs"


def test_seconds_per_epoch_keep_two_cpu_kinds_apart(tmp_path):
    """One declared kind ('x86_64, 2 cores') covers CPUs 3× apart in speed: each named kind keeps its own median."""
    write_runs(tmp_path, device="cpu: AMD EPYC (family 25 model 1), AVX2, 2 threads", seconds=6.0)
    _, md_path = write_report(tmp_path, "medmnist")
    assert line_of(md_path.read_text(), "| RandAug |").endswith(
        "| mixed devices: 6.00 on cpu: AMD EPYC (family 25 model 1), AVX2, 2 threads; 2.00 on cpu: test |")


def test_a_paired_gain_whose_seeds_ran_on_two_cpu_kinds_says_so(tmp_path):
    """A paired difference across instruction sets carries their rounding difference: the gains table
    says so; other thread counts on one CPU kind are the same kind."""
    epyc = "cpu: AMD EPYC (family 25 model 1), AVX2, {} threads"
    write_runs(tmp_path, device=epyc.format(2))
    config = fake_record(tmp_path, "randaug", "saflex", 0, 0.70)
    record = json.loads(record_path(tmp_path, config).read_text())
    write_record(tmp_path, config, {**record, "device": epyc.format(1)})
    _, md_path = write_report(tmp_path, "medmnist")
    gains = md_path.read_text().split("## Gains, paired by seed")[1]
    assert "two kinds of device" not in line_of(gains, "| ResNet-18 | dermamnist | SAflex (w/ RandAug) | RandAug |")

    write_record(tmp_path, config, {**record, "device": "cpu: Intel Xeon (family 6 model 143), AVX512, 1 threads"})
    _, md_path = write_report(tmp_path, "medmnist")
    gains = md_path.read_text().split("## Gains, paired by seed")[1]
    assert line_of(gains, "| ResNet-18 | dermamnist | SAflex (w/ RandAug) | RandAug |").endswith(
        "(some seeds' pair ran on two kinds of device: their rounding differs too) |")


def captured_figures(monkeypatch) -> dict:
    figures, original = {}, plots.save_figure

    def spy(figure, path):
        figures[path.name] = figure
        return original(figure, path)

    monkeypatch.setattr(plots, "save_figure", spy)
    monkeypatch.setattr(plots.pyplot(), "close", lambda figure: None)  # keep them to look at
    return figures


def panel(figure, title_start: str):
    return next(axis for axis in figure.axes if axis.get_title().startswith(title_start))


def test_the_plots_draw_the_records_numbers(tmp_path, monkeypatch):
    write_runs(tmp_path)
    figures = captured_figures(monkeypatch)
    write_report(tmp_path, "medmnist", plots=True)
    for name in ("medmnist_vs_paper.png", "medmnist_val_curves.png", "medmnist_saflex.png"):
        assert (tmp_path / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    derma = panel(figures["medmnist_vs_paper.png"], "ResNet-18 · dermamnist")
    points = sorted(round(float(line.get_xdata()[0]), 2) for line in derma.lines if line.get_marker() in ("o", "D"))
    assert points == [70.5, 73.71, 73.75, 76.69]  # ours and the paper's, for RandAug and SAflex (w/ RandAug)

    curves = panel(figures["medmnist_val_curves.png"], "ResNet-18 · dermamnist").lines
    assert [list(line.get_ydata()) for line in curves] == [pytest.approx([51, 61, 68]), pytest.approx([42, 56, 67])]
    kept, relabelled = panel(figures["medmnist_saflex.png"], "ResNet-18 · dermamnist").lines
    assert list(kept.get_ydata()) == pytest.approx([80, 70, 60]) and kept.get_linestyle() == "-"
    assert list(relabelled.get_ydata()) == pytest.approx([20, 20, 20]) and relabelled.get_linestyle() == "--"


def test_plots_without_matplotlib_are_one_line_and_nothing_is_written(tmp_path, monkeypatch):
    write_runs(tmp_path)
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "matplotlib" else real(name, *a))
    with pytest.raises(SaflexError, match=r"--plots needs matplotlib: pip install 'saflex\[plots\]'"):
        write_report(tmp_path, "medmnist", plots=True)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["runs"]
