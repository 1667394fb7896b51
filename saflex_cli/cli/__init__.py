"""The `saflex` command: one subcommand per experiment family, plus report, eval and demo.

Command modules only parse flags and delegate; every known error is printed here, in one line.
They import torch and the rest of saflex inside their bodies, so `--help` answers at once. The top
layer: it may import every other package, and none imports it.
"""
from __future__ import annotations

import os
import sys
import warnings
from typing import Annotated

import typer
from rich.console import Console

from .. import __version__
from ..errors import SaflexError
from .config import config_app
from .data import data_app
from .demo import demo
from .diffusion import diffusion
from .evaluate import evaluate
from .flyp import flyp
from .generate import generate
from .images import images
from .medmnist import medmnist
from .report import report
from .tabular import tabular

app = typer.Typer(add_completion=True, no_args_is_help=True, pretty_exceptions_enable=False,
                  help="SAflex (ICLR 2024): reproduce the paper's tables and refine your own augmentations.")
for command in (medmnist, images, tabular, flyp, diffusion, generate, report, demo):
    app.command()(command)
app.command(name="eval")(evaluate)
app.add_typer(data_app, name="data")
app.add_typer(config_app, name="config")


def print_version(wanted: bool) -> None:
    if wanted:
        print(f"saflex {__version__}")
        raise typer.Exit()


@app.callback()
def global_options(offline: Annotated[bool, typer.Option(
        "--offline", help="Refuse any download (same as SAFLEX_OFFLINE=1): a missing file is named, with where to put it.")] = False,
        version: Annotated[bool, typer.Option("--version", is_eager=True, callback=print_version,
                                              help="Print saflex's version and exit.")] = False) -> None:
    if offline:
        os.environ["SAFLEX_OFFLINE"] = "1"


def main() -> None:
    # torch's forward-AD decompositions load through torch.jit.script, which warns on first use.
    warnings.filterwarnings("ignore", message="`torch.jit.script` is deprecated", category=FutureWarning)
    try:
        app()  # bad flags and values get Typer's own usage message and exit code 2
    except SaflexError as error:
        Console(stderr=True).print(f"[bold red]error:[/bold red] {error}", highlight=False, soft_wrap=True)  # one line, for grep
        sys.exit(2)
