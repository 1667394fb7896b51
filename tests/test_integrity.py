"""Results integrity: a record stands for its own data and setting, and bad input changes nothing.

Each bad input is one line on stderr, exit 2, no record written and every other record left byte
for byte as it was."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import write_medmnist_npz
from typer.testing import CliRunner

from saflex_cli.cli import app

REPO = Path(__file__).resolve().parents[1]


def run_cli(*args, cwd):
    env = {"SAFLEX_OFFLINE": "1", "PATH": "/usr/bin:/bin", "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}
    return subprocess.run([sys.executable, "-m", "saflex_cli", *map(str, args)], capture_output=True, text=True,
                          env=env, timeout=300, cwd=cwd)


def medmnist(data: Path, out: Path, *extra):
    return ("medmnist", "--dataset", "dermamnist", "--aug", "none", "--epochs", 1, "--seeds", "0", "--skip-md5",
            "--batch-size", 16, "--data-root", data, "--out", out, "--quiet", *extra)


def snapshot(out: Path) -> dict[str, bytes]:
    return {str(p.relative_to(out)): p.read_bytes() for p in sorted(out.rglob("*.json"))}


@pytest.fixture(scope="module")
def recorded(tmp_path_factory):
    """One finished MedMNIST run (tiny npz in the real layout): the record every bad input must leave alone."""
    root = tmp_path_factory.mktemp("recorded")
    (root / "data" / "medmnist").mkdir(parents=True)
    write_medmnist_npz(root / "data" / "medmnist" / "dermamnist.npz", counts=(24, 16, 16), num_classes=7)
    result = run_cli(*medmnist(root / "data", root / "out"), cwd=root)
    assert result.returncode == 0, result.stderr
    return root


def test_a_record_made_on_another_file_of_the_same_name_is_not_reused(recorded, tmp_path):
    out = tmp_path / "out"
    first = tmp_path / "first"
    (first / "medmnist").mkdir(parents=True)
    write_medmnist_npz(first / "medmnist" / "dermamnist.npz", counts=(24, 16, 16), num_classes=7, seed=0)
    assert run_cli(*medmnist(first, out), cwd=tmp_path).returncode == 0
    second = tmp_path / "second"
    (second / "medmnist").mkdir(parents=True)
    write_medmnist_npz(second / "medmnist" / "dermamnist.npz", counts=(24, 16, 16), num_classes=7, seed=1)  # other content
    result = run_cli(*medmnist(second, out), cwd=tmp_path)
    message = " ".join(result.stderr.split())
    assert result.returncode == 0 and "1 run(s) recorded, 0 skipped" in message
    assert "1 stale record(s)" in message and "made on other data (dermamnist.npz: md5:" in message
    records = [json.loads(p.read_text()) for p in (out / "runs" / "medmnist").glob("*.json")]
    assert len(records) == 2 and len({r["run_id"] for r in records}) == 2
    assert {dict(r["config"]["data_checksums"])["dermamnist.npz"] for r in records} == \
        {f"md5:{r['data']['md5']}" for r in records}
    again = run_cli(*medmnist(second, out), cwd=tmp_path)  # the record of this file is reused
    assert "0 run(s) recorded, 1 skipped" in " ".join(again.stderr.split())
    forced = run_cli(*medmnist(second, out, "--force"), cwd=tmp_path)
    assert forced.returncode == 0 and len(list((out / "superseded" / "medmnist").glob("*.json"))) == 1
    assert len(list((out / "runs" / "medmnist").glob("*.json"))) == 1


def test_the_report_never_pools_two_targets_of_one_csv(tmp_path):
    rows = ["a,b,c,t1,t2"] + [f"{i % 7},{(i * 3) % 5},{i % 2},{int(i % 3 == 0)},{int(i % 4 == 0)}" for i in range(60)]
    (tmp_path / "table.csv").write_text("\n".join(rows) + "\n")
    for target in ("t1", "t2"):
        result = CliRunner().invoke(app, ["tabular", "--csv", str(tmp_path / "table.csv"), "--target", target,
                                          "--model", "mlp", "--aug", "none", "--epochs", "1", "--seeds", "0",
                                          "--out", str(tmp_path / "out"), "--quiet"])
        assert result.exit_code == 0, result.output
    table = (tmp_path / "out" / "tabular.md").read_text()
    cells = [line for line in table.splitlines() if line.startswith("| No Aug")]
    assert len(cells) == 2 and all("(1)" in c for c in cells)  # one seed each, never "(2)"
    assert any("target=t1" in c for c in cells) and any("target=t2" in c for c in cells)


@pytest.mark.parametrize("args, message", [
    (("--out", "{file}"), "is a file, not a folder"),
    (("--device", "cuda"), "this machine has no CUDA GPU"),
    (("--device", "foo"), "is not a torch device"),
    (("--seeds", "-1"), "--seeds must be integers >= 0"),
    (("--seeds", "0,0"), "--seeds lists 0 more than once"),
    (("--seeds", "-1", "--dry-run"), "--seeds must be integers >= 0"),
    (("--set", "optim.nope=1"), "unknown setting 'optim.nope'"),
])
def test_bad_run_input_is_one_line_exit_2_and_changes_no_record(recorded, args, message):
    if "cuda" in args:
        import torch
        if torch.cuda.is_available():
            pytest.skip("this machine has a GPU")
    before = snapshot(recorded / "out")
    (recorded / "afile").write_text("x")
    filled = [str(recorded / "afile") if a == "{file}" else a for a in args]
    out = [] if "--out" in filled else ["--out", recorded / "out"]
    result = run_cli(*medmnist(recorded / "data", recorded / "out")[:-3], *out, *filled, cwd=recorded)
    assert result.returncode == 2, result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert message in " ".join(result.stderr.split()) and "Traceback" not in result.stderr
    assert len(lines) == 1 and lines[0].startswith("error:")
    assert snapshot(recorded / "out") == before
    assert not list((recorded / "out").glob("claims/*/*"))


def test_an_unwritable_out_is_refused_before_anything_is_written(recorded, monkeypatch, tmp_path):
    import saflex_cli.store.files as files
    real_access = os.access
    monkeypatch.setattr(files.os, "access", lambda path, mode: False if Path(path) == tmp_path else real_access(path, mode))
    result = CliRunner().invoke(app, [str(a) for a in medmnist(recorded / "data", tmp_path / "new")])
    assert "is not writable by this user" in str(result.exception) and not (tmp_path / "new").exists()


@pytest.mark.parametrize("args, message", [
    (("--selection", "foo"), "--selection 'foo': 1 medmnist record(s) have no such checkpoint"),
    (("--dataset", "dermamnist,foo"), "--dataset foo: no medmnist records"),
])
def test_bad_report_input_is_one_line_exit_2(recorded, args, message):
    before = {p: p.read_bytes() for p in (recorded / "out").glob("*.md")}
    result = run_cli("report", "--out", recorded / "out", "--family", "medmnist", *args, cwd=recorded)
    assert result.returncode == 2 and message in " ".join(result.stderr.split()), result.stderr
    assert {p: p.read_bytes() for p in (recorded / "out").glob("*.md")} == before


def test_a_runs_numbers_do_not_depend_on_how_many_workers_share_the_machine(tmp_path):
    """Convolutions on the CPU reduce in another order with another thread count: --workers must
    leave each run's thread count as a lone process has it (grid._worker_main)."""
    (tmp_path / "data" / "medmnist").mkdir(parents=True)
    write_medmnist_npz(tmp_path / "data" / "medmnist" / "dermamnist.npz", counts=(24, 16, 16), num_classes=7)
    env_threads = {"OMP_NUM_THREADS": "2"}
    results = {}
    for workers in (1, 2):
        out = tmp_path / f"w{workers}"
        args = (*medmnist(tmp_path / "data", out)[:-3], "--out", out, "--seeds", "0,1", "--workers", workers)
        env = {"SAFLEX_OFFLINE": "1", "PATH": "/usr/bin:/bin", "PYTHONPATH": str(REPO), **env_threads}
        done = subprocess.run([sys.executable, "-m", "saflex_cli", *map(str, args)], capture_output=True, text=True,
                              env=env, timeout=600, cwd=tmp_path)
        assert done.returncode == 0, done.stderr
        records = [json.loads(p.read_text()) for p in sorted((out / "runs" / "medmnist").glob("*.json"))]
        results[workers] = {r["run_id"]: [(e["train_loss"], e["val"], e["test"]) for e in r["epochs"]] for r in records}
    assert len(results[1]) == 2 and results[1] == results[2]
