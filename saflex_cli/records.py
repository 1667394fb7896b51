"""Run records: one JSON file per run, written atomically, the results folder's ground truth."""
from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

from .config import RECORD_SCHEMA, RunConfig


def atomic_write_text(path: Path, text: str) -> None:
    """Write to a unique temp file beside `path`, fsync, then os.replace: never a torn file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def record_path(out: Path, config: RunConfig) -> Path:
    return Path(out) / "runs" / config.family / f"{config.run_name}.json"


def write_record(out: Path, config: RunConfig, record: dict) -> Path:
    path = record_path(out, config)
    atomic_write_text(path, json.dumps(record, indent=1, sort_keys=True))
    return path


def read_record(path: Path) -> dict | None:
    """A record's content, or None if it is missing or unreadable (a torn or foreign file)."""
    try:
        return json.loads(Path(path).read_text())
    except (OSError, ValueError):
        return None


def is_done(out: Path, config: RunConfig) -> bool:
    record = read_record(record_path(out, config))
    return (record is not None and record.get("status") == "completed"
            and record.get("schema") == RECORD_SCHEMA and record.get("run_id") == config.identity())


def load_records(out: Path, family: str) -> list[dict]:
    folder = Path(out) / "runs" / family
    records = (read_record(p) for p in sorted(folder.glob("*.json")))
    return [r for r in records if r is not None and r.get("status") == "completed"]
