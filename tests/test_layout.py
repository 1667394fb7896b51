"""The layout is a contract: the import rules in pyproject.toml hold, and moving modules invalidated no run.

The layers (README, "Layout") are checked by import-linter; the second test breaks a copy of the
package once per rule to show the check is not vacuous. Every committed run record must keep its
identity, or `saflex` would retrain (and the study would disown) runs that are already recorded.
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from saflex_cli.config import RunConfig

ROOT = Path(__file__).resolve().parents[1]
LINT = "from importlinter.cli import lint_imports_command; lint_imports_command()"


def lint_imports(tree: Path, *contracts: str) -> subprocess.CompletedProcess:
    """`lint-imports` with pyproject.toml's contracts (all, or those named) on the saflex_cli found in `tree`."""
    env = {**os.environ, "PYTHONPATH": str(tree)}
    chosen = [option for contract in contracts for option in ("--contract", contract)]
    return subprocess.run([sys.executable, "-c", LINT, "--no-cache", "--no-logo", *chosen, str(ROOT / "pyproject.toml")],
                          cwd=tree, env=env, capture_output=True, text=True, timeout=300)


def test_the_import_contract_holds():
    result = lint_imports(ROOT)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Contracts: 2 kept, 0 broken." in result.stdout


@pytest.mark.parametrize("contract, module, line, broken", [
    # the method reaching up into training: an upward import across layers
    ("layers", "method/pi.py", "from ..training import trainer", "saflex_cli.method.pi -> saflex_cli.training.trainer"),
    # the table model reading its own renderer: the circle the report split removed
    ("acyclic", "reporting/tables.py", "from . import markdown", "No cycles are allowed in saflex_cli.reporting"),
])
def test_the_contract_goes_red_when_a_rule_is_broken(tmp_path, contract, module, line, broken):
    shutil.copytree(ROOT / "saflex_cli", tmp_path / "saflex_cli", ignore=shutil.ignore_patterns("__pycache__"))
    path = tmp_path / "saflex_cli" / module
    assert lint_imports(tmp_path, contract).returncode == 0  # the copy keeps the rule before the edit
    path.write_text(path.read_text() + f"\n{line}\n")
    result = lint_imports(tmp_path, contract)
    assert result.returncode == 1, result.stdout
    assert "Contracts: 0 kept, 1 broken." in result.stdout and broken in result.stdout, result.stdout


def committed_records() -> list[Path]:
    return sorted((ROOT / "results").glob("**/runs/**/*.json"))


def test_every_committed_record_keeps_its_identity():
    records = committed_records()
    assert len(records) > 100  # the study's records are there to check
    wrong = []
    for path in records:
        record = json.loads(path.read_text())
        identity = RunConfig.from_dict(record["config"]).identity()
        if not (record["run_id"] == identity and record["run_name"].endswith(identity) and path.stem.endswith(identity)):
            wrong.append(f"{path.relative_to(ROOT)}: {identity}")
    assert not wrong, "\n".join(wrong[:10])
