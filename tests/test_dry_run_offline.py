"""A grid is listed and priced before its data is on disk, without touching the network (issue 22)."""
from __future__ import annotations

import socket

from saflex_cli.cli import app


def dry_run(capsys, monkeypatch, tmp_path, *args: str) -> str:
    attempts = []

    def no_network(self, address):
        attempts.append(address)
        raise OSError("the network is off in this test")

    monkeypatch.delenv("SAFLEX_OFFLINE", raising=False)  # the dry run itself must stay offline
    monkeypatch.setattr(socket.socket, "connect", no_network)
    app(args=[*args, "--dry-run", "--data-root", str(tmp_path / "nonexistent"), "--out", str(tmp_path / "out")],
        standalone_mode=False)
    assert attempts == []
    assert not (tmp_path / "out").exists()
    return " ".join(capsys.readouterr().err.split())


def test_the_whole_table_2_grid_is_priced_without_data_or_network(capsys, monkeypatch, tmp_path):
    text = dry_run(capsys, monkeypatch, tmp_path, "tabular", "--model", "all", "--dataset", "all", "--aug", "all")
    assert "tabular: 126 run(s)" in text and text.count("to run") == 126
    assert "estimated" in text and "device-hours for 126 of the 126 run(s) to do" in text
    # shrutime has no OpenML copy: its identity waits for Churn_Modelling.csv
    assert "18 run(s) (no data): data not on disk (Churn_Modelling.csv): identity computed when present" in text


def test_the_table_1_grid_marks_every_run_whose_file_is_missing(capsys, monkeypatch, tmp_path):
    text = dry_run(capsys, monkeypatch, tmp_path, "medmnist", "--dataset", "all", "--aug", "all")
    assert "device-hours for 120 of the 120 run(s) to do" in text
    assert "120 run(s) (no data): data not on disk (" in text and "identity computed when present" in text
