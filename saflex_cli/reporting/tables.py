"""The table model every renderer reads: run records -> rows (collect) -> cells -> paired gains -> decisions.

A cell aggregates the runs of ONE setting (all of the config but the seed; config.setting_key),
so runs made with other settings or on other data are never pooled as seeds: they become rows of
their own, labelled by how they differ from the recipe's defaults. The verdict is fixed before
any run: our mean agrees with the paper's when it lies within 2 * sqrt(std_ours^2 +
std_paper^2) of it; a gain is read from per-seed differences with a 95% interval
(comparison.py), beside the sign test of the paper's gain. The Markdown, the LaTeX, the plots and
the demo's summary render these frames; none of them computes a number of its own.
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import re

import numpy as np
import pandas as pd

from ..config import RunConfig
from ..families.base import Recipe
from .comparison import interval_text, paired_gain
from .paper import paper_value
from .readings import read_gain, reference_gain

# Not settings of a row: what the table's layout, the method's name or the data already say.
NOT_IN_LABEL = {"seed", "aug", "refine", "family", "dataset", "model", "data_checksums", "schema", "options.csv",
                "options.pool", "options.pool_manifest", "options.pool_label", "options.method"}
# Settings of one upstream only: a No Aug run is the counterpart of every upstream's run.
UPSTREAM_ONLY = ("saflex", "train_mode", "options.aug_kwargs", "options.pool")
DECISIONS = (("kept_fraction", "kept"), ("changed_fraction", "relabelled"),
             ("relabelled_among_correct", "relabelled among correct"),
             ("agree_prediction_fraction", "agrees w/ prediction"), ("agree_upstream_fraction", "agrees w/ upstream"),
             ("agree_true_fraction", "agrees w/ true label"), ("top_label_share", "top label share"),
             ("gumbel_flip_fraction", "Gumbel flips"), ("pi_margin", "Π margin"))
DEGENERATE_SHARE = 0.999  # a classifier that predicts one class for (almost) every test sample


def flatten(payload: dict, prefix: str = "") -> dict:
    """Nested settings as dotted keys; the options' (name, value) pairs as options.NAME."""
    out = {}
    for key, value in payload.items():
        name = f"{prefix}{key}"
        if name == "options":
            value = dict(value)
        if isinstance(value, dict):
            out.update(flatten(value, f"{name}."))
        else:
            out[name] = json.dumps(value) if isinstance(value, (list, tuple)) else value
    return out


def short_name(key: str) -> str:
    """'saflex.beta' -> 'beta', 'options.aug_kwargs.prob' -> 'aug.prob', 'optim.lr' -> 'lr'."""
    if key.startswith("options.aug_kwargs."):
        return "aug." + key.split(".", 2)[2]
    return key.split(".", 1)[1] if key.split(".")[0] in ("saflex", "optim", "options") else key


def recipe_default(config: RunConfig, recipe: Recipe, provenance: dict | None = None) -> RunConfig:
    """The recipe's defaults for this run's dataset, method, model and seed."""
    default = recipe.baseline(config, provenance or {}) if recipe.baseline else recipe.defaults(config.dataset)
    return dataclasses.replace(default, aug=config.aug, refine=config.refine, model=config.model, seed=config.seed)


def setting_differences(config: RunConfig, default: RunConfig) -> dict[str, object]:
    """What sets this run's setting apart from `default`, the recipe's defaults for its dataset,
    method and model (`recipe_default`)."""
    ours, theirs = flatten(config.identity_payload()), flatten(default.identity_payload())
    # A key the run's identity leaves out (pi_forward when it trains on the augmented batch alone)
    # is not one of its settings.
    return {short_name(k): value for k, value in sorted(ours.items())
            if k not in NOT_IN_LABEL and value != theirs.get(k)}


def base_key(config: RunConfig) -> str:
    """Pairs an upstream row's runs with the No Aug runs of the same training settings."""
    payload = flatten(dataclasses.replace(config, aug="none", refine="none").identity_payload(with_seed=False))
    kept = {k: v for k, v in payload.items() if not k.startswith(UPSTREAM_ONLY)}
    return hashlib.sha256(json.dumps(kept, sort_keys=True, default=str).encode()).hexdigest()[:10]


def saflex_key(config: RunConfig, default: RunConfig) -> str | None:
    """Pairs a refined row that is not the paper's SAflex (another refiner, or SAflex with a choice
    changed) with the paper's SAflex on the same upstream and training settings (`default`: the
    recipe's defaults for the run, whose SAflex choices are the paper's)."""
    if config.refine == "none":
        return None
    paper = dataclasses.replace(config, refine="saflex", saflex=default.saflex)
    key = paper.setting_key()
    return key if key != config.setting_key() else None


def decision_means(record: dict) -> dict[str, float]:
    """SAflex's per-epoch decisions, averaged over the epochs of one run."""
    epochs = [e.get("saflex", {}) for e in record["epochs"]]
    return {name: float(np.mean([e[name] for e in epochs if name in e]))
            for name, _ in DECISIONS if any(name in e for e in epochs)}


def degenerate(test: dict) -> bool:
    return test.get("top_prediction_share", 0.0) >= DEGENERATE_SHARE


def collect(recipe: Recipe, records: list[dict], selection: str) -> pd.DataFrame:
    rows = []
    for record in records:
        config = RunConfig.from_dict(record["config"])
        default = recipe_default(config, recipe, record.get("data"))
        differences = setting_differences(config, default)
        epoch_times = [e["train_time_s"] for e in record["epochs"]]
        keys = {"setting_key": config.setting_key(), "base_key": base_key(config),
                "upstream_key": dataclasses.replace(config, refine="none").setting_key()
                if config.refine != "none" else None,
                "saflex_key": saflex_key(config, default)}
        for cell in recipe.cells(record, selection):
            paper = paper_value(recipe.tables, cell.method, cell.model, cell.column)
            rows.append({"family": recipe.name, "table": recipe.table, "model": cell.model, "column": cell.column,
                         "method": cell.method, "aug": config.aug, "refine": config.refine,
                         "settings": ", ".join(f"{k}={v}" for k, v in differences.items()), **keys,
                         "data": ";".join(f"{n}={c}" for n, c in config.data_checksums),
                         "release": (record.get("data") or {}).get("release"),
                         "seed": config.seed, "value": cell.value, "selection": selection,
                         "epochs": len(record["epochs"]), "train_s_per_epoch": float(np.median(epoch_times)),
                         "device": record["device"], "run_id": record["run_id"],
                         "degenerate": degenerate(record["selections"][selection]["test"]),
                         "paper_mean": paper[0] if paper else math.nan, "paper_std": paper[1] if paper else math.nan,
                         **decision_means(record)})
    frame = pd.DataFrame(rows)
    return label_rows(frame) if not frame.empty else frame


def label_rows(frame: pd.DataFrame) -> pd.DataFrame:
    """Each setting's row label: its differences from the defaults, and its data's checksums or its
    key where two settings of one cell would otherwise share a label."""
    frame = frame.copy()
    frame["label"] = [", ".join(p for p in pair if p) for pair in zip(frame.settings, superseded_notes(frame))]
    for column in ("data", "setting_key"):
        groups = frame.groupby(["model", "column", "method", "label"], sort=False).setting_key.transform("nunique")
        clash = groups > 1
        extra = frame[column].map(data_label if column == "data" else (lambda key: f"setting {key}"))
        frame.loc[clash, "label"] = [", ".join(p for p in (a, b) if p) for a, b in zip(frame.label[clash], extra[clash])]
    return frame


def superseded_notes(frame: pd.DataFrame) -> list[str]:
    """'unofficial pneumoniamnist.npz 3062d8c6 (superseded by the official file)' for a row whose data file's
    checksum is no known release (its record's provenance says 'unverified') in a cell that also has
    rows on an official release (the reduced PneumoniaMNIST copy beside the official file)."""
    official = frame.release.notna() & (frame.release != "unverified")
    cell_has_official = official.groupby([frame.model, frame.column]).transform("any")
    superseded = (frame.release == "unverified") & cell_has_official
    return [f"{data_label(data, 'unofficial')} (superseded by the official file)" if old else ""
            for old, data in zip(superseded, frame.data)]


def data_label(checksums: str, prefix: str = "data") -> str:
    """'a.npz=md5:3062d8c6...' -> 'data a.npz 3062d8c6': enough to tell two versions of a file apart."""
    parts = [pair.split("=", 1) for pair in checksums.split(";") if pair]
    return f"{prefix} " + (", ".join(f"{name} {value.split(':')[-1][:8]}" for name, value in parts) or "unrecorded")


@dataclasses.dataclass
class Group:
    """The runs of one setting in one cell: value per seed."""

    values: dict[int, float]
    degenerate: bool

    @property
    def n(self) -> int:
        return len(self.values)

    @property
    def mean(self) -> float:
        return float(np.mean(list(self.values.values())))

    @property
    def std(self) -> float:
        return float(np.std(list(self.values.values()), ddof=1)) if self.n > 1 else 0.0


def groups(frame: pd.DataFrame) -> dict[tuple, Group]:
    """(model, column, method, label) -> Group; one value per seed (the newest record if two)."""
    out = {}
    for key, rows in frame.groupby(["model", "column", "method", "label"], sort=False):
        by_seed = rows.drop_duplicates("seed", keep="last")
        out[key] = Group(dict(zip(by_seed.seed, by_seed.value)), bool(rows.degenerate.any()))
    return out


def seconds_per_epoch(rows: pd.DataFrame) -> float | str:
    """Median training seconds per epoch of some runs; a time across devices means nothing, so runs on
    several (two CPUs of one declared kind differ 3× in speed: a device names its CPU model, instruction
    set and threads) get one median per device."""
    if rows.device.nunique() == 1:
        return float(rows.train_s_per_epoch.median())
    medians = rows.groupby("device").train_s_per_epoch.median()
    return "mixed devices: " + "; ".join(f"{seconds:.2f} on {device}" for device, seconds in medians.items())


def device_kind(device: str) -> str:
    """A record's device without its thread count: the GPU, or the CPU's model and instruction set,
    whose kernels (and so rounding) a paired difference must share to carry no machine difference."""
    return re.sub(r", \d+ threads?$", "", device)


def cell_summaries(recipe: Recipe, frame: pd.DataFrame) -> pd.DataFrame:
    """One row per cell (model, dataset, method, setting): our mean, std and seeds beside the paper's,
    the difference and the verdict. The Markdown, the LaTeX and the tidy summary CSV all show these."""
    rows = []
    for (model, column, method, label), group in groups(frame).items():
        paper = paper_value(recipe.tables, method, model, column)
        runs = frame[(frame.model == model) & (frame.column == column) & (frame.method == method) & (frame.label == label)]
        difference = group.mean - paper[0] if paper else math.nan
        agrees = paper is not None and abs(difference) <= 2 * math.sqrt(group.std**2 + paper[1] ** 2)
        rows.append({"method": method, "label": label, "model": model, "dataset": column, "mean": group.mean,
                     "std": group.std, "n": group.n, "paper_mean": paper[0] if paper else math.nan,
                     "paper_std": paper[1] if paper else math.nan, "difference": difference,
                     "verdict": ("agrees" if agrees else "differs") if paper else "no paper value",
                     "degenerate": group.degenerate, "train_s_per_epoch": seconds_per_epoch(runs),
                     "devices": "; ".join(sorted(runs.device.unique()))})
    return pd.DataFrame(rows)


def row_name(method: str, label: str) -> str:
    return f"{method} [{label}]" if label else method


def ordered_rows(recipe: Recipe, frame: pd.DataFrame) -> list[tuple[str, str]]:
    pairs = list(dict.fromkeys(zip(frame.method, frame.label)))
    order = {m: i for i, m in enumerate(recipe.methods)}
    return sorted(pairs, key=lambda p: (order.get(p[0], len(order)), p[0] if p[0] not in order else "", p[1]))


def ordered_groups(recipe: Recipe, frame: pd.DataFrame):
    """The (model, column, method, label) groups of a frame in the tables' row order: the paper's
    methods in its order, each setting's default first, then its labelled settings."""
    for (model, column), cell in frame.groupby(["model", "column"], sort=False):
        for method, label in ordered_rows(recipe, cell):
            yield (model, column, method, label), cell[(cell.method == method) & (cell.label == label)]


def shared_settings(frame: pd.DataFrame) -> list[str]:
    """Settings every row of a table has in common (said once, in the caption, not in each label)."""
    labels = [set(filter(None, s.split(", "))) for s in frame.label.unique()]
    return sorted(set.intersection(*labels)) if labels else []


def without_settings(label: str, common: list[str]) -> str:
    return ", ".join(p for p in label.split(", ") if p and p not in common)


def gain_rows(recipe: Recipe, frame: pd.DataFrame) -> pd.DataFrame:
    """Every refined row against its upstream row, against No Aug and (when it is not the paper's SAflex)
    against the paper's SAflex; every upstream row against No Aug."""
    rows_by_key = dict(iter(frame.groupby(["model", "column", "setting_key"], sort=False)))
    by_key = {key: dict(zip(rows.drop_duplicates("seed", keep="last").seed,
                            rows.drop_duplicates("seed", keep="last").value))
              for key, rows in rows_by_key.items()}
    kinds = {key: dict(zip(rows.drop_duplicates("seed", keep="last").seed,
                           rows.drop_duplicates("seed", keep="last").device.map(device_kind)))
             for key, rows in rows_by_key.items()}
    noaug = frame[(frame.aug == "none") & (frame.refine == "none")]
    noaug_by_base = dict(iter(noaug.groupby(["model", "column", "base_key"])))
    out = []
    for (model, column, method, label), rows in frame.groupby(["model", "column", "method", "label"], sort=False):
        first = rows.iloc[0]
        ours = by_key[(model, column, first.setting_key)]
        wanted = [("upstream", rows_by_key.get((model, column, first.upstream_key)) if first.refine != "none" else None),
                  ("No Aug", noaug_by_base.get((model, column, first.base_key)) if first.aug != "none" else None),
                  ("SAflex", rows_by_key.get((model, column, first.saflex_key)))]
        for name, base in wanted:
            versus_key = (model, column, base.iloc[0].setting_key) if base is not None else None
            gain = None if base is None else paired_gain(ours, by_key[versus_key])
            if gain is None:
                continue
            mine, theirs = kinds[(model, column, first.setting_key)], kinds[versus_key]
            across = any(mine[seed] != theirs[seed] for seed in gain.seeds)
            base_method = base.iloc[0].method
            # The paper has no row for a changed choice: its value is the default's, not a measured gain.
            reference = reference_gain(recipe.tables, method, base_method, model, column) if name != "SAflex" else None
            reading = read_gain(gain.low, gain.high, reference, gain.std, gain.n)
            out.append({"model": model, "column": column, "method": method, "label": label, "versus": base_method,
                        "versus_label": base.iloc[0].label, "kind": name, "n": gain.n, "gain": gain.mean,
                        "gain_std": gain.std, "low": gain.low, "high": gain.high,
                        "paper_gain": reference.gain if reference and not reference.source else None,
                        "reference_gain": reference.gain if reference else None,
                        "reference": reference.source if reference else "", "decision": reading.decision,
                        "seeds_to_decide": reading.seeds_to_decide, "reading": reading.text,
                        "interval": interval_text(gain), "across_devices": across})
    return pd.DataFrame(out)


def recorded(frame: pd.DataFrame, catalogue) -> list[tuple[str, str]]:
    """The (statistic, title) pairs of `catalogue` that some run of the frame recorded."""
    return [(name, title) for name, title in catalogue if name in frame.columns and frame[name].notna().any()]
