"""What a run says while it trains: a line per epoch, its metrics file, TensorBoard, the bars.

Under nohup, SLURM or CI no terminal reads a progress bar, so each epoch ends in one plain line
(prefixed by the run's name in worker processes, whose lines interleave); on a terminal the grid's
bars show the epochs and the steps of the one in progress. Either way each epoch is appended to
<run_name>.metrics.jsonl beside where the record will be, as one JSON line, so a run can be
followed (or plotted) before it ends. The checkpoint holds the history, so a resumed run rewrites
that file from it: an epoch is never in it twice. `--tensorboard` adds the scalars of each epoch
under OUT/tensorboard/<run_name>/ (the 'tensorboard' extra).
"""
from __future__ import annotations

import importlib.util
import json
from pathlib import Path

from rich.console import Console
from rich.progress import Progress

from ..config import RunConfig
from ..errors import SaflexError
from ..store.files import append_line, atomic_write_text
from ..store.records import record_path

HIDDEN_METRICS = ("top_prediction_share",)  # kept in the record for the report, not worth a column here


def metrics_path(out: Path, config: RunConfig) -> Path:
    return record_path(out, config).with_suffix(".metrics.jsonl")


def require_tensorboard() -> None:
    if importlib.util.find_spec("tensorboard") is None:
        raise SaflexError("--tensorboard needs the tensorboard package: pip install 'saflex[tensorboard]'")


def epoch_line(entry: dict, epochs: int) -> str:
    """'epoch 3/30  loss 0.4123  val acc 0.8125  kept 87.5% relabelled 21.0%  2.1 s (eval 0.3 s)'."""
    val = " ".join(f"{name} {value:.4f}" for name, value in entry.get("val", {}).items() if name not in HIDDEN_METRICS)
    parts = [f"epoch {entry['epoch']}/{epochs}", f"loss {entry['train_loss']:.4f}", f"val {val}" if val else ""]
    saflex = entry.get("saflex", {})
    if "kept_fraction" in saflex:
        relabelled = f" relabelled {100 * saflex['changed_fraction']:.1f}%" if "changed_fraction" in saflex else ""
        parts.append(f"kept {100 * saflex['kept_fraction']:.1f}%{relabelled}")
    parts.append(f"{entry['train_time_s'] + entry['eval_time_s']:.1f} s (eval {entry['eval_time_s']:.1f} s)")
    return "  ".join(p for p in parts if p)


def scalars(entry: dict) -> dict[str, float]:
    """An epoch's numbers as TensorBoard tags: train/loss, val/acc, test/auc, saflex/kept_fraction, ..."""
    out = {"train/loss": entry["train_loss"], "train/lr": entry["lr"], "time/train_s": entry["train_time_s"],
           "time/eval_s": entry["eval_time_s"]}
    if "loss_scale" in entry:
        out["train/loss_scale"] = entry["loss_scale"]
    for group in ("val", "test", "saflex"):
        out.update({f"{group}/{k}": float(v) for k, v in entry.get(group, {}).items() if isinstance(v, (int, float))})
    return out


class LiveRun:
    """One run's live output. `files`: this process writes the metrics file and TensorBoard (rank 0);
    `lines`: a line per epoch (no terminal, or a worker among several); `prefix`: the run's name
    before each line; `progress`: the grid's bars on a terminal, with a task for this run."""

    def __init__(self, out: Path, config: RunConfig, console: Console, *, files: bool, lines: bool, prefix: bool,
                 tensorboard: bool, progress: Progress | None = None):
        self.out, self.config, self.console = Path(out), config, console
        self.files, self.lines, self.tensorboard, self.progress = files, lines, tensorboard and files, progress
        self.prefix = f"{config.run_name}  " if prefix else ""
        self.writer = None
        self.epochs = self.steps = None

    def say(self, text: str) -> None:
        self.console.print(self.prefix + text, highlight=False, markup=False, soft_wrap=True)

    def begin(self, history: list[dict], epoch: int, step: int, steps_per_epoch: int, resumed: bool) -> None:
        """The metrics file as the history stands (empty for a new run), the resume line, the bars."""
        if self.files:
            atomic_write_text(metrics_path(self.out, self.config), "".join(json.dumps(e) + "\n" for e in history))
        if self.tensorboard:
            from torch.utils.tensorboard import SummaryWriter
            # Events past the checkpoint's last epoch (written before a kill) are dropped, and that
            # epoch written again: it may have been checkpointed but not yet logged.
            self.writer = SummaryWriter(str(self.out / "tensorboard" / self.config.run_name),
                                        purge_step=epoch if resumed else None)
            if resumed and history:
                self._log_scalars(history[-1])
        if self.lines or self.progress is not None:  # not --quiet
            news = f"resumed from epoch {epoch} (step {step})" if resumed else \
                f"start: {self.config.epochs} epoch(s) of {steps_per_epoch} step(s)"
            if resumed or self.lines:
                self.say(news if self.prefix else f"{self.config.run_name}: {news}")
        if self.progress is not None:
            self.epochs = self.progress.add_task(self.config.run_name, total=self.config.epochs, completed=epoch,
                                                 status="")
            self.steps = self.progress.add_task(f"  epoch {epoch + 1}", total=steps_per_epoch, completed=step,
                                                status="")

    def step(self, step: int) -> None:
        if self.progress is not None:
            self.progress.update(self.steps, completed=step)

    def epoch(self, entry: dict) -> None:
        if self.files:
            append_line(metrics_path(self.out, self.config), json.dumps(entry))
        if self.writer is not None:
            self._log_scalars(entry)
        if self.lines:
            self.say(epoch_line(entry, self.config.epochs))
        if self.progress is not None:
            status = epoch_line(entry, self.config.epochs).split("  ", 1)[1]
            self.progress.update(self.epochs, advance=1, status=status)
            self.progress.reset(self.steps, description=f"  epoch {entry['epoch'] + 1}")

    def _log_scalars(self, entry: dict) -> None:
        for tag, value in scalars(entry).items():
            self.writer.add_scalar(tag, value, entry["epoch"])
        self.writer.flush()

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
        if self.progress is not None:
            self.progress.remove_task(self.steps)
            self.progress.remove_task(self.epochs)
