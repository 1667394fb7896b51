"""Run records: one JSON file per run, written atomically, the results folder's ground truth.

A run is done when its record parses, says "completed" and carries the identity of the config
asked for. A run that failed (diverged, out of memory) leaves a "failed" record with the
reason, epoch and step, so the grid can go on and the report can say why a cell is missing.
"""
from __future__ import annotations

import json
import shutil
from pathlib import Path

from .config import RECORD_SCHEMA, RunConfig
from .files import atomic_write_text

__all__ = ["atomic_write_text", "record_path", "write_record", "read_record", "record_status", "is_done",
           "load_records", "load_failures", "conflicting_records", "set_aside"]


def record_path(out: Path, config: RunConfig) -> Path:
    return Path(out) / "runs" / config.family / f"{config.run_name}.json"


def write_record(out: Path, config: RunConfig, record: dict) -> Path:
    path = record_path(out, config)
    atomic_write_text(path, json.dumps(record, indent=1, sort_keys=True))
    return path


def read_record(path: Path) -> dict | None:
    """A record's content, or None if it is missing or unreadable (a torn or foreign file)."""
    try:
        record = json.loads(Path(path).read_text())
    except (OSError, ValueError):
        return None
    return record if isinstance(record, dict) else None


def record_status(out: Path, config: RunConfig) -> str | None:
    """'completed' or 'failed' for a record of exactly this config; None otherwise."""
    record = read_record(record_path(out, config))
    if record is None or record.get("schema") != RECORD_SCHEMA or record.get("run_id") != config.identity():
        return None
    return record.get("status") if record.get("status") in ("completed", "failed") else None


def is_done(out: Path, config: RunConfig) -> bool:
    return record_status(out, config) == "completed"


def _records(out: Path, family: str, status: str) -> list[dict]:
    folder = Path(out) / "runs" / family
    records = (read_record(p) for p in sorted(folder.glob("*.json")))
    return [r for r in records if r is not None and r.get("status") == status]


def load_records(out: Path, family: str) -> list[dict]:
    return _records(out, family, "completed")


def load_failures(out: Path, family: str) -> list[dict]:
    return _records(out, family, "failed")


def cell_prefix(config: RunConfig) -> str:
    """The run name without its identity hash: the same table cell and seed."""
    return config.run_name[: -len(config.identity()) - 1]


def conflicting_records(out: Path, configs: list[RunConfig]) -> list[Path]:
    """Records for the same cell and seed as an asked run, made with a different config."""
    wanted = {record_path(out, c).name for c in configs}
    found = set()
    for config in configs:
        folder = record_path(out, config).parent
        found.update(p for p in folder.glob(f"{cell_prefix(config)}_*.json")
                     if p.name not in wanted and p.stem.rsplit("_", 1)[0] == cell_prefix(config))
    return sorted(found)


def set_aside(out: Path, paths: list[Path]) -> Path:
    """Move records out of the report's way (into OUT/superseded/), never delete them."""
    target = Path(out) / "superseded"
    for path in paths:
        destination = target / path.relative_to(Path(out) / "runs")
        destination.parent.mkdir(parents=True, exist_ok=True)
        shutil.move(path, destination)
    return target
