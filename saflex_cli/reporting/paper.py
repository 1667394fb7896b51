"""The paper's numbers, stored once as data (resources/paper_tables.csv, transcribed by hand), and the
values of published rows that are not the paper's but train the same recipe (MedMNIST v2's benchmark)."""
from __future__ import annotations

from functools import lru_cache
from importlib import resources

import pandas as pd


@lru_cache(maxsize=None)
def resource_table(name: str) -> pd.DataFrame:
    with resources.files("saflex_cli").joinpath(f"resources/{name}").open() as handle:
        return pd.read_csv(handle)


def paper_tables() -> pd.DataFrame:
    return resource_table("paper_tables.csv")


def paper_value(tables: tuple[int, ...], method: str, model: str, column: str) -> tuple[float, float] | None:
    """(mean, std) of a row in the first of `tables` that has it; None if none does."""
    frame = paper_tables()
    hit = frame[frame.table.isin(tables) & (frame.model == model) & (frame.method == method) & (frame.column == column)]
    if hit.empty:
        return None
    row = hit.iloc[0]
    return float(row["mean"]), float(row["std"])


def published_cell(row, model: str, dataset: str) -> str | None:
    """'85.40 (AUC 0.944)' for a recipe's PublishedRow (families/base.py): test accuracy in percent, as
    the report's cells, and the AUC; None where the row's CSV has no value for the model and dataset."""
    frame = resource_table(row.resource)
    hit = frame[(frame.model == row.models.get(model, model)) & (frame.dataset == dataset)]
    if hit.empty:
        return None
    found = hit.iloc[0]
    return f"{100 * found.test_acc:.2f} (AUC {found.test_auc:.3f})"
