"""`saflex data verify` and `saflex data fetch`: which dataset files are here, and getting them."""
from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.console import Console

from ..data.catalog import MISSING, find, known_files, problems
from ..data.catalog import fetch as fetch_file
from ..errors import SaflexError

data_app = typer.Typer(no_args_is_help=True, help="Dataset files: checksum status, and download.")
DataRoot = Annotated[Path, typer.Option("--data-root", help="Folder holding every dataset (medmnist/, tabular/, iwildcam_v2.0/, ...), as for the family commands.")]


@data_app.command()
def verify(names: Annotated[Optional[list[str]], typer.Argument(help="Only these (e.g. medmnist/pathmnist); a missing one is then an error.")] = None,
           data_root: DataRoot = Path("data"),
           present: Annotated[bool, typer.Option("--present", help="Only files that are on disk.")] = False) -> None:
    """List every file saflex knows with its status (one line each, for grep); exit 2 if one that
    is there is not usable (unknown checksum, cut short, incomplete), or if one named is missing."""
    entries = find(names, data_root) if names else known_files(data_root)
    checked = [(entry, entry.check()) for entry in entries]
    counts: dict[str, int] = {}
    for entry, status in checked:
        counts[status.words] = counts.get(status.words, 0) + 1
        if not (present and status.state == MISSING):
            print(f"{entry.name:<28} {status.words:<30} {status.detail or '-':<32} {entry.path or '(bundled with a package)'}")
    print(f"under {data_root}: " + ", ".join(f"{n} {s}" for s, n in sorted(counts.items())))
    problem = problems(checked, asked=bool(names))
    if problem:
        raise SaflexError(problem)


@data_app.command()
def fetch(name: Annotated[str, typer.Argument(help="A name from `saflex data verify`, e.g. medmnist/pathmnist.")],
          data_root: DataRoot = Path("data")) -> None:
    """Download one file: timeout, retries, resumable, mirrors, MD5 check, atomic move."""
    Console().print(f"{name}: {fetch_file(name, data_root)}")
