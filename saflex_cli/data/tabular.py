"""Tabular datasets of the paper's Table 2, and any CSV a user brings, as one float tensor.

Each source is a pandas frame (from OpenML through scikit-learn, or a local file in the
layout the SAINT code or Kaggle ships), turned into splits as the SAINT code's
`data_prep_openml` does: categoricals label-encoded with a missing-value code, continuous NaNs
filled with the train mean, then standardised with train mean/std. Deviations, all recorded in
the provenance: the 65/15/20 split is stratified by class (SAINT draws each row's split
independently), categories are learnt from the train rows only (unseen ones map to the missing
code), an all-NaN column is dropped, and a column constant in the training rows is left unscaled
(SAINT floors its std at 1e-6, which turns a val/test value of 40 into 4e7: `constant_rule`
'floor' keeps that). Every imputed cell is counted per column in the provenance (`imputed`),
never filled silently.

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
STD_FLOOR = 1e-6  # SAINT: np.where(train_std < 1e-6, 1e-6, train_std); below it a column is constant in train
# What a column constant in the training rows is divided by: 1 (scikit-learn's StandardScaler: the
# default, it cannot blow up) or SAINT's floored std (its code, for fidelity).
CONSTANT_RULES = ("unscaled", "floor")
FEATURE_BOUND = 100.0  # a standardised val/test feature beyond it says the training statistics do not fit
MISSING = "MissingValue"  # SAINT's fill value for a missing category; always code 0 here
WIDE_INTEGER = 2 ** 53  # beyond it float64 skips integers: such a column is read as text, never rounded


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


def _require_columns(path: Path, columns, needed, what: str, noun: str = "column(s)") -> None:
    missing = sorted(set(needed) - set(columns))
    if missing:
        raise SaflexError(f"{path} lacks {noun} {missing}: is it {what}?")


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
    _require_columns(path, frame.columns, ("Exited", "Geography", "Gender"), "Kaggle's Churn_Modelling.csv")
    features = frame.drop(columns=[c for c in ("RowNumber", "CustomerId", "Surname", "Exited") if c in frame.columns])
    return Table(features, frame["Exited"], ("Geography", "Gender"), {"file": str(path), "target": "Exited"})


def _read_arrhythmia(path: Path) -> Table:
    """ODDS arrhythmia.mat: X (452 x 274 float), y (452 x 1, 1 for ODDS's 66 'outlier' rows).

    The 17 columns constant over all rows carry nothing and are dropped (indices recorded), so 257
    features remain: Table 5's 226 is not reached, and no rule that reaches it is known to us.
    """
    from scipy.io import loadmat

    try:
        mat = loadmat(path)
    except (ValueError, OSError, NotImplementedError) as error:
        raise SaflexError(f"{path} is not a readable MATLAB file ({error}): is it ODDS's arrhythmia.mat?") from None
    _require_columns(path, mat, ("X", "y"), "ODDS's arrhythmia.mat", noun="variable(s)")
    x, y = np.asarray(mat["X"], dtype=np.float64), np.asarray(mat["y"]).ravel()
    if x.ndim != 2 or len(y) != len(x):
        raise SaflexError(f"{path}: X is {x.shape} and y has {len(y)} values; expected X rows x features, one y per row")
    features = pd.DataFrame(x, columns=[f"x{j}" for j in range(x.shape[1])])
    constant = [j for j, n in enumerate(features.nunique(dropna=False)) if n <= 1]
    return Table(features.drop(columns=[f"x{j}" for j in constant]), pd.Series(y.astype(np.int64)), (),
                 {"file": str(path), "target": "y", "columns_dropped_constant": {"count": len(constant), "indices": constant}})


# OpenML 1220's nominal attributes (quoted in its CSV export), plus url_hash: numeric in OpenML, but a
# hash id beyond 2**53 that float64 cannot hold, so read as text and used as a category.
CLICK_CATEGORICAL = ("ad_id", "advertiser_id", "keyword_id", "title_id", "description_id", "user_id", "url_hash")


def _read_click(path: Path) -> Table:
    """OpenML's Click_prediction_small export: target click; impression, depth, position, query_id continuous."""
    _require_columns(path, pd.read_csv(path, nrows=0).columns, ("click",) + CLICK_CATEGORICAL,
                     "OpenML's Click_prediction_small.csv")
    return read_csv_table(path, "click", CLICK_CATEGORICAL)


SOURCES = {
    "appetency": TabularSource("appetency", 1111, None, None, {"rows": 494021, "features": 39, "positives": 97278}),
    "arrhythmia": TabularSource("arrhythmia", 1017, "arrhythmia.mat", _read_arrhythmia,
                                {"rows": 452, "features": 226, "positives": 66}),
    "click": TabularSource("click", 42733, "Click_prediction_small.csv", _read_click,
                           {"rows": 39948, "features": 12, "positives": 6728}),
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
    return Table(bunch.data, bunch.target, inferred_categorical(bunch.data),
                 {"openml_id": openml_id, "openml_name": bunch.details.get("name")})


def column_kind(column: pd.Series) -> tuple[str, str | None]:
    """How a column's values read, with an example value that shows it: 'number', 'text', 'mixed'
    (numbers and text), or 'wide-integer' (integers beyond 2**53, which float64 would round)."""
    values = column.dropna()
    if pd.api.types.is_numeric_dtype(values):
        wide = values[values.abs() > WIDE_INTEGER] if pd.api.types.is_integer_dtype(values) else values[:0]
        return ("wide-integer", str(wide.iloc[0])) if len(wide) else ("number", None)
    text = values.astype(str)
    numbers = pd.to_numeric(text, errors="coerce")
    if numbers.isna().any():
        return ("mixed" if numbers.notna().any() else "text"), text[numbers.isna()].iloc[0]
    wide = text[text.str.fullmatch(r"\s*[+-]?\d+\s*") & (numbers.abs() > WIDE_INTEGER)]
    return ("wide-integer", wide.iloc[0]) if len(wide) else ("number", None)


def inferred_categorical(features: pd.DataFrame) -> tuple[str, ...]:
    """Nominal columns, text columns, and integer columns that float64 cannot hold (as exact categories)."""
    return tuple(c for c in features.columns if isinstance(features[c].dtype, pd.CategoricalDtype)
                 or column_kind(features[c])[0] in ("text", "wide-integer"))


def _read_text(path: Path, na_values: tuple[str, ...], header: bool) -> pd.DataFrame:
    """Every cell as text (numbers are parsed later, column by column, so none is rounded on the way)."""
    frame = pd.read_csv(path, sep=None, engine="python", dtype=str, header="infer" if header else None,
                        na_values=list(na_values) or None)  # sniffs ',' or ';'; pandas' own NA markers stay
    if not header:
        frame.columns = [str(i) for i in range(frame.shape[1])]
    return frame


def _columns_list(frame: pd.DataFrame) -> str:
    return ", ".join(map(str, frame.columns))


def binary_target(target: pd.Series, positive: tuple[str, ...]) -> pd.Series:
    """A multi-class target column as the binary task of its `positive` values ('positive' / 'negative'; a
    missing cell stays missing), e.g. UCI Arrhythmia's 16 class codes as ODDS's outlier task."""
    values = target.dropna().astype(str).str.strip()
    absent = [v for v in positive if v not in set(values)]
    if absent:
        raise SaflexError(f"--positive names value(s) {', '.join(absent)} that the target column {target.name!r} "
                          f"never holds; its values are: {', '.join(sorted(set(values)))}")
    return values.isin(positive).map({True: "positive", False: "negative"}).reindex(target.index)


def read_csv_table(path: Path, target: str, categorical: tuple[str, ...] | None, *, na_values: tuple[str, ...] = (),
                   header: bool = True, drop: tuple[str, ...] = (), positive: tuple[str, ...] = ()) -> Table:
    """A CSV: the target column (binary by its `positive` values, if given), and the categoricals
    given (the whole list) or inferred."""
    path = Path(path)
    if not path.is_file():
        raise SaflexError(f"--csv {path} does not exist")
    frame = _read_text(path, tuple(na_values), header)
    if target not in frame.columns:
        raise SaflexError(f"target column {target!r} is not in {path.name}; its columns are: {_columns_list(frame)}")
    if target in drop:
        raise SaflexError(f"--drop names the target column {target!r}: leave it out of --drop, or choose another --target")
    unknown = [c for c in drop if c not in frame.columns]
    if unknown:
        raise SaflexError(f"--drop names column(s) {', '.join(unknown)} that {path.name} does not have; "
                          f"its columns are: {_columns_list(frame)}")
    features = frame.drop(columns=[target, *drop])
    categorical = inferred_categorical(features) if categorical is None else tuple(categorical)
    unknown = [c for c in categorical if c not in features.columns]
    if unknown:
        raise SaflexError(f"--categorical names column(s) {', '.join(unknown)} that {path.name} does not have "
                          f"(or that is the target or dropped); its feature columns are: {_columns_list(features)}")
    kinds = {c: column_kind(features[c])[0] for c in features.columns}
    numbers = {c: pd.to_numeric(features[c]) for c in features.columns if c not in categorical and kinds[c] == "number"}
    features = features.assign(**numbers)  # other non-categorical columns stay text: check_table refuses them
    source = {"file": str(path), "target": target, **({"na_values": list(na_values)} if na_values else {}),
              **({"header": False} if not header else {}), **({"columns_dropped": list(drop)} if drop else {}),
              **({"positive": list(positive)} if positive else {})}
    wide = [c for c in categorical if kinds[c] == "wide-integer"]
    if wide:
        source["integers_beyond_2**53_as_categories"] = wide
    return Table(features, binary_target(frame[target], positive) if positive else frame[target], categorical, source)


def load_table(name: str, data_root: Path, *, openml_id: int | None = None, csv: str | None = None,
               target: str | None = None, categorical: tuple[str, ...] | None = None,
               na_values: tuple[str, ...] | None = None, no_header: bool | None = None,
               drop: tuple[str, ...] | None = None, positive: tuple[str, ...] | None = None) -> Table:
    """The raw table: a user CSV, else the local file in --data-root, else OpenML."""
    if csv is not None:
        if not target:
            raise SaflexError("--csv needs --target COLUMN (the column to predict)")
        return read_csv_table(Path(csv), target, categorical, na_values=na_values or (), header=not no_header,
                              drop=drop or (), positive=positive or ())
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


NOT_A_NUMBER = {  # what a non-categorical column holds instead of numbers -> what to do about it
    "mixed": "mixes numbers and text (e.g. {example!r}): fix the file, mark such values missing with "
             "--na-values, or list it in --categorical to treat every value as a category",
    "text": "holds text (e.g. {example!r}) but is not a categorical column: list it in --categorical, or --drop it",
    "wide-integer": "holds integers beyond 2**53 (e.g. {example}) that float64 would round: list it in "
                    "--categorical (each value becomes an exact category), or --drop it",
}


def _refuse_non_numbers(features: pd.DataFrame, categorical: tuple[str, ...]) -> None:
    for column in (c for c in features.columns if c not in categorical):
        kind, example = column_kind(features[column])
        if kind != "number":
            raise SaflexError(f"column {column!r} " + NOT_A_NUMBER[kind].format(example=example))


def _refuse_infinite(features: pd.DataFrame, categorical: tuple[str, ...]) -> None:
    """An inf cell cannot be standardised (and breaks the AUC): refuse it at load time, naming it."""
    for column in features.columns:
        if column in categorical:
            continue
        values = features[column].to_numpy(dtype=np.float64, na_value=np.nan)
        rows = np.flatnonzero(np.isinf(values))
        if len(rows):
            raise SaflexError(f"column {column!r} has an infinite value ({values[rows[0]]:g}) in data row {rows[0] + 1} "
                              f"(the first data row is 1): replace it with a number, or make it missing "
                              f"(an empty cell, or its text in --na-values)")


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
    _refuse_non_numbers(features, categorical)
    _refuse_infinite(features, categorical)  # before rows go, so the row number is the file's
    if missing_target:
        notes["rows_dropped_missing_target"] = missing_target
        keep = target.notna().to_numpy()
        features, target = features[keep], target[keep]
    if features.shape[1] == 0:
        raise SaflexError("the table has no usable feature column")
    return features, target, categorical, notes


def feature_count(name: str, data_root: Path, **source_options) -> int:
    """Feature columns the models will see (SAINT's batch rule reads it before any run)."""
    return check_table(load_table(name, data_root, **source_options))[0].shape[1]


def imputed_cells(features: pd.DataFrame, categorical: tuple[str, ...]) -> dict:
    """Per column with missing cells (all splits): how many, and what fills them."""
    counts = features.isna().sum()
    return {str(c): {"cells": int(n), "filled_with": "missing code 0" if c in categorical else "train mean"}
            for c, n in counts.items() if n}


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
    scale: pd.Series  # the train std, except for the constant columns (constant_rule)
    constant: tuple[str, ...]  # continuous columns constant in the train rows (std below STD_FLOOR)

    @classmethod
    def fit(cls, train: pd.DataFrame, categorical: tuple[str, ...], constant_rule: str = CONSTANT_RULES[0]) -> "Preprocessor":
        continuous = [c for c in train.columns if c not in categorical]
        categories = {c: sorted(train[c].dropna().astype(str).unique()) for c in categorical}
        values = train[continuous].astype(float)
        fill = values.mean()
        filled = values.fillna(fill)
        std = filled.std(ddof=0)
        constant = std < STD_FLOOR
        scale = std.clip(lower=STD_FLOOR) if constant_rule == "floor" else std.where(~constant, 1.0)
        return cls(categories, fill, filled.mean(), scale, tuple(std.index[constant]))

    def transform(self, frame: pd.DataFrame) -> torch.Tensor:
        codes = [frame[c].astype(str).where(frame[c].notna(), MISSING)
                 .map({v: i + 1 for i, v in enumerate(vocab)}).fillna(0).to_numpy(np.float32)
                 for c, vocab in self.categories.items()]
        continuous = ((frame[list(self.mean.index)].astype(float).fillna(self.fill) - self.mean) / self.scale)
        columns = codes + [continuous[c].to_numpy(np.float32) for c in self.mean.index]
        return torch.from_numpy(np.stack(columns, axis=1)).float()

    @property
    def cardinalities(self) -> list[int]:
        """Codes per categorical column, the missing code included (SAINT's cat_dims)."""
        return [len(vocab) + 1 for vocab in self.categories.values()]


def _checked(table: Table):
    """The checked table with its feature columns in tensor order, class ids, classes and counts."""
    features, target_values, categorical, notes = check_table(table)
    classes = sorted(pd.unique(target_values), key=str)
    targets = target_values.map({c: i for i, c in enumerate(classes)}).to_numpy(np.int64)
    counts = np.bincount(targets, minlength=len(classes))
    for label, count in zip(classes, counts):
        if count < 3:
            raise SaflexError(f"class {str(label)!r} has only {count} row(s): each class needs at least 3 "
                              f"(one for each of train, val and test); merge or drop it"
                              + ("" if len(classes) == 2 else ", or make the task binary with --positive VALUES"))
    features = features[list(categorical) + [c for c in features.columns if c not in categorical]]
    return features, targets, classes, counts, categorical, notes


def check_constant_rule(constant_rule: str) -> str:
    if constant_rule not in CONSTANT_RULES:
        raise SaflexError(f"options.constant_columns = {constant_rule!r} is not one of: {', '.join(CONSTANT_RULES)}")
    return constant_rule


def _fitted(features: pd.DataFrame, targets: np.ndarray, categorical: tuple[str, ...], seed: int, constant_rule: str):
    """The seed's split and the statistics fitted on its train rows."""
    check_constant_rule(constant_rule)
    index = stratified_split(targets, seed)
    return index, Preprocessor.fit(features.iloc[index["train"]], categorical, constant_rule)


def constant_in_train(table: Table, seeds) -> dict[int, tuple[str, ...]]:
    """Per split seed, the continuous columns constant in its train rows (where the rule acts)."""
    features, targets, _, _, categorical, _ = _checked(table)
    return {seed: _fitted(features, targets, categorical, seed, CONSTANT_RULES[0])[1].constant for seed in seeds}


def largest_values(splits: dict[str, torch.Tensor], n_categorical: int) -> dict[str, float]:
    """Largest |standardised continuous feature| per split (categorical codes are not scaled)."""
    return {name: float(x[:, n_categorical:].abs().max()) if x.shape[1] > n_categorical else 0.0
            for name, x in splits.items()}


def make_splits(table: Table, seed: int, name: str, constant_rule: str = CONSTANT_RULES[0]) -> Splits:
    features, targets, classes, counts, categorical, notes = _checked(table)
    index, prep = _fitted(features, targets, categorical, seed, constant_rule)

    def split(rows: np.ndarray) -> Split:
        return Split(prep.transform(features.iloc[rows]), torch.from_numpy(targets[rows]))

    train, val, test = (split(index[part]) for part in ("train", "val", "test"))
    provenance = {
        "dataset": name, **table.source, **notes, "imputed": imputed_cells(features, categorical),
        "rows": int(len(targets)), "classes": [str(c) for c in classes],
        "class_counts": counts.tolist(), "categorical": [str(c) for c in categorical],
        "cardinalities": prep.cardinalities, "continuous": [str(c) for c in prep.mean.index],
        "split": {"seed": seed, "fractions": list(SPLIT_FRACTIONS), "stratified": True,
                  **{k: int(len(v)) for k, v in index.items()}},
        "constant_in_train": {"rule": constant_rule, "count": len(prep.constant),
                              "columns": [str(c) for c in prep.constant]},
        "largest_abs_feature": {**largest_values({"val": val.inputs, "test": test.inputs}, len(categorical)),
                                "bound": FEATURE_BOUND},
    }
    return Splits(train, val, test, num_classes=len(classes),
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


def load_tabular(name: str, data_root: Path, seed: int, constant_rule: str = CONSTANT_RULES[0], **source_options) -> Splits:
    splits = make_splits(load_table(name, data_root, **source_options), seed, name, constant_rule)
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
