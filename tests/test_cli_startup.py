"""`saflex --help` and `import saflex_cli` stay light: torch and the models load on first use only."""
from __future__ import annotations

import subprocess
import sys

import pytest
from typer.testing import CliRunner

import saflex_cli
from saflex_cli.cli import app
from saflex_cli.errors import SaflexError

HEAVY = ("torch", "torchvision", "numpy", "pandas", "sklearn", "PIL", "timm", "open_clip", "medmnist")

EVERY_HELP = f"""
import sys
import typer
from typer.testing import CliRunner
from saflex_cli.cli import app

def paths(command, path=()):
    yield path
    for name, sub in getattr(command, "commands", {{}}).items():
        yield from paths(sub, path + (name,))

helped = 0
for path in paths(typer.main.get_command(app)):
    result = CliRunner().invoke(app, [*path, "--help"])
    assert result.exit_code == 0 and "Usage" in result.output, (path, result.output)
    helped += 1
print(helped, sorted(m for m in {HEAVY!r} if m in sys.modules))
"""


def run_python(code: str) -> str:
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    return result.stdout.strip()


def test_the_help_of_every_command_imports_no_heavy_module():
    helped, heavy = run_python(EVERY_HELP).split(" ", 1)
    assert int(helped) >= 11  # saflex, its 7 commands, data and its 2 commands
    assert heavy == "[]"


def test_import_is_light_and_the_public_api_resolves_on_first_use():
    out = run_python(
        "import sys, saflex_cli\n"
        "before = 'torch' in sys.modules\n"
        "from saflex_cli import *\n"
        "from saflex_cli.method import core, objectives\n"
        "assert refine is core.refine and SaflexStep is core.SaflexStep and CrossEntropy is objectives.CrossEntropy\n"
        "print(before, sorted(set(saflex_cli.__all__) - set(dir())))")
    assert out == "False []"


def test_an_unknown_attribute_is_an_attribute_error():
    with pytest.raises(AttributeError, match="no attribute 'refin'"):
        saflex_cli.refin  # noqa: B018


def test_a_registry_imports_the_modules_that_fill_it_on_its_first_lookup(tmp_path, monkeypatch):
    package = tmp_path / "lazy_plugin"
    package.mkdir()
    (package / "__init__.py").write_text(
        "from saflex_cli.registry import Registry\nTHINGS = Registry('thing', 'lazy_plugin.entries')\n")
    (package / "entries.py").write_text("from . import THINGS\nTHINGS.register('apple')(1)\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    for name in ("lazy_plugin", "lazy_plugin.entries"):
        monkeypatch.delitem(sys.modules, name, raising=False)
    import lazy_plugin

    assert "lazy_plugin.entries" not in sys.modules
    assert lazy_plugin.THINGS.get("apple") == 1
    assert lazy_plugin.THINGS.names() == ["apple"]
    with pytest.raises(SaflexError, match="unknown thing 'pear'; choose one of: apple"):
        lazy_plugin.THINGS.get("pear")


def test_version_and_shell_completion():
    runner = CliRunner()
    assert runner.invoke(app, ["--version"]).output == f"saflex {saflex_cli.__version__}\n"
    assert "--install-completion" in runner.invoke(app, ["--help"]).output
