"""Run records -> tables beside the paper's numbers, paired-by-seed gains, and SAflex's decisions.

A cell aggregates the runs of ONE setting (all of the config but the seed; config.setting_key),
so runs made with other settings or on other data are never pooled as seeds: they become rows of
their own, labelled by how they differ from the recipe's defaults. The verdict is fixed before
any run: our mean agrees with the paper's when it lies within 2 * sqrt(std_ours^2 +
std_paper^2) of it; a gain is read from per-seed differences with a 95% interval
(comparison.py), beside the sign test of the paper's gain.
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import math
from pathlib import Path

import numpy as np
import pandas as pd

from .comparison import interval_text, paired_gain, verdict
from .config import RunConfig
from .errors import SaflexError
from .families.base import Recipe
from .paper import paper_value
from .records import atomic_write_text, load_failures, load_records
from .registry import FAMILIES
from .trust import write_trust_report

TOLERANCE = "within 2·sqrt(σ_ours² + σ_paper²) of the paper's mean"
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
    frame["label"] = frame.settings
    for column in ("data", "setting_key"):
        groups = frame.groupby(["model", "column", "method", "label"], sort=False).setting_key.transform("nunique")
        clash = groups > 1
        extra = frame[column].map(data_label if column == "data" else (lambda key: f"setting {key}"))
        frame.loc[clash, "label"] = [", ".join(p for p in (a, b) if p) for a, b in zip(frame.label[clash], extra[clash])]
    return frame


def data_label(checksums: str) -> str:
    """'a.npz=md5:3062d8c6...' -> 'data a.npz 3062d8c6': enough to tell two versions of a file apart."""
    parts = [pair.split("=", 1) for pair in checksums.split(";") if pair]
    return "data " + (", ".join(f"{name} {value.split(':')[-1][:8]}" for name, value in parts) or "unrecorded")


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


def _cell_text(cell) -> str:
    text = f"{cell.mean:.2f} ± {cell.std:.2f} ({cell.n})" + (" ⚠" if cell.degenerate else "")
    if cell.verdict == "no paper value":
        return text + " · paper —"
    return (text + f" · paper {cell.paper_mean:.2f} ± {cell.paper_std:.2f} · Δ {cell.difference:+.2f} "
            f"{'✓' if cell.verdict == 'agrees' else '✗'}")


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


def render_table(recipe: Recipe, model: str, frame: pd.DataFrame) -> list[str]:
    common = shared_settings(frame)
    frame = frame.assign(label=frame.label.map(lambda l: without_settings(l, common)))
    columns = list(dict.fromkeys(frame.column))
    cells = {(c.model, c.dataset, c.method, c.label): c for c in cell_summaries(recipe, frame).itertuples()}
    lines = [f"## {model}", ""]
    if common:
        lines += [f"Settings of every row below (beyond the recipe's defaults): {', '.join(common)}.", ""]
    lines += ["| method | " + " | ".join(columns) + " | train s/epoch |", "|---" * (len(columns) + 2) + "|"]
    for method, label in ordered_rows(recipe, frame):
        texts = [_cell_text(cells[(model, column, method, label)]) if (model, column, method, label) in cells else "—"
                 for column in columns]
        seconds = seconds_per_epoch(frame[(frame.method == method) & (frame.label == label)])
        seconds = seconds if isinstance(seconds, str) else f"{seconds:.2f}"
        lines.append(f"| {row_name(method, label)} | " + " | ".join(texts) + f" | {seconds} |")
    lines += reference_rows(recipe, model, columns, set(frame.method))
    return lines


def reference_rows(recipe: Recipe, model: str, columns: list[str], trained: set[str]) -> list[str]:
    """Rows of the paper's other tables that this tool does not train (LP-A3), for reference."""
    from .paper import paper_tables
    table = paper_tables()
    rows = []
    for number in recipe.reference_tables:
        for method in dict.fromkeys(table[(table.table == number) & (table.model == model)].method):
            if method in trained or method in recipe.methods:
                continue
            values = [paper_value((number,), method, model, column) for column in columns]
            texts = [f"paper {v[0]:.2f} ± {v[1]:.2f}" if v else "—" for v in values]
            rows.append(f"| {method} (paper Table {number}; not trained here) | " + " | ".join(texts) + " | — |")
    return rows


def gain_rows(recipe: Recipe, frame: pd.DataFrame) -> pd.DataFrame:
    """Every refined row against its upstream row, against No Aug and (when it is not the paper's SAflex)
    against the paper's SAflex; every upstream row against No Aug."""
    rows_by_key = dict(iter(frame.groupby(["model", "column", "setting_key"], sort=False)))
    by_key = {key: dict(zip(rows.drop_duplicates("seed", keep="last").seed,
                            rows.drop_duplicates("seed", keep="last").value))
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
            gain = None if base is None else paired_gain(ours, by_key[(model, column, base.iloc[0].setting_key)])
            if gain is None:
                continue
            base_method = base.iloc[0].method
            paper_ours = paper_value(recipe.tables, method, model, column)
            paper_base = paper_value(recipe.tables, base_method, model, column)
            # The paper has no row for a changed choice: its value is the default's, not a measured gain.
            paper_gain = paper_ours[0] - paper_base[0] if paper_ours and paper_base and name != "SAflex" else None
            out.append({"model": model, "column": column, "method": method, "label": label, "versus": base_method,
                        "versus_label": base.iloc[0].label, "kind": name, "n": gain.n, "gain": gain.mean,
                        "gain_std": gain.std, "low": gain.low, "high": gain.high, "paper_gain": paper_gain,
                        "reading": verdict(gain, paper_gain), "interval": interval_text(gain)})
    return pd.DataFrame(out)


def render_gains(gains: pd.DataFrame) -> list[str]:
    if gains.empty:
        return []
    lines = ["## Gains, paired by seed", "",
             "Each row: the per-seed difference between a row and its counterpart (the same settings and seeds, "
             "without the refinement, without augmentation, or with SAflex's choices at the paper's defaults), its mean with a 95% t interval over seeds, and the "
             "paper's difference of means where it has both rows.", "",
             "| model | dataset | row | versus | n | Δ (paired) | 95% interval | paper Δ | reading |",
             "|---|---|---|---|---|---|---|---|---|"]
    for row in gains.itertuples():
        paper = f"{row.paper_gain:+.2f}" if row.paper_gain is not None and not pd.isna(row.paper_gain) else "—"
        lines.append(f"| {row.model} | {row.column} | {row_name(row.method, row.label)} | "
                     f"{row_name(row.versus, row.versus_label)} | {row.n} | {row.gain:+.2f} | {row.interval} | "
                     f"{paper} | {row.reading} |")
    return lines + [""]


def recorded(frame: pd.DataFrame, catalogue) -> list[tuple[str, str]]:
    """The (statistic, title) pairs of `catalogue` that some run of the frame recorded."""
    return [(name, title) for name, title in catalogue if name in frame.columns and frame[name].notna().any()]


def render_decisions(recipe: Recipe, frame: pd.DataFrame) -> list[str]:
    present = recorded(frame, DECISIONS)
    if not present:
        return []
    # A refiner that records no decisions (Soft-Augmentation) has no row here.
    refined = frame[(frame.refine != "none") & frame[[name for name, _ in present]].notna().any(axis=1)]
    if refined.empty:
        return []
    lines = ["## What the refinement decided", "",
             "Means over epochs and seeds of the per-epoch statistics in the run records (fractions of the augmented "
             "samples; 'relabelled among correct': of those the model already classified as their upstream label; "
             "Π margin: mean gap between Π's two largest entries).", "",
             "| model | dataset | row | n | " + " | ".join(t for _, t in present) + " |",
             "|---" * (len(present) + 4) + "|"]
    for (model, column, method, label), rows in ordered_groups(recipe, refined):
        rows = rows.drop_duplicates("seed", keep="last")
        lines.append(f"| {model} | {column} | {row_name(method, label)} | {len(rows)} | "
                     + " | ".join(decision_texts(rows, present)) + " |")
    return lines + [""]


def decision_texts(rows: pd.DataFrame, present) -> list[str]:
    """Each decision's mean over a row's runs: a percentage, Π's margin as a number, '—' if absent."""
    values = [rows[name].mean() if name in rows else float("nan") for name, _ in present]
    return ["—" if pd.isna(v) else (f"{v:.2f}" if name == "pi_margin" else f"{100 * v:.1f}%")
            for (name, _), v in zip(present, values)]


SETTING_DECISIONS = (("kept_fraction", "kept"), ("changed_fraction", "relabelled"),
                     ("relabelled_among_correct", "relabelled among correct"),
                     ("agree_true_fraction", "agrees w/ true label"), ("gumbel_flip_fraction", "Gumbel flips"),
                     ("pi_margin", "Π margin"))


def _gain_text(gains: pd.DataFrame) -> str:
    if gains.empty:
        return "—"
    row = gains.iloc[0]
    return f"{row.gain:+.2f} {row.interval}" + ("" if row.n > 1 else " (1 seed)")


def render_settings(recipe: Recipe, frame: pd.DataFrame, gains: pd.DataFrame) -> list[str]:
    """One line per setting with an upstream: its score, its paired gains, and what it decided (the
    study's view: docs/findings.md takes this table as it is)."""
    rows = frame[frame.aug != "none"]
    if rows.empty or gains.empty:
        return []
    present = recorded(frame, SETTING_DECISIONS)
    lines = ["## Each setting against its counterparts", "",
             "Per row: test score (mean ± std over seeds), the paired-by-seed difference to its upstream row (the same "
             "settings without the refinement), to No Aug (the same training settings) and to the paper's SAflex (the "
             "same upstream and training settings, SAflex's choices at the paper's defaults), each with its 95% "
             "interval, and the refinement's decisions (means over epochs and seeds; '—' where the row decides "
             "nothing).", "",
             "| model | dataset | row | n | test | Δ vs upstream row | Δ vs No Aug | Δ vs SAflex |"
             + "".join(f" {t} |" for _, t in present),
             "|---" * (len(present) + 8) + "|"]
    for (model, column, method, label), group in ordered_groups(recipe, rows):
        group = group.drop_duplicates("seed", keep="last")
        mine = gains[(gains.model == model) & (gains.column == column) & (gains.method == method) & (gains.label == label)]
        texts = decision_texts(group, present)
        std = group.value.std(ddof=1) if len(group) > 1 else 0.0
        lines.append(f"| {model} | {column} | {row_name(method, label)} | {len(group)} | {group.value.mean():.2f} ± {std:.2f} | "
                     f"{_gain_text(mine[mine.kind == 'upstream'])} | {_gain_text(mine[mine.kind == 'No Aug'])} | "
                     f"{_gain_text(mine[mine.kind == 'SAflex'])} |" + "".join(f" {text} |" for text in texts))
    return lines + [""]


def render_markdown(recipe: Recipe, frame: pd.DataFrame, gains: pd.DataFrame, selection: str, title: str) -> str:
    lines = [f"# {title}", "",
             f"{recipe.caption}. Checkpoint: `{selection}`. Each cell: our mean ± std (distinct seeds) · the paper's "
             f"value · difference; ✓ when ours is {TOLERANCE}, a tolerance fixed before running. A row is one setting "
             f"(its label: how it differs from the recipe's defaults); settings are never pooled. "
             f"Epochs run: {', '.join(str(e) for e in sorted(frame.epochs.unique()))}. "
             f"Devices: {'; '.join(sorted(frame.device.unique()))}.", ""]
    for model, by_model in frame.groupby("model", sort=False):
        lines += render_table(recipe, model, by_model) + [""]
    if frame.degenerate.any():
        lines += ["⚠: at least one run of the cell predicts a single class for the whole test split (a degenerate "
                  "classifier).", ""]
    return "\n".join(lines + render_settings(recipe, frame, gains) + render_gains(gains) + render_decisions(recipe, frame))


def missing_lines(failures: list[dict]) -> str:
    """The runs whose cells are missing from the tables above, and why (their failure records)."""
    if not failures:
        return ""
    lines = ["", "## Missing runs", "", "Failed runs, left out of the tables above; rerun them with `--retry-failed`.", ""]
    lines += [f"- `{r['run_name']}`: {r['reason']} (epoch {r['epoch']}, step {r['step']})" for r in failures]
    return "\n".join(lines) + "\n"


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
    from .latex import render_latex
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
