"""Run records: one JSON file per run, written atomically, the results folder's ground truth.

A run is done when its record parses, says "completed" and carries the identity of the config
asked for. A run that failed (diverged, out of memory) leaves a "failed" record with the
reason, epoch and step, so the grid can go on and the report can say why a cell is missing.
"""
from __future__ import annotations

import glob
import json
import shutil
from pathlib import Path

from ..config import RECORD_SCHEMA, RunConfig
from ..errors import SaflexError
from .files import atomic_write_text

__all__ = ["atomic_write_text", "record_path", "write_record", "read_record", "record_status", "is_done",
           "load_records", "load_failures", "stale_records", "set_aside"]


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


def _without_data(payload: dict) -> dict:
    return {k: v for k, v in payload.items() if k != "data_checksums"}


def why_stale(record: dict, config: RunConfig) -> str | None:
    """Why a record of the same cell and seed as `config` stands for it no longer (other data, an
    older record schema), or None when it is simply another setting's run."""
    if record.get("schema") != RECORD_SCHEMA:
        return f"written under record schema {record.get('schema')}, this version reads {RECORD_SCHEMA}"
    try:
        theirs = RunConfig.from_dict(record["config"])
    except (KeyError, TypeError, ValueError, SaflexError):
        return "its config does not read as this version's"
    if _without_data(theirs.identity_payload()) != _without_data(config.identity_payload()):
        return None
    recorded, now = dict(theirs.data_checksums), dict(config.data_checksums)
    changed = [f"{name}: {recorded.get(name, 'absent')} in the record, {now.get(name, 'absent')} now"
               for name in sorted(set(recorded) | set(now)) if recorded.get(name) != now.get(name)]
    return "made on other data (" + "; ".join(changed) + ")"


def stale_records(out: Path, configs: list[RunConfig]) -> dict[Path, str]:
    """Records of an asked run's cell and seed that no longer count, and why (why_stale)."""
    wanted = {record_path(out, c).name for c in configs}
    found: dict[Path, str] = {}
    for config in configs:
        folder, prefix = record_path(out, config).parent, cell_prefix(config)
        for path in sorted(folder.glob(f"{prefix}_*.json")):
            if path.name in wanted or path in found or path.stem.rsplit("_", 1)[0] != prefix:
                continue
            record = read_record(path)
            reason = why_stale(record, config) if record is not None else None
            if reason is not None:
                found[path] = reason
    return found


def companions(path: Path) -> list[Path]:
    """The files kept beside a record: <run_name>.<selection>.safetensors, <run_name>.metrics.jsonl."""
    return sorted(path.parent.glob(glob.escape(path.stem) + ".*.*"))


def set_aside(out: Path, paths: list[Path]) -> Path:
    """Move records, with their weights and metrics files, out of the report's way (into
    OUT/superseded/), never delete them."""
    target = Path(out) / "superseded"
    for path in paths:
        for moved in (*companions(path), path):
            destination = target / moved.relative_to(Path(out) / "runs")
            destination.parent.mkdir(parents=True, exist_ok=True)
            shutil.move(moved, destination)
    return target
