"""The README's 'A recipe from Python' snippet runs as printed (the demo recipe, 1 epoch)."""
from __future__ import annotations

import json
import re
from pathlib import Path

README = Path(__file__).resolve().parents[1] / "README.md"


def section_code(heading: str) -> str:
    section = README.read_text().split(f"## {heading}\n", 1)[1].split("\n## ", 1)[0]
    return re.search(r"```python\n(.*?)```", section, re.S).group(1)


def test_the_recipe_from_python_snippet_trains_and_records_a_run(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)  # the snippet writes results/python/ under the working directory
    exec(compile(section_code("A recipe from Python"), str(README), "exec"), {})
    accuracy, kept = (float(value) for value in capsys.readouterr().out.split())
    assert 0.0 <= accuracy <= 1.0 and 0.0 < kept <= 1.0
    record, = (tmp_path / "results" / "python" / "runs" / "demo").glob("*+saflex_seed0_*.json")
    assert json.loads(record.read_text())["config"]["epochs"] == 1
