"""The report's Markdown: the tables beside the paper's numbers, each setting against its
counterparts, the paired gains and SAflex's decisions, all read from the table model (tables.py).
"""
from __future__ import annotations

import pandas as pd

from ..families.base import Recipe
from .paper import paper_value, published_cell
from .tables import (DECISIONS, cell_summaries, ordered_groups, ordered_rows, recorded, row_name, seconds_per_epoch,
                     shared_settings, without_settings)

ACROSS = " (some seeds' pair ran on two kinds of device: their rounding differs too)"
TOLERANCE = "within 2·sqrt(σ_ours² + σ_paper²) of the paper's mean"


def _cell_text(cell) -> str:
    text = f"{cell.mean:.2f} ± {cell.std:.2f} ({cell.n})" + (" ⚠" if cell.degenerate else "")
    if cell.verdict == "no paper value":
        return text + " · paper —"
    return (text + f" · paper {cell.paper_mean:.2f} ± {cell.paper_std:.2f} · Δ {cell.difference:+.2f} "
            f"{'✓' if cell.verdict == 'agrees' else '✗'}")


def render_table(recipe: Recipe, model: str, frame: pd.DataFrame) -> list[str]:
    common = shared_settings(frame)
    frame = frame.assign(label=frame.label.map(lambda l: without_settings(l, common)))
    columns = list(dict.fromkeys(frame.column))
    cells = {(c.model, c.dataset, c.method, c.label): c for c in cell_summaries(recipe, frame).itertuples()}
    lines = [f"## {model}", ""]
    if common:
        lines += [f"Settings of every row below (beyond the recipe's defaults): {', '.join(common)}.", ""]
    lines += ["| method | " + " | ".join(columns) + " | train s/epoch |", "|---" * (len(columns) + 2) + "|"]
    published = published_rows(recipe, model, columns)
    for method, label in ordered_rows(recipe, frame):
        if method != "No Aug" and published:  # right below the last No Aug row (or first, if there is none)
            lines, published = lines + published, []
        texts = [_cell_text(cells[(model, column, method, label)]) if (model, column, method, label) in cells else "—"
                 for column in columns]
        seconds = seconds_per_epoch(frame[(frame.method == method) & (frame.label == label)])
        seconds = seconds if isinstance(seconds, str) else f"{seconds:.2f}"
        lines.append(f"| {row_name(method, label)} | " + " | ".join(texts) + f" | {seconds} |")
    lines += published + reference_rows(recipe, model, columns, set(frame.method))
    return lines


def reference_rows(recipe: Recipe, model: str, columns: list[str], trained: set[str]) -> list[str]:
    """Rows of the paper's other tables that this tool does not train (LP-A3), for reference."""
    from .paper import paper_tables
    table = paper_tables()
    rows = []
    for number in recipe.reference_tables:
        for method in dict.fromkeys(table[(table.table == number) & (table.model == model)].method):
            if method in trained or method in recipe.methods:
                continue
            values = [paper_value((number,), method, model, column) for column in columns]
            texts = [f"paper {v[0]:.2f} ± {v[1]:.2f}" if v else "—" for v in values]
            rows.append(f"| {method} (paper Table {number}; not trained here) | " + " | ".join(texts) + " | — |")
    return rows


def published_rows(recipe: Recipe, model: str, columns: list[str]) -> list[str]:
    """The recipe's published rows (not the paper's) with a value for some column of the table."""
    rows = []
    for published in recipe.published:
        texts = [published_cell(published, model, column) for column in columns]
        if any(texts):
            rows.append(f"| {published.label} | " + " | ".join(t or "—" for t in texts) + " | — |")
    return rows


def render_gains(gains: pd.DataFrame) -> list[str]:
    if gains.empty:
        return []
    lines = ["## Gains, paired by seed", "",
             "Each row: the per-seed difference between a row and its counterpart (the same settings and seeds, "
             "without the refinement, without augmentation, or with SAflex's choices at the paper's defaults), its mean with a 95% t interval over seeds, the "
             "paper's difference of means G where it has both rows (marked 'ref.' where the paper has no value for the "
             "dataset and G is its smallest gain for the comparison in the family's table), and the reading: "
             "reproduced, ruled out (the interval excludes G), below zero, or undecided with the seeds that would "
             "decide it at the observed spread (readings.py).", "",
             "| model | dataset | row | versus | n | Δ (paired) | 95% interval | paper Δ | reading |",
             "|---|---|---|---|---|---|---|---|---|"]
    return lines + [gain_line(row) for row in gains.itertuples()] + [""]


def gain_line(row, claim: str | None = None) -> str:
    """One paired gain as a table line: the rows, n, the gain and interval, the paper's G and the reading."""
    reference = row.reference_gain
    paper = "—" if reference is None or pd.isna(reference) else f"{reference:+.2f}" + (" ref." if row.reference else "")
    return (f"| {row.model} | {row.column} | " + (f"{claim} | " if claim else "") + f"{row_name(row.method, row.label)} | "
            f"{row_name(row.versus, row.versus_label)} | {row.n} | {row.gain:+.2f} | {row.interval} | "
            f"{paper} | {row.reading}{ACROSS if row.across_devices else ''} |")


# Row labels that keep a row at the paper's method settings: the split, the data-settled constant-column
# rule, which data file (the superseded reduced copy, an unverified file), and the run's length; each
# shows in the row's label.
PAPER_SETTINGS = ("split_seed=", "constant_columns=", "unofficial ", "data ", "skip_md5=", "epochs=")


def claim_rows(gains: pd.DataFrame) -> pd.DataFrame:
    """The paper's two claims at its settings: each upstream row against No Aug (the upstream pattern)
    and SAflex against its upstream row; other choices and baselines are left to the tables above."""
    if gains.empty:
        return gains
    at_paper = gains.label.map(lambda label: all(p.startswith(PAPER_SETTINGS) for p in label.split(", ") if p))
    upstream_rows = set(gains[gains.kind == "upstream"].versus)
    pattern = (gains.kind == "No Aug") & gains.method.isin(upstream_rows)
    saflex = (gains.kind == "upstream") & gains.method.str.startswith("SAflex (w/")
    return gains[at_paper & (pattern | saflex)].assign(claim=lambda g: g.kind.map(
        {"No Aug": "upstream vs No Aug", "upstream": "SAflex vs its upstream"}))


def render_claims(gains: pd.DataFrame) -> list[str]:
    claims = claim_rows(gains)
    if claims.empty:
        return []
    lines = ["## Decisions on the paper's claims", "",
             "The two claims at the paper's settings, one line per split and data file: the paired gain, the paper's "
             "G (or its reference), and the reading (the gains table below has every comparison).", "",
             "| model | dataset | claim | row | versus | n | Δ (paired) | 95% interval | paper Δ | reading |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    return lines + [gain_line(row, row.claim) for row in claims.itertuples()] + [""]


def render_decisions(recipe: Recipe, frame: pd.DataFrame) -> list[str]:
    present = recorded(frame, DECISIONS)
    if not present:
        return []
    # A refiner that records no decisions (Soft-Augmentation) has no row here.
    refined = frame[(frame.refine != "none") & frame[[name for name, _ in present]].notna().any(axis=1)]
    if refined.empty:
        return []
    lines = ["## What the refinement decided", "",
             "Means over epochs and seeds of the per-epoch statistics in the run records (fractions of the augmented "
             "samples; 'relabelled among correct': of those the model already classified as their upstream label; "
             "Π margin: mean gap between Π's two largest entries).", "",
             "| model | dataset | row | n | " + " | ".join(t for _, t in present) + " |",
             "|---" * (len(present) + 4) + "|"]
    for (model, column, method, label), rows in ordered_groups(recipe, refined):
        rows = rows.drop_duplicates("seed", keep="last")
        lines.append(f"| {model} | {column} | {row_name(method, label)} | {len(rows)} | "
                     + " | ".join(decision_texts(rows, present)) + " |")
    return lines + [""]


def decision_texts(rows: pd.DataFrame, present) -> list[str]:
    """Each decision's mean over a row's runs: a percentage, Π's margin as a number, '—' if absent."""
    values = [rows[name].mean() if name in rows else float("nan") for name, _ in present]
    return ["—" if pd.isna(v) else (f"{v:.2f}" if name == "pi_margin" else f"{100 * v:.1f}%")
            for (name, _), v in zip(present, values)]


SETTING_DECISIONS = (("kept_fraction", "kept"), ("changed_fraction", "relabelled"),
                     ("relabelled_among_correct", "relabelled among correct"),
                     ("agree_true_fraction", "agrees w/ true label"), ("gumbel_flip_fraction", "Gumbel flips"),
                     ("pi_margin", "Π margin"))


def _gain_text(gains: pd.DataFrame) -> str:
    if gains.empty:
        return "—"
    row = gains.iloc[0]
    if row.n < 2:
        return f"{row.gain:+.2f} — (1 seed)"
    cost = f" ({int(row.seeds_to_decide)} seeds decide)" if row.decision == "undecided" else ""
    return f"{row.gain:+.2f} {row.interval} {row.decision}{cost}"


def render_settings(recipe: Recipe, frame: pd.DataFrame, gains: pd.DataFrame) -> list[str]:
    """One line per setting with an upstream: its score, its paired gains, and what it decided (the
    study's view: docs/findings.md takes this table as it is)."""
    rows = frame[frame.aug != "none"]
    if rows.empty or gains.empty:
        return []
    present = recorded(frame, SETTING_DECISIONS)
    lines = ["## Each setting against its counterparts", "",
             "Per row: test score (mean ± std over seeds), the paired-by-seed difference to its upstream row (the same "
             "settings without the refinement), to No Aug (the same training settings) and to the paper's SAflex (the "
             "same upstream and training settings, SAflex's choices at the paper's defaults), each with its 95% "
             "interval, and the refinement's decisions (means over epochs and seeds; '—' where the row decides "
             "nothing).", "",
             "| model | dataset | row | n | test | Δ vs upstream row | Δ vs No Aug | Δ vs SAflex |"
             + "".join(f" {t} |" for _, t in present),
             "|---" * (len(present) + 8) + "|"]
    for (model, column, method, label), group in ordered_groups(recipe, rows):
        group = group.drop_duplicates("seed", keep="last")
        mine = gains[(gains.model == model) & (gains.column == column) & (gains.method == method) & (gains.label == label)]
        texts = decision_texts(group, present)
        std = group.value.std(ddof=1) if len(group) > 1 else 0.0
        lines.append(f"| {model} | {column} | {row_name(method, label)} | {len(group)} | {group.value.mean():.2f} ± {std:.2f} | "
                     f"{_gain_text(mine[mine.kind == 'upstream'])} | {_gain_text(mine[mine.kind == 'No Aug'])} | "
                     f"{_gain_text(mine[mine.kind == 'SAflex'])} |" + "".join(f" {text} |" for text in texts))
    return lines + [""]


def render_markdown(recipe: Recipe, frame: pd.DataFrame, gains: pd.DataFrame, selection: str, title: str) -> str:
    lines = [f"# {title}", "",
             f"{recipe.caption}. Checkpoint: `{selection}`. Each cell: our mean ± std (distinct seeds) · the paper's "
             f"value · difference; ✓ when ours is {TOLERANCE}, a tolerance fixed before running. A row is one setting "
             f"(its label: how it differs from the recipe's defaults); settings are never pooled. "
             f"Epochs run: {', '.join(str(e) for e in sorted(frame.epochs.unique()))}. "
             f"Devices: {'; '.join(sorted(frame.device.unique()))}.", ""]
    for model, by_model in frame.groupby("model", sort=False):
        lines += render_table(recipe, model, by_model) + [""]
    if frame.degenerate.any():
        lines += ["⚠: at least one run of the cell predicts a single class for the whole test split (a degenerate "
                  "classifier).", ""]
    return "\n".join(lines + render_claims(gains) + render_settings(recipe, frame, gains) + render_gains(gains)
                     + render_decisions(recipe, frame))


def missing_lines(failures: list[dict]) -> str:
    """The runs whose cells are missing from the tables above, and why (their failure records)."""
    if not failures:
        return ""
    lines = ["", "## Missing runs", "", "Failed runs, left out of the tables above; rerun them with `--retry-failed`.", ""]
    lines += [f"- `{r['run_name']}`: {r['reason']} (epoch {r['epoch']}, step {r['step']})" for r in failures]
    return "\n".join(lines) + "\n"
