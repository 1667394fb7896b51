"""How long `saflex ... --help` takes, in this tree and in an older commit, in one run.

    python benchmarks/cli_startup.py                  # against 622a104, the last eager-import commit
    python benchmarks/cli_startup.py --before HEAD~3 --runs 10

Each figure is the median wall time of whole `python -m saflex_cli ARGS --help` processes
(interpreter start-up included, as a user waits for it). The older commit's `saflex_cli/` is
extracted with `git archive` into a temporary folder; the two trees run in turn (A B A B ...),
so a machine that slows down during the run slows both.
"""
from __future__ import annotations

import argparse
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
COMMANDS = ((), ("medmnist",), ("tabular",), ("report",), ("data", "verify"))


def wall_time(tree: Path, args: tuple[str, ...], cwd: Path) -> float:
    env = {**os.environ, "PYTHONPATH": str(tree), "SAFLEX_OFFLINE": "1"}
    start = time.perf_counter()
    subprocess.run([sys.executable, "-m", "saflex_cli", *args, "--help"], env=env, cwd=cwd, check=True,
                   stdout=subprocess.DEVNULL)
    return time.perf_counter() - start


def extract(commit: str, into: Path) -> Path:
    into.mkdir()
    archive = subprocess.run(["git", "-C", str(REPO), "archive", commit, "saflex_cli"], check=True,
                             capture_output=True).stdout
    subprocess.run(["tar", "-x", "-C", str(into)], input=archive, check=True)
    return into


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--before", default="622a104", help="the commit to compare with")
    parser.add_argument("--runs", type=int, default=5, help="timed runs per command and tree (after one warm-up)")
    args = parser.parse_args()
    print(f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}; "
          f"median of {args.runs} runs, wall seconds")
    print(f"{'command':<30} {args.before:>10} {'this tree':>10} {'ratio':>7}")
    with tempfile.TemporaryDirectory() as folder:
        cwd = Path(folder)  # holds no saflex_cli/: `python -m` looks in the cwd first
        before = extract(args.before, cwd / "before")
        for command in COMMANDS:
            times: dict[Path, list[float]] = {before: [], REPO: []}
            for run in range(args.runs + 1):
                for tree in times:
                    elapsed = wall_time(tree, command, cwd)
                    if run:  # the first round warms the file cache
                        times[tree].append(elapsed)
            old, new = statistics.median(times[before]), statistics.median(times[REPO])
            label = " ".join(("saflex", *command, "--help"))
            print(f"{label:<30} {old:>10.2f} {new:>10.2f} {old / new:>6.1f}x")


if __name__ == "__main__":
    main()
