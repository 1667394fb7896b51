"""`saflex report`: read a family's run records, build the table model (tables.py) and write every
rendering of it (Markdown, CSVs, LaTeX, the trust report and, if asked, the plots).
"""
from __future__ import annotations

from pathlib import Path

import pandas as pd

from ..config import RunConfig
from ..errors import SaflexError
from ..registry import FAMILIES
from ..store.records import atomic_write_text, load_failures, load_records
from .latex import render_latex
from .markdown import missing_lines, render_markdown
from .tables import cell_summaries, collect, gain_rows
from .trust import write_trust_report

def readable(records: list[dict]) -> tuple[list[dict], list[dict]]:
    """(records this version reads, records of another schema: listed, never guessed at)."""
    ok, other = [], []
    for record in records:
        try:
            RunConfig.from_dict(record["config"])
            ok.append(record)
        except (KeyError, TypeError, ValueError, SaflexError):
            other.append(record)
    return ok, other


def check_selection(records: list[dict], selection: str, family: str) -> None:
    lacking = [r for r in records if selection not in r.get("selections", {})]
    if lacking:
        available = sorted(set.intersection(*(set(r.get("selections", {})) for r in records)))
        raise SaflexError(f"--selection {selection!r}: {len(lacking)} {family} record(s) have no such checkpoint "
                          f"(e.g. {lacking[0]['run_name']}); all of them have: {', '.join(available) or 'none'}")


def write_report(out: Path, family: str, selection: str | None = None, datasets: set[str] | None = None,
                 name: str | None = None, plots: bool = False, tables: Path | None = None) -> tuple[Path, Path] | None:
    """Read OUT/runs/FAMILY and write, into `tables` (default OUT): <name>.md and .csv (returned),
    <name>.tex, <name>_summary.csv, the gains and trust reports, and with `plots` the PNGs
    (plots.py); None when the family has no records."""
    if plots:
        from .plots import require_matplotlib, write_plots
        require_matplotlib()  # before anything is written
    recipe = FAMILIES.get(family)
    selection = selection or recipe.selection
    records, other = readable(load_records(out, family))
    failures = load_failures(out, family)
    if datasets:
        present = {r["config"]["dataset"] for r in records + failures}
        unknown = sorted(datasets - present)
        if unknown:
            raise SaflexError(f"--dataset {', '.join(unknown)}: no {family} records under {Path(out) / 'runs'}; "
                              f"datasets with records: {', '.join(sorted(present)) or 'none'}")
        records = [r for r in records if r["config"]["dataset"] in datasets]
        failures = [r for r in failures if r.get("config", {}).get("dataset") in datasets]
    if records:
        check_selection(records, selection, family)
    frame = collect(recipe, records, selection)
    if frame.empty and not failures:
        return None
    name, tables = name or family, Path(tables or out)
    csv_path, md_path = tables / f"{name}.csv", tables / f"{name}.md"
    gains = gain_rows(recipe, frame) if not frame.empty else pd.DataFrame()
    atomic_write_text(csv_path, frame.to_csv(index=False))
    text = render_markdown(recipe, frame, gains, selection, f"saflex {name}") if not frame.empty else f"# saflex {name}\n"
    note = (f"\n{len(other)} record(s) of another record schema are not read (e.g. {other[0].get('run_name')}).\n"
            if other else "")
    atomic_write_text(md_path, text + missing_lines(failures) + note + "\n")
    if not frame.empty:
        atomic_write_text(tables / f"{name}.tex", render_latex(recipe, frame, selection, f"saflex {name}"))
        atomic_write_text(tables / f"{name}_summary.csv", cell_summaries(recipe, frame).to_csv(index=False))
        if plots:
            write_plots(tables, name, recipe, frame, records, selection)
    if not gains.empty:
        atomic_write_text(tables / f"{name}_gains.csv", gains.to_csv(index=False))
    write_trust_report(tables, name, records, lambda record: recipe.cells(record, selection)[0].method)
    return csv_path, md_path
