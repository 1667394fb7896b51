"""A full disk (simulated by RLIMIT_FSIZE) leaves the previous record and checkpoint intact."""
from __future__ import annotations

import contextlib
import json
import resource
import signal
import subprocess
import sys

import pytest
import torch

from reliability_helpers import REPO, child_env, demo_config, one_thread
from saflex_cli.compute.runtime import seed_everything
from saflex_cli.config import RECORD_SCHEMA
from saflex_cli.registry import FAMILIES
from saflex_cli.runs.grid import checkpoint_folder
from saflex_cli.store.files import DiskFull
from saflex_cli.store.records import record_path, write_record
from saflex_cli.training.checkpoint import Checkpoints
from saflex_cli.training.trainer import Trainer


@contextlib.contextmanager
def file_size_limit(size: int):
    """Lower the soft RLIMIT_FSIZE for the block only (SIGXFSZ ignored, so a write fails with EFBIG).

    Only for the block: pytest's own output, which may go to a file, must not hit the limit.
    """
    soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
    handler = signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    resource.setrlimit(resource.RLIMIT_FSIZE, (size, hard))
    try:
        yield
    finally:
        resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))
        signal.signal(signal.SIGXFSZ, handler)


def test_record_write_that_fails_leaves_the_previous_record(tmp_path):
    config = demo_config()
    path = write_record(tmp_path, config, {"status": "failed", "reason": "before"})
    before = path.read_bytes()
    with pytest.raises(DiskFull, match="intact"), file_size_limit(len(before) + 10):
        write_record(tmp_path, config, {"status": "completed", "epochs": ["x" * 1000]})
    assert path.read_bytes() == before
    assert [p.name for p in path.parent.iterdir()] == [path.name]


class Stop(Exception):
    pass


def test_grid_stops_with_a_clear_message_and_keeps_its_checkpoint(tmp_path):
    """The CLI resumes a run from its checkpoint; the next checkpoint cannot be written."""
    config = demo_config(epochs=3, saflex=False, aug="none")
    with one_thread():
        seed_everything(config.seed)
        trainer = Trainer(FAMILIES.get("demo").build(config, torch.device("cpu")), config, torch.device("cpu"))
        store = Checkpoints(checkpoint_folder(tmp_path, config))

        def stop(entry):
            raise Stop
        with pytest.raises(Stop):
            trainer.fit(on_epoch=stop, save=lambda t: store.save(t.state_dict(), config.identity(), t.epoch, t.step))
    (checkpoint,) = store.paths()
    failed = {"schema": RECORD_SCHEMA, "run_id": config.identity(), "status": "failed", "reason": "earlier",
              "epoch": 1, "step": 1, "finished": "then", "config": config.to_dict(), "run_name": config.run_name}
    record = write_record(tmp_path, config, failed)
    before = {p: p.read_bytes() for p in (checkpoint, record)}

    def limited():
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (checkpoint.stat().st_size // 2, resource.RLIM_INFINITY))

    child = subprocess.run([sys.executable, "-m", "saflex_cli", "demo", "--seeds", "0", "--epochs", "3", "--quiet",
                            "--retry-failed", "--out", str(tmp_path)], cwd=REPO, env=child_env(),
                           capture_output=True, text=True, preexec_fn=limited, timeout=300)
    assert child.returncode == 2
    assert "could not write" in child.stderr and "intact" in child.stderr and "Traceback" not in child.stderr
    assert {p: p.read_bytes() for p in before} == before
    assert json.loads(record_path(tmp_path, config).read_text())["status"] == "failed"
    assert not [p for p in tmp_path.rglob("*") if p.name.endswith(".tmp")]
