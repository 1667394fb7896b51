"""`saflex data verify` and `saflex data fetch`: which dataset files are here, and getting them."""
from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from ..data.catalog import fetch as fetch_file
from ..data.catalog import known_files

data_app = typer.Typer(no_args_is_help=True, help="Dataset files: checksum status, and download.")
DataRoot = Annotated[Path, typer.Option("--data-root", help="Folder holding the dataset files (medmnist/ below it).")]


@data_app.command()
def verify(data_root: DataRoot = Path("data"),
           present: Annotated[bool, typer.Option("--present", help="Only files that are on disk.")] = False) -> None:
    """List every dataset file saflex knows with its checksum status (one line each, for grep)."""
    counts: dict[str, int] = {}
    for file in known_files(data_root):
        status, checksum = file.status()
        counts[status.split(":")[0]] = counts.get(status.split(":")[0], 0) + 1
        if present and status == "missing":
            continue
        print(f"{file.name:<28} {status:<30} {checksum or '-':<32} {file.path or '(bundled with a package)'}")
    print(f"under {data_root}: " + ", ".join(f"{n} {s}" for s, n in sorted(counts.items())))


@data_app.command()
def fetch(name: Annotated[str, typer.Argument(help="A name from `saflex data verify`, e.g. medmnist/pathmnist.")],
          data_root: DataRoot = Path("data")) -> None:
    """Download one file: timeout, retries, resumable, mirrors, MD5 check, atomic move."""
    Console().print(f"{name}: {fetch_file(name, data_root)}")
