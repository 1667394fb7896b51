"""The report's pictures (`saflex report --plots`, the 'plots' extra: matplotlib).

Three PNGs beside the tables, one panel per (model, dataset): our mean ± std over seeds against
the paper's mean ± std for every row; each row's validation metric per epoch (mean over seeds,
a band of ± std); and SAflex's kept and relabelled fractions per epoch, from the records'
per-epoch statistics. Rows keep one colour across panels and figures. Written atomically.
"""
from __future__ import annotations

import importlib.util
import textwrap
from pathlib import Path

import numpy as np
import pandas as pd

from ..errors import SaflexError
from ..families.base import Recipe
from ..store.files import atomic_write
from .tables import cell_summaries, ordered_rows, row_name, shared_settings, without_settings

DPI = 130
MIN_WIDTH = 8.0  # inches: room for the row names and the title of a one-panel figure
FEW_EPOCHS = 10  # curves this short also mark each epoch


def require_matplotlib() -> None:
    if importlib.util.find_spec("matplotlib") is None:
        raise SaflexError("--plots needs matplotlib: pip install 'saflex[plots]'")


def pyplot():
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    return plt


def save_figure(figure, path: Path) -> Path:
    """The PNG in one rename (files.atomic_write), then the figure's memory freed."""
    atomic_write(path, lambda handle: figure.savefig(handle, format="png", dpi=DPI), binary=True)
    pyplot().close(figure)
    return path


def line(**style):
    from matplotlib.lines import Line2D
    return Line2D([], [], **style)


def short_rows(recipe: Recipe, frame: pd.DataFrame) -> tuple[pd.DataFrame, str]:
    """Labels without the settings every row shares (said once, in the title), each row's name as an
    ordered category (the tables' order), and that list of settings."""
    common = shared_settings(frame)
    frame = frame.assign(label=frame.label.map(lambda label: without_settings(label, common)))
    order = [row_name(m, l) for m, l in ordered_rows(recipe, frame)]
    frame["row"] = pd.Categorical([row_name(m, l) for m, l in zip(frame.method, frame.label)], order, ordered=True)
    return frame, ", ".join(common)


def panels(frame: pd.DataFrame, width: float, height: float, sharey: bool = False):
    """One axis per (model, dataset): models down, datasets across."""
    models, columns = list(dict.fromkeys(frame.model)), list(dict.fromkeys(frame.column))
    size = (max(MIN_WIDTH, width * len(columns)), height * len(models) + 1.5)  # + the titles and the legend
    figure, axes = pyplot().subplots(len(models), len(columns), figsize=size, squeeze=False, sharey=sharey)
    for i, model in enumerate(models):
        for j, column in enumerate(columns):
            axes[i, j].set_title(f"{model} · {column}", fontsize=9)
            yield figure, axes[i, j], model, column


def colours(rows) -> dict[str, object]:
    cycle = pyplot().get_cmap("tab10")
    return {row: cycle(i % 10) for i, row in enumerate(rows)}


def finish(figure, title: str, common: str, path: Path, legend_handles) -> Path:
    """Title (and the settings every row shares), one legend below the panels, then the file."""
    text = title + (f"\nsettings of every row: {common}" if common else "")
    width = int(figure.get_figwidth() * 12)  # characters per line at this font size
    figure.suptitle("\n".join(textwrap.fill(part, width) for part in text.split("\n")), fontsize=10)
    columns = min(3, len(legend_handles[0]))
    figure.legend(*legend_handles, loc="lower center", ncol=columns, fontsize=8, frameon=False)
    legend_rows = -(-len(legend_handles[0]) // columns)
    figure.tight_layout(rect=(0, (0.15 + 0.22 * legend_rows) / figure.get_figheight(), 1, 1))
    return save_figure(figure, path)


def plot_against_paper(recipe: Recipe, frame: pd.DataFrame, path: Path, title: str):
    """Ours (dot, ± our std over seeds) and the paper's (diamond, ± its std) for every row and cell."""
    frame, common = short_rows(recipe, frame)
    summaries = cell_summaries(recipe, frame)
    rows = list(frame.row.cat.categories)
    position = {row: len(rows) - 1 - i for i, row in enumerate(rows)}  # the first row on top
    for figure, axis, model, column in panels(frame, 4.2, 0.45 * len(rows) + 1.2, sharey=True):
        cells = summaries[(summaries.model == model) & (summaries.dataset == column)]
        if cells.paper_mean.isna().all():
            axis.set_title(f"{model} · {column} (the paper has no value here)", fontsize=9)
        for cell in cells.itertuples():
            y = position[row_name(cell.method, cell.label)]
            axis.errorbar(cell.mean, y + 0.12, xerr=cell.std, fmt="o", color="tab:blue", capsize=3, ms=5)
            if not np.isnan(cell.paper_mean):
                axis.errorbar(cell.paper_mean, y - 0.12, xerr=cell.paper_std, fmt="D", color="tab:orange",
                              mfc="white", capsize=3, ms=5)
        axis.set_yticks(list(position.values()), list(position), fontsize=8)
        axis.set_ylim(-0.6, len(rows) - 0.4)
        axis.grid(axis="x", alpha=0.3)
        axis.tick_params(axis="x", labelsize=8)
    handles = [line(marker="o", ls="", color="tab:blue"), line(marker="D", ls="", color="tab:orange", mfc="white")]
    return finish(figure, f"{title}: {recipe.caption}\nours (mean ± std over seeds) and the paper's (mean ± std)",
                  common, path,
                  (handles, ["ours", "paper"]))


def epoch_frame(frame: pd.DataFrame, records: list[dict], value) -> pd.DataFrame:
    """(model, column, row, seed, epoch, value) for every run of `frame`; `value(epoch entry)` or None."""
    by_run = {r["run_id"]: r for r in records}
    out = []
    for run in frame.drop_duplicates(["run_id", "model", "column"]).itertuples():
        for entry in by_run[run.run_id]["epochs"]:
            number = value(entry)
            if number is not None:
                out.append({"model": run.model, "column": run.column, "row": run.row, "seed": run.seed,
                            "epoch": entry["epoch"], "value": number})
    return pd.DataFrame(out)


def draw_curves(axis, curves: pd.DataFrame, colour, style: str = "-", label: str | None = None) -> None:
    """Mean over seeds per epoch, with a band of ± std where there are several seeds."""
    from matplotlib.ticker import MaxNLocator
    stats = curves.groupby("epoch").value.agg(["mean", "std", "count"]).reset_index()
    axis.plot(stats.epoch, stats["mean"], style, color=colour, lw=1.4, label=label,
              marker="o" if len(stats) <= FEW_EPOCHS else None, ms=3)
    axis.xaxis.set_major_locator(MaxNLocator(integer=True))
    if (stats["count"] > 1).any():
        axis.fill_between(stats.epoch, stats["mean"] - stats["std"], stats["mean"] + stats["std"], color=colour,
                          alpha=0.15, lw=0)


def validation_metric(selection: str, records: list[dict]) -> str:
    """The metric the selection ranks by (best_val_auc -> auc); for `last`, the first one recorded."""
    if selection.startswith("best_val_"):
        return selection.removeprefix("best_val_")
    return next(name for name in records[0]["epochs"][-1].get("val", {}) if name != "top_prediction_share")


def plot_validation_curves(recipe: Recipe, frame: pd.DataFrame, records: list[dict], selection: str, path: Path,
                           title: str):
    frame, common = short_rows(recipe, frame)
    metric = validation_metric(selection, records)
    curves = epoch_frame(frame, records, lambda e: 100 * e["val"][metric] if metric in e.get("val", {}) else None)
    palette = colours(frame.row.cat.categories)
    for figure, axis, model, column in panels(frame, 4.6, 3.2):
        for row in frame.row.cat.categories:
            mine = curves[(curves.model == model) & (curves.column == column) & (curves.row == row)]
            if not mine.empty:
                draw_curves(axis, mine, palette[row], label=row)
        axis.set_xlabel("epoch", fontsize=8)
        axis.set_ylabel(f"validation {metric} (%)", fontsize=8)
        axis.tick_params(labelsize=8)
        axis.grid(alpha=0.3)
    handles = [line(color=palette[row]) for row in palette]
    return finish(figure, f"{title}: validation {metric} per epoch (mean ± std over seeds)", common, path,
                  (handles, list(palette)))


def saflex_share(name: str):
    """An epoch entry -> its SAflex statistic `name` in %, or None where the epoch has none."""
    return lambda entry: 100 * entry["saflex"][name] if name in entry.get("saflex", {}) else None


def plot_saflex_decisions(recipe: Recipe, frame: pd.DataFrame, records: list[dict], path: Path, title: str):
    """Kept (solid) and relabelled (dashed) shares of the augmented samples per epoch; None without any."""
    frame, common = short_rows(recipe, frame)  # over every row: the same names and colours as the other figures
    palette = colours(frame.row.cat.categories)
    frame = frame[frame.refine != "none"]
    if frame.empty:
        return None
    kept, changed = (epoch_frame(frame, records, saflex_share(name)) for name in ("kept_fraction", "changed_fraction"))
    if kept.empty:
        return None
    palette = {row: colour for row, colour in palette.items() if row in set(frame.row)}
    for figure, axis, model, column in panels(frame, 4.6, 3.2):
        for row in palette:
            for curves, style in ((kept, "-"), (changed, "--")):
                mine = curves[(curves.model == model) & (curves.column == column) & (curves.row == row)] \
                    if not curves.empty else curves
                if not mine.empty:
                    draw_curves(axis, mine, palette[row], style)
        axis.set_ylim(0, 102)
        axis.set_xlabel("epoch", fontsize=8)
        axis.set_ylabel("share of augmented samples (%)", fontsize=8)
        axis.tick_params(labelsize=8)
        axis.grid(alpha=0.3)
    handles = [line(color=palette[row]) for row in palette] + [line(color="grey"), line(color="grey", ls="--")]
    return finish(figure, f"{title}: what SAflex kept and relabelled, per epoch (mean ± std over seeds)", common,
                  path, (handles, [*palette, "kept", "relabelled"]))


def write_plots(out: Path, name: str, recipe: Recipe, frame: pd.DataFrame, records: list[dict],
                selection: str) -> list[Path]:
    """<name>_vs_paper.png, <name>_val_curves.png and (with refined rows) <name>_saflex.png."""
    out, title = Path(out), f"saflex {name}"
    written = [plot_against_paper(recipe, frame, out / f"{name}_vs_paper.png", title),
               plot_validation_curves(recipe, frame, records, selection, out / f"{name}_val_curves.png", title),
               plot_saflex_decisions(recipe, frame, records, out / f"{name}_saflex.png", title)]
    return [path for path in written if path is not None]
