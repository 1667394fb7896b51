"""The trust report: which generated images SAflex kept and relabelled, per source and per class.

ALIA trusts generated images through a hand-made filter (CLIP negative prompts, confidence
thresholds); SAflex decides per sample and per step. The trainer counts, over training, for each
(source, upstream class) how many samples were drawn, kept (weight > 0) and relabelled (argmax of
the soft label differs from the upstream class); this module turns those counts into tables
(and a plot with the 'plots' extra, pip install 'saflex[plots]': matplotlib is not a core dependency).
"""
from __future__ import annotations

from pathlib import Path

import pandas as pd

from ..store.records import atomic_write_text
from .plots import save_figure


def trust_frame(records: list[dict], method_of=None) -> pd.DataFrame:
    """One row per (run, source, class) with its counts and fractions."""
    rows = []
    for record in records:
        sources = record.get("data", {}).get("pool", {}).get("sources", [])
        classes = record.get("data", {}).get("class_names") or []
        config = record["config"]
        for entry in record.get("trust", []):
            s, c = entry["source"], entry["class"]
            rows.append({"run": record["run_name"], "dataset": config["dataset"],
                         "method": method_of(record) if method_of else config["aug"], "seed": config["seed"],
                         "source": sources[s] if s < len(sources) else str(s),
                         "class_name": classes[c] if c < len(classes) else str(c),
                         "seen": entry["seen"], "kept": entry["kept"], "relabelled": entry["relabelled"]})
    return pd.DataFrame(rows)


def by_source(frame: pd.DataFrame) -> pd.DataFrame:
    """Counts summed over classes: one row per (run, source)."""
    sums = frame.groupby(["dataset", "method", "run", "seed", "source"], sort=False)[["seen", "kept", "relabelled"]].sum().reset_index()
    sums["kept_fraction"] = sums.kept / sums.seen
    sums["relabelled_fraction"] = sums.relabelled / sums.seen
    return sums


def _percent(value: float) -> str:
    return f"{100 * value:.1f}%"


def render_trust_markdown(frame: pd.DataFrame, title: str) -> str:
    lines = [f"# {title}", "",
             "Per run with SAflex: of the generated images drawn during training, the share SAflex kept (weight > 0) "
             "and relabelled (its soft label's argmax differs from the pool's class), per source "
             "(method/prompt/setting) and per class. ALIA's counterpart is its CLIP filter.", "",
             "## Per source, mean over seeds", "", "| dataset | method | source | runs | seen | kept | relabelled |",
             "|---|---|---|---|---|---|---|"]
    runs = by_source(frame)
    for (dataset, method, source), group in runs.groupby(["dataset", "method", "source"], sort=False):
        lines.append(f"| {dataset} | {method} | {source} | {len(group)} | {int(group.seen.sum())} | "
                     f"{_percent(group.kept_fraction.mean())} | {_percent(group.relabelled_fraction.mean())} |")
    for run, group in frame.groupby("run", sort=False):
        first = group.iloc[0]
        lines += ["", f"## {run}", "", f"{first.method} on {first.dataset}, seed {first.seed}.", "",
                  "| source | class | seen | kept | relabelled |", "|---|---|---|---|---|"]
        for row in group.itertuples():
            lines.append(f"| {row.source} | {row.class_name} | {int(row.seen)} | {_percent(row.kept / row.seen)} | "
                         f"{_percent(row.relabelled / row.seen)} |")
    return "\n".join(lines) + "\n"


def plot_trust(frame: pd.DataFrame, path: Path) -> Path | None:
    """Bars of kept / relabelled share per source, one panel per (dataset, method); None without matplotlib."""
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return None
    runs = by_source(frame)
    panels = list(runs.groupby(["dataset", "method"], sort=False))
    figure, axes = plt.subplots(len(panels), 1, figsize=(9, 2.2 + 0.45 * runs.source.nunique() * len(panels)),
                                squeeze=False)
    for axis, ((dataset, method), group) in zip(axes[:, 0], panels):
        means = group.groupby("source", sort=False)[["kept_fraction", "relabelled_fraction"]].mean()
        positions = range(len(means))
        axis.barh([p + 0.2 for p in positions], means.kept_fraction, height=0.4, label="kept")
        axis.barh([p - 0.2 for p in positions], means.relabelled_fraction, height=0.4, label="relabelled")
        axis.set_yticks(list(positions), [s.split("/", 1)[-1][-70:] for s in means.index], fontsize=7)  # prompt/setting
        axis.set_xlim(0, 1)
        axis.set_title(f"{method} on {dataset}", fontsize=9)
        axis.legend(fontsize=7, loc="lower right")
    figure.tight_layout()
    return save_figure(figure, path)


def write_trust_report(out: Path, name: str, records: list[dict], method_of=None) -> list[Path]:
    """{name}_trust.csv / .md (and .png) beside the tables; nothing when no run has trust counts."""
    frame = trust_frame(records, method_of)
    if frame.empty:
        return []
    csv_path, md_path = Path(out) / f"{name}_trust.csv", Path(out) / f"{name}_trust.md"
    atomic_write_text(csv_path, frame.to_csv(index=False))
    atomic_write_text(md_path, render_trust_markdown(frame, f"saflex {name}: trust in generated images"))
    plot = plot_trust(frame, Path(out) / f"{name}_trust.png")
    return [csv_path, md_path] + ([plot] if plot else [])
