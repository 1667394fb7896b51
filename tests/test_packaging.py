"""What an installed saflex needs: its imports declared in pyproject, its data files shipped."""
from __future__ import annotations

import ast
import re
import sys
import tomllib
from importlib.metadata import packages_distributions
from pathlib import Path

from typer.testing import CliRunner

from saflex_cli.cli import app

ROOT = Path(__file__).resolve().parents[1]
PROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())


def canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def requirement_names(requirements: list[str]) -> set[str]:
    return {canonical(re.match(r"[A-Za-z0-9_.-]+", r).group()) for r in requirements}


def third_party_imports() -> dict[str, set[str]]:
    """Top-level module -> 'module' (imported when saflex_cli's module is) and/or 'function' (on use)."""
    found: dict[str, set[str]] = {}
    for path in (ROOT / "saflex_cli").rglob("*.py"):
        tree = ast.parse(path.read_text())
        in_functions = {id(node) for function in ast.walk(tree) if isinstance(function, ast.FunctionDef)
                        for node in ast.walk(function)}
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                modules = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0:
                modules = [node.module]
            else:
                continue
            for module in modules:
                top = module.split(".")[0]
                if top not in sys.stdlib_module_names and top != "saflex_cli":
                    found.setdefault(top, set()).add("function" if id(node) in in_functions else "module")
    return found


def test_every_third_party_import_is_declared_and_module_level_ones_are_core():
    core = requirement_names(PROJECT["project"]["dependencies"])
    extras = requirement_names([r for extra in PROJECT["project"]["optional-dependencies"].values() for r in extra])
    distributions = packages_distributions()
    undeclared, optional_at_import = [], []
    for module, where in sorted(third_party_imports().items()):
        names = {canonical(d) for d in distributions.get(module, [module])}
        if not names & (core | extras):
            undeclared.append(module)
        elif "module" in where and not names & core:
            optional_at_import.append(module)
    assert undeclared == [], "imported but not in pyproject"
    assert optional_at_import == [], "an extra's package imported at module level breaks a core install"


def test_package_data_ships_every_resource_file():
    patterns = PROJECT["tool"]["setuptools"]["package-data"]["saflex_cli"]
    shipped = {path for pattern in patterns for path in (ROOT / "saflex_cli").glob(pattern) if path.is_file()}
    resources = {path for path in (ROOT / "saflex_cli" / "resources").rglob("*") if path.is_file()}
    assert resources and resources <= shipped


def test_dry_run_prices_a_grid_from_any_directory(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # no benchmarks/ folder here: the package's own JSON must be read
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))  # nor a calibration (overhead.py --quick) of this machine
    result = CliRunner().invoke(app, ["medmnist", "--dataset", "dermamnist", "--aug", "mixup", "--saflex",
                                      "--seeds", "0", "--device", "cpu", "--out", str(tmp_path), "--dry-run"])
    assert result.exit_code == 0, result.output
    text = " ".join(result.output.split())
    assert "estimated" in text and "device-hours for 1 of the 1 run(s)" in text
    assert "saflex_cli/resources/benchmarks/overhead-cpu.json" in text
