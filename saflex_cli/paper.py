"""The paper's numbers, stored once as data (resources/paper_tables.csv, transcribed by hand), and
published rows that are not the paper's but train the same recipe (MedMNIST v2's own benchmark)."""
from __future__ import annotations

from dataclasses import dataclass, field
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


@dataclass(frozen=True)
class PublishedRow:
    """A published row beside ours in the report: the outside check that our trainer, not the method,
    is not what differs (MedMNIST v2's No Aug numbers, on datasets the paper's table lacks)."""

    label: str  # the row's name in the report
    resource: str  # a CSV in resources/ with columns model, dataset, test_acc, test_auc (fractions), source
    models: dict[str, str] = field(default_factory=dict)  # the report's model name -> the CSV's

    def cell(self, model: str, dataset: str) -> str | None:
        """'85.40 (AUC 0.944)': test accuracy in percent, as the report's cells, and the AUC."""
        frame = resource_table(self.resource)
        hit = frame[(frame.model == self.models.get(model, model)) & (frame.dataset == dataset)]
        if hit.empty:
            return None
        row = hit.iloc[0]
        return f"{100 * row.test_acc:.2f} (AUC {row.test_auc:.3f})"
