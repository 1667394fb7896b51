"""The grid under faults: concurrent workers, SIGKILLs anywhere, NaN runs, stale claims, --force."""
from __future__ import annotations

import json
import random
import signal
from collections import Counter

import pytest
import torch

from reliability_helpers import cli, demo_config, events, metrics, one_thread, records, wait_for, worker
from saflex_cli.augment.base import AugBatch
from saflex_cli.registry import AUGMENTERS
from saflex_cli.reporting.report import write_report
from saflex_cli.runs.claims import Claim
from saflex_cli.runs.grid import GridOptions, run_grid
from saflex_cli.store.records import record_path

GRID = [{"epochs": 3, "seed": s, "saflex": on, "aug": aug}
        for s in (0, 1) for aug, on in (("none", False), ("label-shift", False), ("label-shift", True))]


def leftovers(out):
    return [p for p in out.rglob("*") if p.name.endswith(".tmp") or p.name.endswith(".part")] + \
        [p for p in (out / "claims", out / "checkpoints") if p.exists()]


def test_two_workers_on_one_folder_run_each_run_once(tmp_path):
    # Runs long enough (about 2 s each) that, however late a loaded machine schedules the second
    # worker after the barrier, the first cannot have finished all six alone.
    spec = {"runs": [dict(r, epochs=100) for r in GRID], "barrier": str(tmp_path / "go")}
    out = tmp_path / "out"
    children = [worker(out, spec) for _ in range(2)]
    wait_for(lambda: len(list(tmp_path.glob("ready-*"))) == 2, timeout=120, every=0.05)
    (tmp_path / "go").touch()
    for child in children:
        assert child.wait() == 0, child.stderr.read()
    starts = Counter(e["run"] for e in events(out) if e["event"] in ("start", "resume"))
    assert len(starts) == len(GRID) and set(starts.values()) == {1}, starts
    assert len({e["pid"] for e in events(out)}) == 2  # both took part
    assert all(r["status"] == "completed" for r in records(out).values()) and len(records(out)) == len(GRID)
    assert leftovers(out) == []


def test_grid_killed_at_random_points_ends_as_uninterrupted(tmp_path):
    spec = {"runs": GRID, "options": {"checkpoint_every": 2}}
    reference = tmp_path / "reference"
    from grid_worker import configs
    with one_thread():
        run_grid(configs(spec), reference, device="cpu", quiet=True)

    out, rng, kills = tmp_path / "out", random.Random(7), 0
    while kills < 5:
        seen = len(events(out))
        child = worker(out, spec)
        try:
            wait_for(lambda: len(events(out)) > seen or child.poll() is not None, timeout=120)
            wait_for(lambda: False, timeout=rng.uniform(0.0, 0.8)) if child.poll() is None else None
        except TimeoutError:
            pass
        if child.poll() is None:
            child.send_signal(signal.SIGKILL)
            kills += 1
        child.wait()
        if len(records(out)) == len(GRID):
            break
    assert kills >= 5, f"the grid finished after {kills} kills: make it longer"
    final = worker(out, spec)
    assert final.wait() == 0, final.stderr.read()
    assert {name: metrics(r) for name, r in records(out).items()} == \
        {name: metrics(r) for name, r in records(reference).items()}
    assert leftovers(out) == []
    assert any(e["event"] == "resume" for e in events(out))


class PoisonedAugmenter:
    """Label shift whose inputs turn NaN from the given call on, while `poisoned` is set."""

    poisoned = True

    def __init__(self, at_call: int):
        self.at_call, self.calls = at_call, 0

    def __call__(self, inputs, labels, generator):
        self.calls += 1
        out = AugBatch(inputs.float() + 0.1 * torch.randn(inputs.shape, generator=generator), labels.clone())
        if self.poisoned and self.calls >= self.at_call:
            out.inputs[0] = float("nan")
        return out


def test_nan_run_leaves_failure_record_grid_goes_on_and_retry(tmp_path, monkeypatch):
    monkeypatch.setitem(AUGMENTERS._entries, "poisoned", PoisonedAugmenter)
    good = demo_config(epochs=2, saflex=False, aug="label-shift")
    bad = demo_config(epochs=2, saflex=True, aug="poisoned", options=(("aug_kwargs", {"at_call": 10}),))
    with one_thread():
        outcome = run_grid([bad, good], tmp_path, device="cpu", quiet=True)
    assert len(outcome.failed) == 1 and len(outcome.ran) == 1
    failure = json.loads(record_path(tmp_path, bad).read_text())
    steps_per_epoch = 7  # 200 digits, batch 32, the last batch of 8 kept
    assert (failure["status"], failure["epoch"], failure["step"]) == ("failed", 2, 10 - steps_per_epoch)
    assert "NaN" in failure["reason"]
    md = write_report(tmp_path, "demo")[1].read_text()
    assert "poisoned" in md and failure["reason"] in md

    run_grid([bad, good], tmp_path, device="cpu", quiet=True)  # failed runs are not retried unasked
    assert sum(e["event"] == "start" for e in events(tmp_path)) == 2
    monkeypatch.setattr(PoisonedAugmenter, "poisoned", False)
    with one_thread():
        outcome = run_grid([bad, good], tmp_path, device="cpu", quiet=True, options=GridOptions(retry_failed=True))
    assert len(outcome.ran) == 1 and not outcome.failed
    assert json.loads(record_path(tmp_path, bad).read_text())["status"] == "completed"


def test_stale_claims_are_taken_over_live_ones_are_not(tmp_path):
    live = Claim(tmp_path, "demo", "run")
    assert live.acquire()
    assert not Claim(tmp_path, "demo", "run").acquire()  # held, heartbeat fresh
    owner = live.path / "owner.json"
    data = json.loads(owner.read_text())
    owner.write_text(json.dumps({**data, "heartbeat": data["heartbeat"] - 10_000}))  # a lost worker
    taker = Claim(tmp_path, "demo", "run")
    assert taker.acquire() and taker.held() and not live.held()
    assert not Claim(tmp_path, "demo", "run").acquire()
    owner.write_text(json.dumps({**json.loads(owner.read_text()), "host": data["host"], "pid": 2 ** 22 + 1}))
    assert Claim(tmp_path, "demo", "run", ttl=1e9).acquire()  # its process is gone: no TTL wait
    live.release()  # a lost claim's release leaves the new owner's claim alone
    assert (tmp_path / "claims" / "demo" / "run.claim" / "owner.json").exists()


def test_record_made_on_other_data_is_stale_reported_and_only_replaced_with_force(tmp_path, capsys):
    old = demo_config(epochs=1, saflex=False, aug="none", data_checksums=(("digits.csv.gz", "md5:old"),))
    new = demo_config(epochs=1, saflex=False, aug="none", data_checksums=(("digits.csv.gz", "md5:new"),))
    other_setting = demo_config(epochs=2, saflex=False, aug="none", data_checksums=(("digits.csv.gz", "md5:new"),))
    with one_thread():
        run_grid([old], tmp_path, device="cpu", quiet=True)
        run_grid([new, other_setting], tmp_path, device="cpu", quiet=True)
    err = " ".join(capsys.readouterr().err.split())
    assert "1 stale record(s)" in err and "made on other data (digits.csv.gz: md5:old in the record, md5:new now)" in err
    assert record_path(tmp_path, old).exists()  # never silently dropped (nor reused: new ran too)
    assert record_path(tmp_path, new).exists()
    run_grid([new], tmp_path, device="cpu", quiet=True, options=GridOptions(force=True))
    assert not record_path(tmp_path, old).exists()
    assert (tmp_path / "superseded" / "demo" / record_path(tmp_path, old).name).exists()


def test_workers_flag_shares_the_grid_between_processes(tmp_path):
    child = cli("demo", "--seeds", "0", "--epochs", "1", "--workers", "2", "--out", str(tmp_path), "--quiet")
    _, err = child.communicate(timeout=300)
    assert child.returncode == 0, err
    starts = Counter(e["run"] for e in events(tmp_path) if e["event"] == "start")
    assert len(starts) == 3 and set(starts.values()) == {1}
    assert all(r["status"] == "completed" for r in records(tmp_path).values()) and len(records(tmp_path)) == 3
    assert leftovers(tmp_path) == []
    again = cli("demo", "--seeds", "0", "--epochs", "1", "--workers", "2", "--out", str(tmp_path))
    out, err = again.communicate(timeout=300)
    assert again.returncode == 0, err
    assert "3 of 3 runs already recorded" in out + err
    assert len([e for e in events(tmp_path) if e["event"] == "start"]) == 3  # nothing trained twice


@pytest.mark.parametrize("stop", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_a_stopped_worker_releases_its_claim_and_leaves_no_folders(stop, tmp_path):
    out = tmp_path / "out"
    # A run of minutes, so that it is still running when the signal comes, however loaded the machine.
    child = worker(out, {"runs": [{"epochs": 10000, "seed": 0, "saflex": True, "aug": "label-shift"}]})
    wait_for(lambda: list(out.glob("claims/*/*.claim/owner.json")) or child.poll() is not None, timeout=120)
    child.send_signal(stop)
    assert child.wait(timeout=120) == -stop, child.stderr.read()  # it still ends as the signal says
    assert not (out / "claims").exists()  # nothing for another worker to wait out, no empty folders


def test_a_stop_signal_while_the_heartbeat_starts_still_releases_the_claim(tmp_path, monkeypatch):
    """The signal handler can run inside Thread.start, before the heartbeat thread has started
    (seen under load as 'cannot join thread before it is started')."""
    import threading

    claim = Claim(tmp_path, "demo", "run")
    real_start = threading.Thread.start

    def start_interrupted(thread):
        claim.release()  # what the SIGTERM handler does, at the worst moment
        real_start(thread)

    monkeypatch.setattr(threading.Thread, "start", start_interrupted)
    assert claim.acquire()
    monkeypatch.setattr(threading.Thread, "start", real_start)
    assert not (tmp_path / "claims").exists()
    claim._thread.join(timeout=10)
    assert not claim._thread.is_alive()  # it saw the stop and ended
