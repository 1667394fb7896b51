"""`saflex report`: run records -> results/<family>.md and .csv."""
from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.console import Console

from ..errors import SaflexError
from ..registry import FAMILIES
from . import options as opt
from .common import parse_list


def report(
    out: opt.Out = Path("results"),
    family: Annotated[Optional[str], typer.Option(help="One family: medmnist | tabular | flyp | diffusion | demo (default: every family with records).")] = None,
    selection: Annotated[Optional[str], typer.Option(help="Checkpoint: last | best_val_acc | best_val_auc | best_val_macro_f1 (which exist depends on the family; default: the family's).")] = None,
    dataset: Annotated[Optional[str], typer.Option("--dataset", help="Only these datasets (comma list).")] = None,
    name: Annotated[Optional[str], typer.Option(help="File stem of the tables (default: the family name).")] = None,
    plots: Annotated[bool, typer.Option("--plots", help="Also draw NAME_vs_paper.png, NAME_val_curves.png and NAME_saflex.png (pip install 'saflex[plots]').")] = False,
) -> None:
    """Aggregate the run records into mean ± std tables beside the paper's numbers, with paired gains.

    Writes NAME.md, NAME.csv (one row per run), NAME.tex (booktabs), NAME_summary.csv (one row per
    cell) and NAME_gains.csv into OUT. Example: saflex report --out results --family tabular --plots
    """
    from ..reporting.report import write_report
    families = [family] if family else [f for f in FAMILIES.names() if (out / "runs" / f).is_dir()]
    datasets = set(parse_list(dataset, "--dataset")) if dataset else None
    written = [write_report(out, f, selection, datasets, name, plots) for f in families]
    if not any(written):
        raise SaflexError(f"no completed run records under {out / 'runs'}: run a family command first")
    for csv_path, md_path in filter(None, written):
        Console().print(f"wrote {md_path} and {csv_path}, with {md_path.stem}.tex, {md_path.stem}_summary.csv"
                        + (" and the plots" if plots else "") + " beside them", highlight=False, soft_wrap=True)
