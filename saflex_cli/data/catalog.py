"""Everything saflex reads from disk: where it goes under the data root, how to tell that what is
there is whole and the right thing, and where to fetch it. `saflex data verify` and `saflex data
fetch` read it.

`--data-root DIR` is the one folder holding every dataset, each family in its own subfolder as
the loaders expect it: DIR/medmnist/*.npz, DIR/tabular/*.csv, DIR/iwildcam_v2.0/,
DIR/CUB_200_2011/, DIR/pools/<method>/<dataset>/, DIR/clip/ (weights). Each data module registers
a function data_root -> [entries]: a `DataFile` (one file, checked by MD5 where an official
checksum exists) or a `Folder` (a dataset release in its own layout, checked by the loader's own
test). A family whose data ships with a package (scikit-learn's digits) registers a bundled file.
"""
from __future__ import annotations

import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Union

from ..errors import SaflexError
from ..registry import Registry
from .download import download, md5sum

OK, MISSING, BAD = "ok", "missing", "bad"
ZIP_MAGIC = b"PK\x03\x04"


@dataclass(frozen=True)
class Status:
    state: str  # OK, MISSING or BAD (present but not usable)
    words: str  # what `data verify` prints: "official release", "unknown checksum", ...
    detail: str = ""  # the MD5, a manifest checksum, a count
    problem: str = ""  # for BAD: what is wrong and what to do, in one sentence


def family_folder(root: Path, name: str) -> Path:
    """A family's subfolder of the data root. A root that already is that subfolder (the older
    `--data-root data/medmnist`) is taken as it is, so commands written for it keep working."""
    root = Path(root)
    return root if root.name == name else root / name


def cut_short(path: Path) -> bool:
    """A zip container (npz, torch's weights format) whose index at the end is missing: the usual
    trace of an interrupted copy. Other formats are not opened here."""
    with open(path, "rb") as handle:
        zip_format = handle.read(4) == ZIP_MAGIC
    return (zip_format or path.suffix == ".npz") and not zipfile.is_zipfile(path)


def unknown_checksum(path: Path, checksum: str, what: str, use_anyway: str) -> str:
    """The one message for a file whose MD5 is no known release (fetch, verify and the loader)."""
    return (f"{path} has MD5 {checksum}, which matches no known release of {what}: delete it to download the "
            f"official file again, replace it with an official copy, or {use_anyway} to use it anyway "
            f"(recorded in the run record)")


@dataclass(frozen=True)
class DataFile:
    name: str  # what `saflex data fetch NAME` takes, e.g. medmnist/pathmnist
    path: Path | None  # None: bundled with a package, nothing to place
    urls: tuple[str, ...] = ()  # the official host first, then mirrors; none: saflex does not download it
    releases: dict[str, str] = field(default_factory=dict)  # MD5 -> release ("official", "pre-2.2.4"); none: no official checksum
    use_anyway: str = ""  # how the family command takes a file of unknown checksum, e.g. "pass --skip-md5 ..."
    hint: str = ""  # where to get it, when saflex does not download it

    def check(self) -> Status:
        if self.path is None:
            return Status(OK, "bundled")
        if not self.path.is_file():
            return Status(MISSING, "missing")
        if cut_short(self.path):
            return Status(BAD, "unreadable (truncated?)", problem=(
                f"{self.path} does not open (its archive index is missing: a copy cut short?); delete it and "
                f"fetch or copy it again"))
        checksum = md5sum(self.path)
        release = self.releases.get(checksum)
        if release is not None:
            return Status(OK, "official release" if release == "official" else f"older release: {release}", checksum)
        if self.releases:
            return Status(BAD, "unknown checksum", checksum, unknown_checksum(self.path, checksum, self.name, self.use_anyway))
        return Status(OK, "present (no official checksum)", checksum)


@dataclass(frozen=True)
class Folder:
    name: str
    path: Path
    inspect: Callable[[], str]  # the loader's own check: raises SaflexError, else returns a detail
    hint: str  # where to get it (saflex does not download whole releases)
    bad_words: str = "incomplete"

    def check(self) -> Status:
        if not self.path.is_dir():
            return Status(MISSING, "missing")
        try:
            detail = self.inspect()
        except SaflexError as error:
            return Status(BAD, self.bad_words, problem=str(error))
        return Status(OK, "present", detail)


Entry = Union[DataFile, Folder]
CATALOGS: Registry = Registry(  # data_root -> [entries]; importing these modules registers them
    "data catalog", "saflex_cli.data.digits", "saflex_cli.data.medmnist", "saflex_cli.data.tabular",
    "saflex_cli.data.wilds", "saflex_cli.data.iwildcam", "saflex_cli.data.cub", "saflex_cli.data.pools",
    "saflex_cli.families.flyp")


register_catalog = CATALOGS.register


def known_files(root: Path) -> list[Entry]:
    return [f for name in CATALOGS.names() for f in CATALOGS.get(name)(Path(root))]


def find(names: list[str], root: Path) -> list[Entry]:
    """The entries of these names, in the order given; an unknown name is refused."""
    entries = {f.name: f for f in known_files(root)}
    unknown = [n for n in names if n not in entries]
    if unknown:
        raise SaflexError(f"unknown data file {unknown[0]!r}; `saflex data verify` lists the known ones, e.g. "
                          f"{', '.join(list(entries)[:3])}")
    return [entries[n] for n in names]


def problems(checked: list[tuple[Entry, Status]], asked: bool) -> str | None:
    """One line on what needs doing, or None. A missing file is an error only when asked about by name."""
    wrong = [(e, s) for e, s in checked if s.state == BAD or (asked and s.state == MISSING)]
    if not wrong:
        return None
    entry, status = wrong[0]
    first = status.problem or f"{entry.name} is missing: {fetch_hint(entry)}"
    names = ", ".join(f"{e.name} ({s.words})" for e, s in wrong[:5]) + (", ..." if len(wrong) > 5 else "")
    return f"{len(wrong)} of {len(checked)} checked need attention: {names}. First: {first}"


def fetch_hint(entry: Entry) -> str:
    if isinstance(entry, DataFile) and entry.urls:
        return f"`saflex data fetch {entry.name}` downloads it to {entry.path}"
    return f"place it at {entry.path} yourself ({entry.hint})"


def fetch(name: str, root: Path) -> Path:
    """Download one file unless a usable copy is there; a copy that is there but wrong is never replaced."""
    (wanted,) = find([name], root)
    if isinstance(wanted, Folder):
        raise SaflexError(f"{name} is a dataset release that saflex does not download: {wanted.hint}")
    if wanted.path is None:
        raise SaflexError(f"{name} ships with a Python package: nothing to download")
    status = wanted.check()
    if status.state == BAD:
        raise SaflexError(status.problem)
    if status.state == OK:
        return wanted.path
    if not wanted.urls:
        raise SaflexError(f"saflex does not download {name}: {fetch_hint(wanted)}")
    return download(list(wanted.urls), wanted.path, set(wanted.releases))
