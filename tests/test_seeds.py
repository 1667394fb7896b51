"""Seeds as users type them: lists and ranges (`0-9`, `0-4,10`) through --seeds, --set seed= and
--config; each seed once (`--seeds 0,0` made two identical runs, and the second was reported as
"held by other workers" once the first had recorded it, issue #11.8); never negative; no empty range."""
from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from saflex_cli.cli import app
from saflex_cli.errors import SaflexError
from saflex_cli.seeds import parse_seeds


@pytest.mark.parametrize("text, seeds", [
    ("2, 0,1", [2, 0, 1]),  # a list keeps its order
    ("0-9", list(range(10))),
    ("0-4,10", [0, 1, 2, 3, 4, 10]),
    (" 7 - 8 ,1", [7, 8, 1]),
    ("3-3", [3]),
])
def test_lists_and_ranges_give_each_seed_in_order(text, seeds):
    assert parse_seeds(text) == seeds


@pytest.mark.parametrize("text, message", [
    ("0,1,0", r"^--seeds lists 0 more than once \('0,1,0'\): give each seed once$"),
    ("0-4,3", r"^--seeds lists 3 more than once \('0-4,3'\)"),
    ("5-2", r"^--seeds: the range '5-2' is empty \(it counts up: write 2-5\)$"),
    ("-1", r"^--seeds must be integers >= 0 \(numpy seeds are unsigned\), got '-1'$"),
    ("0, -3", r"^--seeds must be integers >= 0"),
    ("1-2-3", r"^--seeds must be integers >= 0 or ranges A-B, comma separated \(0,1,2 or 0-9 or 0-4,10\), got '1-2-3'$"),
    ("0,,1", "or ranges A-B"),
    ("1.5", "or ranges A-B"),
])
def test_bad_seeds_are_refused_in_one_line(text, message):
    with pytest.raises(SaflexError, match=message):
        parse_seeds(text)


def planned_seeds(*args) -> list[int]:
    """The seeds of the runs `saflex config show demo ARGS` resolves (nothing trained)."""
    result = CliRunner().invoke(app, ["config", "show", "demo", "--aug", "none", *args])
    assert result.exit_code == 0, result.output + repr(result.exception)
    runs = json.loads(result.stdout[result.stdout.index("["):result.stdout.rindex("]") + 1])
    return [run["config"]["seed"] for run in runs]


def test_ranges_reach_the_runs_through_seeds_set_and_config(tmp_path):
    assert planned_seeds("--seeds", "0-9") == list(range(10))
    assert planned_seeds("--seeds", "0-2,7") == [0, 1, 2, 7]
    assert planned_seeds("--set", "seed=0-4,10") == [0, 1, 2, 3, 4, 10]  # replaces --seeds' list
    (tmp_path / "range.toml").write_text('seed = "3-5"\n')
    (tmp_path / "list.yaml").write_text("seed: [8, 2]\n")
    assert planned_seeds("--config", str(tmp_path / "range.toml")) == [3, 4, 5]
    assert planned_seeds("--config", str(tmp_path / "list.yaml")) == [8, 2]
