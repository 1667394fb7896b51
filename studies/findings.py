"""Fill docs/findings.md's tables from the study's reports, so that no number in them is typed.

    python studies/findings.py            # regenerate the reports of results/study and fill the page
    python studies/findings.py --check    # exit 1 if a table on the page differs from the records

A table on the page is a block

    <!-- table: FAMILY DATASET SECTION -->
    ...
    <!-- end table -->

whose body is SECTION ('Gains, paired by seed', 'What the refinement decided', or a model's table,
e.g. 'MLP') of `saflex report --out results/study --family FAMILY --dataset DATASET`.

The prose may quote a difference with its interval ("+5.9 [+3.4, +8.4]"): `--check` also fails when
such a quote matches no interval of a table on the page (to the quote's precision), so that the
prose cannot go on saying what the records no longer say.
"""
from __future__ import annotations

import argparse
import re
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from saflex_cli.reporting.report import write_report  # noqa: E402

BLOCK = re.compile(r"(<!-- table: (\S+) (\S+) (.+?) -->\n)(.*?)(<!-- end table -->)", re.S)
NUMBER = r"[+\-−]?\d+(?:\.\d+)?"
INTERVAL = re.compile(rf"({NUMBER}) \[({NUMBER}), ({NUMBER})\]")


def section(markdown: str, title: str) -> str:
    """The body of `## title` in a report (up to the next heading of the same level)."""
    match = re.search(rf"^## {re.escape(title)}\n(.*?)(?=^## |\Z)", markdown, re.S | re.M)
    if match is None:
        raise SystemExit(f"the report has no section {title!r}")
    return match.group(1).strip("\n") + "\n"


def filled(page: str, results: Path, scratch: Path) -> str:
    reports: dict[tuple[str, str], str] = {}

    def replace(match: re.Match) -> str:
        family, dataset, title = match.group(2), match.group(3), match.group(4)
        if (family, dataset) not in reports:
            paths = write_report(results, family, datasets={dataset}, name=f"{family}_{dataset}", tables=scratch)
            reports[(family, dataset)] = paths[1].read_text()
        return match.group(1) + section(reports[(family, dataset)], title) + match.group(6)

    return BLOCK.sub(replace, page)


def _value(text: str) -> tuple[float, int]:
    """A quoted number and its count of decimals (the precision it was rounded to)."""
    text = text.replace("−", "-")
    return float(text), len(text.partition(".")[2])


def unsupported_quotes(page: str) -> list[str]:
    """The intervals quoted in the prose that no table row on the page rounds to."""
    table_lines = [line for line in page.splitlines() if line.startswith("|")]
    prose = "\n".join(line for line in page.splitlines() if not line.startswith("|"))
    tabled = [tuple(float(x) for x in m.groups()) for line in table_lines for m in INTERVAL.finditer(line)]
    missing = []
    for match in INTERVAL.finditer(" ".join(prose.split())):
        quoted = [_value(x) for x in match.groups()]
        half_step = 0.5 * 10 ** -max(decimals for _, decimals in quoted) + 1e-9
        if not any(all(abs(value - cell) <= half_step for (value, _), cell in zip(quoted, row)) for row in tabled):
            missing.append(match.group(0))
    return missing


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--results", type=Path, default=ROOT / "results" / "study")
    parser.add_argument("--page", type=Path, default=ROOT / "docs" / "findings.md")
    parser.add_argument("--check", action="store_true")
    args = parser.parse_args(argv)
    page = args.page.read_text()
    with tempfile.TemporaryDirectory() as scratch:
        new = filled(page, args.results, Path(scratch))
    if args.check:
        if new != page:
            print(f"{args.page} is not what the records in {args.results} say: run python studies/findings.py")
            return 1
        missing = unsupported_quotes(page)
        if missing:
            print(f"{args.page} quotes intervals no table on it shows: {'; '.join(missing)} (correct the prose)")
            return 1
        return 0
    args.page.write_text(new)
    return 0


if __name__ == "__main__":
    sys.exit(main())
