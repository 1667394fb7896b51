"""Tabular datasets of the paper's Table 2, and any CSV a user brings, as one float tensor.

Each source is a pandas frame (from OpenML through scikit-learn, or a local file in the
layout the SAINT code or Kaggle ships), turned into splits as the SAINT code's
`data_prep_openml` does: categoricals label-encoded with a missing-value code, continuous NaNs
filled with the train mean, then standardised with train mean/std (std floored at 1e-6).
Deviations, all recorded in the provenance: the 65/15/20 split is stratified by class (SAINT
draws each row's split independently), categories are learnt from the train rows only (unseen
ones map to the missing code), and an all-NaN column is dropped.

A table is ONE float tensor (N, n_cat + n_cont): categorical codes (as floats) first, then the
standardised continuous columns, so batching, CutMix and the SAflex core see a plain tensor.
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Callable

import numpy as np
import pandas as pd
import torch

from ..errors import SaflexError
from ..registry import DATASETS
from .catalog import DataFile, family_folder, register_catalog
from .download import offline
from .splits import Split, Splits

SPLIT_FRACTIONS = (0.65, 0.15, 0.20)  # train / val / test, as in SAINT's train.py
STD_FLOOR = 1e-6  # SAINT: np.where(train_std < 1e-6, 1e-6, train_std)
MISSING = "MissingValue"  # SAINT's fill value for a missing category; always code 0 here


@dataclass(frozen=True)
class Table:
    """A raw table: feature columns, target and which features are categorical."""

    features: pd.DataFrame
    target: pd.Series
    categorical: tuple[str, ...]
    source: dict


@dataclass(frozen=True)
class TabularSource:
    """One dataset of Table 2: where it comes from and what the paper's Table 5 says about it."""

    name: str
    openml_id: int | None
    local_file: str | None  # a file in --data-root that is read instead of OpenML when present
    read_local: Callable[[Path], Table] | None
    paper: dict  # Table 5: rows, features, positives (binary)


def _read_biodeg(path: Path) -> Table:
    """UCI QSAR biodegradation: ';'-separated, target 'experimental class' (RB / NRB)."""
    frame = pd.read_csv(path, sep=";")
    target = next((c for c in ("experimental class", "class") if c in frame.columns), None)
    if target is None:
        raise SaflexError(f"{path} has no 'experimental class' (or 'class') column: is it the UCI biodeg.csv?")
    return Table(frame.drop(columns=[target]), frame[target], (), {"file": str(path), "target": target})


def _read_churn(path: Path) -> Table:
    """Kaggle 'Churn Modelling' (Shrutime): ids dropped, target Exited, Geography/Gender categorical."""
    frame = pd.read_csv(path)
    missing = {"Exited", "Geography", "Gender"} - set(frame.columns)
    if missing:
        raise SaflexError(f"{path} lacks column(s) {sorted(missing)}: is it Kaggle's Churn_Modelling.csv?")
    features = frame.drop(columns=[c for c in ("RowNumber", "CustomerId", "Surname", "Exited") if c in frame.columns])
    return Table(features, frame["Exited"], ("Geography", "Gender"), {"file": str(path), "target": "Exited"})


SOURCES = {
    "appetency": TabularSource("appetency", 1111, None, None, {"rows": 494021, "features": 39, "positives": 97278}),
    "arrhythmia": TabularSource("arrhythmia", 1017, None, None, {"rows": 452, "features": 226, "positives": 66}),
    "click": TabularSource("click", 42733, None, None, {"rows": 39948, "features": 12, "positives": 6728}),
    "credit": TabularSource("credit", 1597, None, None, {"rows": 284807, "features": 29, "positives": 492}),
    "qsar": TabularSource("qsar", 1494, "biodeg.csv", _read_biodeg, {"rows": 1055, "features": 41, "positives": 356}),
    # No OpenML copy of the Kaggle file could be established; the SAINT code reads the CSV too.
    "shrutime": TabularSource("shrutime", None, "Churn_Modelling.csv", _read_churn,
                              {"rows": 10000, "features": 11, "positives": 2037}),
    "volkert": TabularSource("volkert", 41166, None, None, {"rows": 58310, "features": 147}),
}
TABLE2_DATASETS = tuple(SOURCES)


def fetch_openml(**kwargs):
    """scikit-learn's fetch_openml, imported late (a seam the tests replace with a local ARFF)."""
    from sklearn.datasets import fetch_openml as sklearn_fetch

    return sklearn_fetch(**kwargs)


def read_openml(name: str, openml_id: int, data_root: Path, local_hint: str | None) -> Table:
    place = f"place {local_hint} in {data_root}" if local_hint else \
        "download it elsewhere and pass it with --csv FILE --target COLUMN"
    where = f"dataset {name!r} (OpenML id {openml_id})"
    if offline() and not (Path(data_root) / "openml").is_dir():
        raise SaflexError(f"{where} is not cached in {data_root} and SAFLEX_OFFLINE is set: {place}")
    try:
        bunch = fetch_openml(data_id=openml_id, data_home=str(data_root), as_frame=True, n_retries=1, delay=0.5)
    except (OSError, ValueError) as error:  # URLError is an OSError; sklearn raises ValueError on bad ids
        raise SaflexError(f"could not load {where} from OpenML ({type(error).__name__}: {error}); {place}") from None
    features = bunch.data
    categorical = tuple(c for c in features.columns if isinstance(features[c].dtype, pd.CategoricalDtype))
    return Table(features, bunch.target, categorical, {"openml_id": openml_id, "openml_name": bunch.details.get("name")})


def read_csv_table(path: Path, target: str, categorical: tuple[str, ...] | None) -> Table:
    """A user's CSV: the target column, and categoricals given or inferred from non-numeric dtype."""
    path = Path(path)
    if not path.is_file():
        raise SaflexError(f"--csv {path} does not exist")
    frame = pd.read_csv(path, sep=None, engine="python")  # sniffs ',' or ';'
    if target not in frame.columns:
        raise SaflexError(f"target column {target!r} is not in {path.name}; its columns are: {', '.join(map(str, frame.columns))}")
    features = frame.drop(columns=[target])
    if categorical is None:  # text columns; a column mixing numbers and text is refused later
        categorical = tuple(c for c in features.columns if not pd.api.types.is_numeric_dtype(features[c])
                            and _mixed_type_column(features[c]) is None)
    unknown = [c for c in categorical if c not in features.columns]
    if unknown:
        raise SaflexError(f"--categorical names column(s) {', '.join(unknown)} that {path.name} does not have "
                          f"(or that is the target); its feature columns are: {', '.join(map(str, features.columns))}")
    return Table(features, frame[target], tuple(categorical), {"file": str(path), "target": target})


def load_table(name: str, data_root: Path, *, openml_id: int | None = None, csv: str | None = None,
               target: str | None = None, categorical: tuple[str, ...] | None = None) -> Table:
    """The raw table: a user CSV, else the local file in --data-root, else OpenML."""
    if csv is not None:
        if not target:
            raise SaflexError("--csv needs --target COLUMN (the column to predict)")
        return read_csv_table(Path(csv), target, categorical)
    if name not in SOURCES:
        raise SaflexError(f"unknown tabular dataset {name!r}; choose one of: {', '.join(SOURCES)}, "
                          f"or bring a table with --csv FILE --target COLUMN")
    source = SOURCES[name]
    local = Path(data_root) / source.local_file if source.local_file else None
    if openml_id is None and local is not None and local.is_file():
        return source.read_local(local)
    openml_id = openml_id or source.openml_id
    if openml_id is None:
        raise SaflexError(f"dataset {name!r} has no OpenML copy: place {source.local_file} in {data_root} "
                          f"(or give --openml-id ID)")
    return read_openml(name, openml_id, Path(data_root), source.local_file)


def _mixed_type_column(column: pd.Series) -> str | None:
    """An example value that is text in a column whose other values are numbers, else None."""
    values = column.dropna()
    if values.empty or pd.api.types.is_numeric_dtype(values):
        return None
    numeric = pd.to_numeric(values.astype(str), errors="coerce")
    if numeric.notna().any() and numeric.isna().any():
        return str(values[numeric.isna()].iloc[0])
    return None


def check_table(table: Table) -> tuple[pd.DataFrame, pd.Series, tuple[str, ...], dict]:
    """Refuse what would train a silently wrong model; drop all-NaN columns (recorded)."""
    features, target = table.features, table.target
    notes: dict = {}
    missing_target = int(target.isna().sum())
    if missing_target == len(target):
        raise SaflexError("the target column has no values: check --target")
    if missing_target:
        notes["rows_dropped_missing_target"] = missing_target
        keep = target.notna().to_numpy()
        features, target = features[keep], target[keep]
    classes = pd.unique(target).tolist()  # Python values: the message shows 1, not np.int64(1)
    if len(classes) < 2:
        raise SaflexError(f"the target has a single class ({classes[0]!r}): a classifier needs at least two")
    empty = [c for c in features.columns if features[c].isna().all()]
    if empty:
        notes["columns_dropped_all_missing"] = [str(c) for c in empty]
        features = features.drop(columns=empty)
    categorical = tuple(c for c in table.categorical if c not in empty)
    for column in features.columns:
        if column in categorical:
            continue
        example = _mixed_type_column(features[column])
        if example is not None:
            raise SaflexError(f"column {column!r} mixes numbers and text (e.g. {example!r}): fix the file, or "
                              f"list it in --categorical to treat every value as a category")
        if not pd.api.types.is_numeric_dtype(features[column]):
            categorical = categorical + (column,)  # all text: a categorical column
    if features.shape[1] == 0:
        raise SaflexError("the table has no usable feature column")
    return features, target, categorical, notes


def stratified_split(targets: np.ndarray, seed: int, fractions=SPLIT_FRACTIONS) -> dict[str, np.ndarray]:
    """Per class: a seeded shuffle cut 65/15/20, at least one row of each class in val and test."""
    rng = np.random.default_rng(seed)
    parts = {"train": [], "val": [], "test": []}
    for label in np.unique(targets):
        rows = rng.permutation(np.flatnonzero(targets == label))
        n_val = max(1, round(fractions[1] * len(rows)))
        n_test = max(1, round(fractions[2] * len(rows)))
        parts["test"].append(rows[:n_test])
        parts["val"].append(rows[n_test:n_test + n_val])
        parts["train"].append(rows[n_test + n_val:])
    return {name: np.sort(np.concatenate(chunks)) for name, chunks in parts.items()}


@dataclass(frozen=True)
class Preprocessor:
    """Statistics fitted on the train rows only: category codes, fill means, mean/std."""

    categories: dict  # column -> list of categories; code 0 is MISSING (or an unseen category)
    fill: pd.Series
    mean: pd.Series
    std: pd.Series

    @classmethod
    def fit(cls, train: pd.DataFrame, categorical: tuple[str, ...]) -> "Preprocessor":
        continuous = [c for c in train.columns if c not in categorical]
        categories = {c: sorted(train[c].dropna().astype(str).unique()) for c in categorical}
        values = train[continuous].astype(float)
        fill = values.mean()
        filled = values.fillna(fill)
        return cls(categories, fill, filled.mean(), filled.std(ddof=0).clip(lower=STD_FLOOR))

    def transform(self, frame: pd.DataFrame) -> torch.Tensor:
        codes = [frame[c].astype(str).where(frame[c].notna(), MISSING)
                 .map({v: i + 1 for i, v in enumerate(vocab)}).fillna(0).to_numpy(np.float32)
                 for c, vocab in self.categories.items()]
        continuous = ((frame[list(self.mean.index)].astype(float).fillna(self.fill) - self.mean) / self.std)
        columns = codes + [continuous[c].to_numpy(np.float32) for c in self.mean.index]
        return torch.from_numpy(np.stack(columns, axis=1)).float()

    @property
    def cardinalities(self) -> list[int]:
        """Codes per categorical column, the missing code included (SAINT's cat_dims)."""
        return [len(vocab) + 1 for vocab in self.categories.values()]


def make_splits(table: Table, seed: int, name: str) -> Splits:
    features, target_values, categorical, notes = check_table(table)
    classes = sorted(pd.unique(target_values), key=str)
    targets = target_values.map({c: i for i, c in enumerate(classes)}).to_numpy(np.int64)
    counts = np.bincount(targets, minlength=len(classes))
    for label, count in zip(classes, counts):
        if count < 3:
            raise SaflexError(f"class {str(label)!r} has only {count} row(s): each class needs at least 3 "
                              f"(one for each of train, val and test); merge or drop it")
    index = stratified_split(targets, seed)
    features = features[list(categorical) + [c for c in features.columns if c not in categorical]]
    prep = Preprocessor.fit(features.iloc[index["train"]], categorical)

    def split(rows: np.ndarray) -> Split:
        return Split(prep.transform(features.iloc[rows]), torch.from_numpy(targets[rows]))

    provenance = {
        "dataset": name, **table.source, **notes, "rows": int(len(targets)), "classes": [str(c) for c in classes],
        "class_counts": counts.tolist(), "categorical": [str(c) for c in categorical],
        "cardinalities": prep.cardinalities, "continuous": [str(c) for c in prep.mean.index],
        "split": {"seed": seed, "fractions": list(SPLIT_FRACTIONS), "stratified": True,
                  **{k: int(len(v)) for k, v in index.items()}},
    }
    return Splits(split(index["train"]), split(index["val"]), split(index["test"]), num_classes=len(classes),
                  task="binary" if len(classes) == 2 else "multi-class", provenance=provenance,
                  class_names=[str(c) for c in classes])


def compare_with_paper(name: str, provenance: dict) -> list[str]:
    """Where the loaded table disagrees with the paper's Table 5 (reported, not an error)."""
    source = SOURCES.get(name)
    if source is None:
        return []
    found = {"rows": provenance["rows"],
             "features": len(provenance["categorical"]) + len(provenance["continuous"])}
    if len(provenance["class_counts"]) == 2:
        found["positives"] = min(provenance["class_counts"])
    return [f"{key}: paper {source.paper[key]}, loaded {found[key]}" for key in source.paper
            if key in found and found[key] != source.paper[key]]


def load_tabular(name: str, data_root: Path, seed: int, **source_options) -> Splits:
    splits = make_splits(load_table(name, data_root, **source_options), seed, name)
    splits.provenance["differs_from_paper_table5"] = compare_with_paper(name, splits.provenance)
    return splits


def folder(data_root: Path) -> Path:
    return family_folder(data_root, "tabular")


@register_catalog("tabular")
def catalog(data_root: Path) -> list[DataFile]:
    """The local files read instead of OpenML; none has an official checksum, so only presence counts."""
    return [DataFile(f"tabular/{s.name}", folder(data_root) / s.local_file,
                     hint="docs/tabular.md, 'Data on disk', says where to get it") for s in SOURCES.values() if s.local_file]


for _name in SOURCES:
    DATASETS.register(f"tabular/{_name}")(partial(load_tabular, _name))
