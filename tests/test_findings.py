"""docs/findings.md says what the committed study records say: its tables are the report's, and
every interval its prose quotes is one of theirs (studies/findings.py)."""
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "studies"))

import findings  # noqa: E402

DEMO_BLOCK = "<!-- table: demo digits Each setting against its counterparts -->\n<!-- end table -->\n"


def test_the_committed_page_matches_the_committed_records():
    assert findings.main(["--check"]) == 0


def test_a_table_is_filled_from_the_records_and_an_edited_cell_is_caught(tmp_path):
    page = tmp_path / "page.md"
    page.write_text("# Findings\n\n" + DEMO_BLOCK)
    assert findings.main(["--page", str(page), "--check"]) == 1  # the empty block is not what the records say
    assert findings.main(["--page", str(page)]) == 0
    filled = page.read_text()
    rows = [line for line in filled.splitlines() if line.startswith("| MLP | digits |")]
    assert any("Upstream only" in row for row in rows) and any("SAflex (w/ upstream)" in row for row in rows)
    assert findings.main(["--page", str(page), "--check"]) == 0
    upstream = next(row for row in rows if row.startswith("| MLP | digits | Upstream only | "))
    page.write_text(filled.replace(upstream, upstream.replace("| 3 |", "| 4 |", 1)))
    assert findings.main(["--page", str(page), "--check"]) == 1


def test_a_quoted_interval_must_round_from_a_table_row():
    table = "| MLP | digits | SAflex | 3 | 90.19 ± 0.12 | +5.92 [+3.39, +8.44] | -3.01 [-3.78, -2.23] |\n"
    assert findings.unsupported_quotes(table + "SAflex gains +5.9 [+3.4, +8.4] over it.\n") == []
    assert findings.unsupported_quotes(table + "and −3.0 [−3.8,\n  −2.2] against No Aug.\n") == []
    assert findings.unsupported_quotes(table + "SAflex gains +5.9 [+3.4, +8.6].\n") == ["+5.9 [+3.4, +8.6]"]
    assert findings.unsupported_quotes(table + "worse by 3.0 [−3.8, −2.2].\n") == ["3.0 [−3.8, −2.2]"]
    assert findings.unsupported_quotes("SAflex gains +5.9 [+3.4, +8.4], no table.\n") == ["+5.9 [+3.4, +8.4]"]
