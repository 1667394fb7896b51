"""Run records -> mean +/- std tables beside the paper's numbers, with a verdict on each cell.

The verdict is fixed before any run: our mean agrees with the paper's when it lies within
2 * sqrt(std_ours^2 + std_paper^2) of it, and a SAflex row agrees when its gain over its
upstream row has the paper's sign.
"""
from __future__ import annotations

import math
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from .families.base import Recipe
from .paper import paper_value
from .records import atomic_write_text, load_failures, load_records
from .registry import FAMILIES
from .trust import write_trust_report

TOLERANCE = "within 2·sqrt(σ_ours² + σ_paper²) of the paper's mean"


def upstream_row(method: str) -> str | None:
    """'SAflex (w/ RandAug)' -> 'RandAug'; 'FLYP+SAflex (w/ RandAug)' -> 'FLYP+RandAug'."""
    match = re.fullmatch(r"(.*?)SAflex \(w/ (.+)\)", method)
    return None if match is None else f"{match.group(1)}{match.group(2)}"


@dataclass
class Summary:
    values: list[float]

    @property
    def n(self) -> int:
        return len(self.values)

    @property
    def mean(self) -> float:
        return float(np.mean(self.values))

    @property
    def std(self) -> float:
        return float(np.std(self.values, ddof=1)) if self.n > 1 else 0.0


def collect(recipe: Recipe, records: list[dict], selection: str) -> pd.DataFrame:
    rows = []
    for record in records:
        epoch_times = [e["train_time_s"] for e in record["epochs"]]
        for cell in recipe.cells(record, selection):
            paper = paper_value(recipe.table, cell.method, cell.model, cell.column)
            rows.append({"family": recipe.name, "table": recipe.table, "model": cell.model, "column": cell.column,
                         "method": cell.method, "seed": record["config"]["seed"], "value": cell.value,
                         "selection": selection, "epochs": len(record["epochs"]),
                         "train_s_per_epoch": float(np.median(epoch_times)), "device": record["device"],
                         "run_id": record["run_id"], "paper_mean": paper[0] if paper else math.nan,
                         "paper_std": paper[1] if paper else math.nan})
    return pd.DataFrame(rows)


def _cell_text(ours: Summary, paper: tuple[float, float] | None) -> str:
    text = f"{ours.mean:.2f} ± {ours.std:.2f} ({ours.n})"
    if paper is None:
        return text + " · paper —"
    delta = ours.mean - paper[0]
    agrees = abs(delta) <= 2 * math.sqrt(ours.std**2 + paper[1] ** 2)
    return text + f" · paper {paper[0]:.2f} ± {paper[1]:.2f} · Δ {delta:+.2f} {'✓' if agrees else '✗'}"


def render_markdown(recipe: Recipe, frame: pd.DataFrame, selection: str, title: str) -> str:
    lines = [f"# {title}", "",
             f"{recipe.caption}. Checkpoint: `{selection}`. Each cell: our mean ± std (seeds) · the paper's "
             f"Table {recipe.table} value · difference; ✓ when ours is {TOLERANCE}, a tolerance fixed before "
             f"running. Epochs run: {', '.join(str(e) for e in sorted(frame.epochs.unique()))}. "
             f"Devices: {'; '.join(sorted(frame.device.unique()))}.", ""]
    for model, by_model in frame.groupby("model", sort=False):
        columns = list(dict.fromkeys(by_model.column))
        methods = [m for m in recipe.methods if m in set(by_model.method)] + \
                  sorted(set(by_model.method) - set(recipe.methods))
        lines += [f"## {model}", "", "| method | " + " | ".join(columns) + " | train s/epoch |",
                  "|---" * (len(columns) + 2) + "|"]
        summaries = {}
        for method in methods:
            cells = []
            for column in columns:
                values = by_model[(by_model.method == method) & (by_model.column == column)].value.tolist()
                if not values:
                    cells.append("—")
                    continue
                summaries[(method, column)] = Summary(values)
                cells.append(_cell_text(summaries[(method, column)], paper_value(recipe.table, method, model, column)))
            seconds = by_model[by_model.method == method].train_s_per_epoch.median()
            lines.append(f"| {method} | " + " | ".join(cells) + f" | {seconds:.2f} |")
        lines += [""] + _gain_lines(recipe, model, methods, columns, summaries) + [""]
    return "\n".join(lines)


def _gain_lines(recipe: Recipe, model: str, methods, columns, summaries) -> list[str]:
    lines = []
    for method in methods:
        base = upstream_row(method)
        # Table 3 writes 'Img2Img (w/o finetune)' but 'SAflex (w/ Img2Img w/o finetune)'.
        base = next((m for m in methods if base in (m, m.replace("(", "").replace(")", ""))), None)
        if base is None:
            continue
        verdicts = []
        for column in columns:
            if (method, column) not in summaries or (base, column) not in summaries:
                continue
            ours = summaries[(method, column)].mean - summaries[(base, column)].mean
            paper_a, paper_b = paper_value(recipe.table, method, model, column), paper_value(recipe.table, base, model, column)
            if paper_a and paper_b:
                theirs = paper_a[0] - paper_b[0]
                verdicts.append(f"{column} {ours:+.2f} (paper {theirs:+.2f}) {'✓' if np.sign(ours) == np.sign(theirs) else '✗'}")
            else:
                verdicts.append(f"{column} {ours:+.2f}")
        if verdicts:
            lines.append(f"- Gain of {method} over {base}: " + "; ".join(verdicts))
    return lines


def missing_lines(failures: list[dict]) -> str:
    """The runs whose cells are missing from the tables above, and why (their failure records)."""
    if not failures:
        return ""
    lines = ["", "## Missing runs", "", "Failed runs, left out of the tables above; rerun them with `--retry-failed`.", ""]
    lines += [f"- `{r['run_name']}`: {r['reason']} (epoch {r['epoch']}, step {r['step']})" for r in failures]
    return "\n".join(lines) + "\n"


def write_report(out: Path, family: str, selection: str | None = None, datasets: set[str] | None = None,
                 name: str | None = None) -> tuple[Path, Path] | None:
    recipe = FAMILIES.get(family)
    selection = selection or recipe.selection

    def wanted(record: dict) -> bool:
        return not datasets or record["config"]["dataset"] in datasets

    records = list(filter(wanted, load_records(out, family)))
    frame = collect(recipe, records, selection)
    failures = list(filter(wanted, load_failures(out, family)))
    if frame.empty and not failures:
        return None
    name = name or family
    csv_path, md_path = Path(out) / f"{name}.csv", Path(out) / f"{name}.md"
    atomic_write_text(csv_path, frame.to_csv(index=False))
    tables = render_markdown(recipe, frame, selection, f"saflex {name}") if not frame.empty else f"# saflex {name}\n"
    atomic_write_text(md_path, tables + missing_lines(failures) + "\n")
    write_trust_report(out, name, records, lambda record: recipe.cells(record, selection)[0].method)
    return csv_path, md_path
