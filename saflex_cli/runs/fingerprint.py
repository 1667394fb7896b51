"""The checksums of the data files a run reads, made part of its identity before it runs.

A record then stands for its own data: the same command on a different `pneumoniamnist.npz`, or
on a CSV rewritten in place, has another identity, so its record is not reused (the grid reports
the old one as stale; --force sets it aside). Each family lists its files (Recipe.data_files);
images read one by one from disk (WILDS, CUB) are identified by their metadata files, not hashed.
"""
from __future__ import annotations

import dataclasses
from pathlib import Path

from ..config import RunConfig
from ..data.download import md5sum
from ..registry import FAMILIES

_CACHE: dict[tuple[str, int, int], str] = {}  # (path, size, mtime) -> md5: each file hashed once per process


def file_checksum(path: Path) -> str:
    stat = Path(path).stat()
    key = (str(Path(path).resolve()), stat.st_size, stat.st_mtime_ns)
    if key not in _CACHE:
        _CACHE[key] = md5sum(path)
    return _CACHE[key]


def data_checksums(config: RunConfig) -> tuple[tuple[str, str], ...]:
    """(name, 'md5:...' or a content id) of each data file the run reads that is on disk; a missing
    one is left to the family's loader, whose message says what to place where."""
    recipe = FAMILIES.get(config.family)
    entries = recipe.data_files(config) if recipe.data_files else []
    out = []
    for name, source in entries:
        if isinstance(source, str):
            out.append((name, source))
        elif Path(source).is_file():
            out.append((name, f"md5:{file_checksum(Path(source))}"))
    return tuple(out)


def missing_data(config: RunConfig) -> list[str]:
    """The data files a run reads that are not on disk (yet): its identity waits for their checksums."""
    recipe = FAMILIES.get(config.family)
    entries = recipe.data_files(config) if recipe.data_files else []
    return [name for name, source in entries if not isinstance(source, str) and not Path(source).is_file()]


def on_disk(config: RunConfig) -> bool:
    """Whether every data file the run reads is a file here (not a download still to make)."""
    recipe = FAMILIES.get(config.family)
    entries = recipe.data_files(config) if recipe.data_files else []
    return all(not isinstance(source, str) and Path(source).is_file() for _, source in entries)


def with_data_checksums(configs: list[RunConfig], fetch: bool = True) -> list[RunConfig]:
    """The configs with their data checksums, the data fetched first where the family can (not for a
    dry run: its identities then hold the checksums of the files already here), and the settings
    that depend on the data settled against it (Recipe.settle)."""
    if fetch:
        for config in configs:
            recipe = FAMILIES.get(config.family)
            if recipe.fetch:
                recipe.fetch(config)
    configs = [dataclasses.replace(c, data_checksums=data_checksums(c)) for c in configs]
    for family in dict.fromkeys(c.family for c in configs):
        settle = FAMILIES.get(family).settle
        if settle:  # a dry run's runs whose files are not on disk settle when they are (their identity waits too)
            ready = [i for i, c in enumerate(configs) if c.family == family and (fetch or on_disk(c))]
            for i, config in zip(ready, settle([configs[i] for i in ready])):
                configs[i] = config
    return configs
