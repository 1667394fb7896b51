"""The report's tables as LaTeX to paste into a paper: booktabs, one column per dataset.

One `table` per model, rows in the paper's order; each cell is our mean ± std with the paper's
mean in brackets (the same numbers as the Markdown: tables.cell_summaries). Every piece of text
from the records (methods, setting labels, datasets) is escaped, so a label such as
`batch_size=16` or a caption with `%` compiles as it reads. Needs \\usepackage{booktabs}.
"""
from __future__ import annotations

import pandas as pd

from ..families.base import Recipe
from .tables import cell_summaries, ordered_rows, row_name, shared_settings, without_settings

SPECIAL = {"\\": r"\textbackslash{}", "&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#", "_": r"\_", "{": r"\{",
           "}": r"\}", "~": r"\textasciitilde{}", "^": r"\textasciicircum{}",
           # what the report's own texts hold beyond ASCII
           "±": r"$\pm$", "×": r"$\times$", "—": "---", "–": "--", "·": r"$\cdot$", "Π": r"$\Pi$", "σ": r"$\sigma$",
           "²": r"$^2$", "≤": r"$\le$", "≥": r"$\ge$"}


def escape(text: str) -> str:
    return "".join(SPECIAL.get(char, char) for char in str(text))


def _cell(cell, show_n: bool) -> str:
    text = f"{cell.mean:.2f} $\\pm$ {cell.std:.2f}"
    text += f"$^{{{cell.n}}}$" if show_n else ""
    text += r"$^\dagger$" if cell.degenerate else ""
    paper = "--" if cell.verdict == "no paper value" else f"{cell.paper_mean:.2f}"
    return f"{text} ({paper})"


def render_table(recipe: Recipe, model: str, frame: pd.DataFrame, selection: str) -> list[str]:
    common = shared_settings(frame)
    frame = frame.assign(label=frame.label.map(lambda label: without_settings(label, common)))
    columns = list(dict.fromkeys(frame.column))
    summaries = cell_summaries(recipe, frame)
    cells = {(c.dataset, c.method, c.label): c for c in summaries.itertuples()}
    seeds = sorted(summaries.n.unique())
    show_n = len(seeds) > 1
    caption = (f"{escape(model)}: {escape(recipe.caption)}. Checkpoint {escape(selection)}. Ours: mean $\\pm$ std over "
               + ("seeds (their number in superscript)" if show_n else f"{seeds[0]} seed(s)")
               + "; in brackets, the paper's mean"
               + (f". Settings of every row beyond the recipe's defaults: {escape(', '.join(common))}" if common else "")
               + (r". $^\dagger$: a run of the cell predicts one class for the whole test split"
                  if summaries.degenerate.any() else "") + ".")
    lines = [r"\begin{table}[t]", r"\centering", f"\\caption{{{caption}}}",
             r"\begin{tabular}{l" + "c" * len(columns) + "}", r"\toprule",
             " & ".join(["Method", *map(escape, columns)]) + r" \\", r"\midrule"]
    for method, label in ordered_rows(recipe, frame):
        texts = [_cell(cells[(c, method, label)], show_n) if (c, method, label) in cells else "--" for c in columns]
        lines.append(" & ".join([escape(row_name(method, label)), *texts]) + r" \\")
    return lines + [r"\bottomrule", r"\end{tabular}", r"\end{table}"]


def render_latex(recipe: Recipe, frame: pd.DataFrame, selection: str, title: str) -> str:
    lines = [f"% {title}: written by `saflex report` from the run records; needs \\usepackage{{booktabs}}", ""]
    for model, by_model in frame.groupby("model", sort=False):
        lines += render_table(recipe, model, by_model, selection) + [""]
    return "\n".join(lines)
