"""`saflex eval`: a run's kept weights, evaluated again against its record."""
from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.console import Console

from ..errors import SaflexError
from . import options as opt


def evaluate(
    record: Annotated[Path, typer.Argument(help="A run record: OUT/runs/<family>/<run>.json.")],
    split: Annotated[str, typer.Option("--split", help="test (default) | val: the split evaluated.")] = "test",
    selection: Annotated[Optional[str], typer.Option("--selection", help="Whose weights: last | best_val_acc | best_val_auc | best_val_macro_f1 (those the run kept; default: the family's selection).")] = None,
    data_root: Annotated[Optional[Path], typer.Option("--data-root", help="Where the run's data files are now (default: the record's; their checksums must be the run's).")] = None,
    device: opt.Device = None,
) -> None:
    """Rebuild a recorded run's model from its config, load its kept weights and reproduce its metrics.

    Example: saflex eval results/runs/demo/digits_mlp_none_seed0_0123456789.json --split val --selection last
    """
    from ..runs.reevaluate import TOLERANCE, reevaluate
    result = reevaluate(record, split, selection, data_root, device)
    console = Console()
    console.print(f"{record.name}, weights at {result.selection}, {result.split} split, on {result.device} "
                  f"(recorded on {result.recorded_on}):", highlight=False)
    for name, difference in result.differences.items():
        console.print(f"  {name:<24} recorded {result.recorded[name]:.6f}  now {result.now[name]:.6f}  "
                      f"Δ {difference:+.1e}", highlight=False)
    if not result.differences:
        raise SaflexError(f"the record has no {result.split} metrics at {result.selection} to compare with")
    if not result.matches:
        raise SaflexError(f"the metrics differ from the record by up to "
                          f"{max(abs(d) for d in result.differences.values()):.1e} (tolerance {TOLERANCE:.0e})")
    console.print(f"reproduces the record (every |Δ| ≤ {TOLERANCE:.0e})", highlight=False)
