"""The paper's numbers, stored once as data (resources/paper_tables.csv, transcribed by hand)."""
from __future__ import annotations

from functools import lru_cache
from importlib import resources

import pandas as pd


@lru_cache(maxsize=1)
def paper_tables() -> pd.DataFrame:
    with resources.files("saflex_cli").joinpath("resources/paper_tables.csv").open() as handle:
        return pd.read_csv(handle)


def paper_value(tables: tuple[int, ...], method: str, model: str, column: str) -> tuple[float, float] | None:
    """(mean, std) of a row in the first of `tables` that has it; None if none does."""
    frame = paper_tables()
    hit = frame[frame.table.isin(tables) & (frame.method == method) & (frame.model == model) & (frame.column == column)]
    if hit.empty:
        return None
    row = hit.iloc[0]
    return float(row["mean"]), float(row["std"])
