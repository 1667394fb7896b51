"""Data you can trust, offline: verify, fetch (retries, resume, mirrors, MD5), --offline, bad files."""
from __future__ import annotations

import hashlib
import http.server
import socket
import sys
import threading
import time

import numpy as np
import pytest

from saflex_cli.cli import main
from saflex_cli.data.download import download
from saflex_cli.errors import SaflexError

PAYLOAD = bytes(range(256)) * 2000  # 512 kB
PAYLOAD_MD5 = hashlib.md5(PAYLOAD).hexdigest()


class FlakyHost(http.server.BaseHTTPRequestHandler):
    """Serves PAYLOAD at /good (honouring Range), cuts the first answer short, 404s elsewhere,
    and serves other bytes at /other (a mirror with the wrong content)."""

    cut_first = True
    busy_first = True
    requests: list[tuple[str, str | None]] = []

    def do_GET(self):
        FlakyHost.requests.append((self.path, self.headers.get("Range")))
        if self.path == "/busy" and FlakyHost.busy_first:  # an overloaded server, once
            FlakyHost.busy_first = False
            self.send_error(503)
            return
        if self.path == "/other":
            body = b"not the file" * 100
        elif self.path in ("/good", "/busy"):
            body = PAYLOAD
        else:
            self.send_error(404)
            return
        start = int(self.headers["Range"].split("=")[1].rstrip("-")) if self.headers.get("Range") else 0
        self.send_response(206 if start else 200)
        self.send_header("Content-Length", str(len(body) - start))
        self.end_headers()
        if FlakyHost.cut_first and self.path == "/good":
            FlakyHost.cut_first = False
            self.wfile.write(body[start:start + len(body) // 3])
            self.wfile.flush()
            self.connection.close()  # a dropped connection mid-file
            return
        self.wfile.write(body[start:])

    def log_message(self, *args):
        pass


@pytest.fixture
def host():
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), FlakyHost)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    FlakyHost.cut_first, FlakyHost.busy_first, FlakyHost.requests = True, True, []
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


def test_download_survives_dead_mirror_wrong_mirror_and_a_cut_connection(host, tmp_path, monkeypatch):
    monkeypatch.delenv("SAFLEX_OFFLINE")
    target = tmp_path / "file.npz"
    download([f"{host}/gone", f"{host}/other", f"{host}/good"], target, {PAYLOAD_MD5}, timeout=5, backoff_s=0)
    assert target.read_bytes() == PAYLOAD
    good = [r for p, r in FlakyHost.requests if p == "/good"]
    assert good[0] is None and good[1] == f"bytes={len(PAYLOAD) // 3}-"  # resumed, not restarted
    assert sorted(p.name for p in tmp_path.iterdir()) == ["file.npz"]  # no partial, no lock


def test_download_refuses_content_with_unknown_md5(host, tmp_path, monkeypatch):
    monkeypatch.delenv("SAFLEX_OFFLINE")
    with pytest.raises(SaflexError, match="MD5"):
        download([f"{host}/other"], tmp_path / "file.npz", {PAYLOAD_MD5}, timeout=5, backoff_s=0)
    assert not (tmp_path / "file.npz").exists()


def test_a_server_error_is_retried(host, tmp_path, monkeypatch):
    monkeypatch.delenv("SAFLEX_OFFLINE")
    download([f"{host}/busy"], tmp_path / "file.npz", {PAYLOAD_MD5}, timeout=5, backoff_s=0)
    assert (tmp_path / "file.npz").read_bytes() == PAYLOAD and [p for p, _ in FlakyHost.requests] == ["/busy"] * 2


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]  # nothing listens on it once the socket is closed


@pytest.mark.parametrize("server", ["nonexistent.invalid", "127.0.0.1:{port}"])
def test_an_unreachable_host_fails_fast_and_is_named_once(server, tmp_path, monkeypatch):
    """No DNS name or a refused connection: retrying cannot help, so no retries and no backoff
    (the defaults: 3 tries with 2 s and 4 s waits per URL, over two URLs of the same host)."""
    monkeypatch.delenv("SAFLEX_OFFLINE")
    server = server.format(port=closed_port())
    target = tmp_path / "x.npz"
    started = time.monotonic()
    with pytest.raises(SaflexError) as error:
        download([f"http://{server}/x.npz", f"http://{server}/mirror/x.npz"], target, {PAYLOAD_MD5})
    assert time.monotonic() - started < 10  # generous: the fail-fast path needs well under a second
    message = str(error.value)
    assert message.count("could not reach") == 1 and f"could not reach {server} (" in message
    assert f"place the file at {target} yourself" in message and list(tmp_path.iterdir()) == []


def test_offline_names_the_file_and_where_to_put_it(tmp_path):
    with pytest.raises(SaflexError, match=f"offline.*{tmp_path / 'x.npz'}.*http://example.org/x"):
        download(["http://example.org/x"], tmp_path / "x.npz", None)


def unwrapped(text: str) -> str:
    """The text without white space: the console wraps long lines, even inside a path."""
    return "".join(text.split())


def run_cli(monkeypatch, capsys, *args) -> tuple[int, str]:
    monkeypatch.setattr(sys, "argv", ["saflex", *args])
    with pytest.raises(SystemExit) as exit_info:
        main()
    return exit_info.value.code, capsys.readouterr().err


def fake_medmnist(path, *, images=None, labels=None, corrupt=False):
    """A file in MedMNIST's npz layout (pneumoniamnist: 28x28 gray, 2 classes)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if corrupt:
        path.write_bytes(b"PK\x03\x04 truncated zip")
        return path
    rng = np.random.default_rng(0)
    arrays = {}
    for split, n in (("train", 40), ("val", 20), ("test", 20)):
        arrays[f"{split}_images"] = rng.integers(0, 256, (n, 28, 28), dtype=np.uint8) if images is None else images(n)
        arrays[f"{split}_labels"] = rng.integers(0, 2, (n, 1)) if labels is None else labels(n)
    np.savez(path, **arrays)
    return path


BAD_INPUTS = {
    "unknown dataset": (None, ["--dataset", "nosuchmnist"], "unknown medmnist dataset"),
    "corrupt npz": (dict(corrupt=True), [], "not a readable npz"),
    "wrong shape": (dict(images=lambda n: np.zeros((n, 28), np.float32)), [], "expected uint8 images"),
    "labels out of range": (dict(labels=lambda n: np.full((n, 1), 7)), [], "labels outside 0..1"),
    "missing file, offline": ("missing", [], "offline mode is on"),
    "bad flag": (None, ["--epochs", "0"], "Invalid value"),
}


@pytest.mark.parametrize("case", list(BAD_INPUTS))
def test_bad_input_gets_one_clear_message_and_no_record(case, tmp_path, monkeypatch, capsys):
    fixture, flags, message = BAD_INPUTS[case]
    data = tmp_path / "data"
    data.mkdir()
    if isinstance(fixture, dict):
        fake_medmnist(data / "medmnist" / "pneumoniamnist.npz", **fixture)
    args = ["medmnist", "--dataset", "pneumoniamnist", "--seeds", "0", "--epochs", "1", "--skip-md5", "--quiet",
            "--data-root", str(data), "--out", str(tmp_path / "out"), *flags]
    code, err = run_cli(monkeypatch, capsys, *args)
    assert code == 2
    assert message in err and "Traceback" not in err
    assert [p for p in tmp_path.glob("out/**/*")] == []  # no record, and no claim folders left behind
