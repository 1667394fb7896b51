"""The `saflex` command: one subcommand per experiment family, plus report and demo.

Command modules only parse flags and delegate; every known error is printed here, in one line.
"""
from __future__ import annotations

import sys

import typer
from rich.console import Console

from ..errors import SaflexError
from .demo import demo
from .medmnist import medmnist
from .report import report
from .tabular import tabular

app = typer.Typer(add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False,
                  help="SAflex (ICLR 2024): reproduce the paper's tables and refine your own augmentations.")
for command in (medmnist, tabular, report, demo):
    app.command()(command)


def main() -> None:
    try:
        app()  # bad flags and values get Typer's own usage message and exit code 2
    except SaflexError as error:
        Console(stderr=True).print(f"[bold red]error:[/bold red] {error}", highlight=False)
        sys.exit(2)
