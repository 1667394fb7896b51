"""Every dataset file saflex knows: where it goes under the data root, where to fetch it, and
which checksums are an official release. `saflex data verify` and `saflex data fetch` read it.

A data module registers a function data_root -> [DataFile]; a family whose data ships with a
package (scikit-learn's digits) registers a file with no URL, reported as bundled.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from ..errors import SaflexError
from ..registry import Registry
from .download import download, md5sum

CATALOGS: Registry[Callable[[Path], list["DataFile"]]] = Registry(
    "data catalog", "saflex_cli.data.digits", "saflex_cli.data.medmnist")


@dataclass(frozen=True)
class DataFile:
    name: str  # what `saflex data fetch NAME` takes, e.g. medmnist/pathmnist
    path: Path | None  # None: bundled with a package, nothing to place
    urls: tuple[str, ...] = ()  # the official host first, then mirrors
    releases: dict[str, str] = field(default_factory=dict)  # MD5 -> release ("official", "pre-2.2.4", ...)

    def status(self) -> tuple[str, str | None]:
        """(official release | older release: NAME | unknown checksum | missing | bundled, md5)."""
        if self.path is None:
            return "bundled", None
        if not self.path.exists():
            return "missing", None
        checksum = md5sum(self.path)
        release = self.releases.get(checksum)
        if release is None:
            return "unknown checksum", checksum
        return ("official release" if release == "official" else f"older release: {release}"), checksum


register_catalog = CATALOGS.register


def known_files(root: Path) -> list[DataFile]:
    return [f for name in CATALOGS.names() for f in CATALOGS.get(name)(Path(root))]


def fetch(name: str, root: Path) -> Path:
    files = {f.name: f for f in known_files(root)}
    if name not in files:
        raise SaflexError(f"unknown data file {name!r}; `saflex data verify` lists the known ones, e.g. "
                          f"{', '.join(list(files)[:3])}")
    wanted = files[name]
    if wanted.path is None:
        raise SaflexError(f"{name} ships with a Python package: nothing to download")
    if wanted.path.exists() and md5sum(wanted.path) in wanted.releases:
        return wanted.path
    return download(list(wanted.urls), wanted.path, set(wanted.releases))
