"""SAflex and learning-to-reweight under DDP: 2 gloo processes on the CPU compute what one process
computes on the global batch."""
from __future__ import annotations

import socket

import torch
import torch.multiprocessing as mp

from ddp_worker import ddp_main, first_step, reweighting_weights_of
from reliability_helpers import demo_config, events, one_thread, records


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def close(a, b):
    return torch.allclose(torch.as_tensor(a), torch.as_tensor(b), rtol=1e-5, atol=1e-7)


def test_two_gloo_ranks_match_one_process_and_resume(tmp_path):
    """The first global step in float64 (exact on every CPU: ddp_worker.first_step), then the resume's
    bookkeeping. Whole trajectories are not compared: over many steps a float32 rounding that differs
    by kernel choice flips a discontinuous decision on some CPUs, and the runs part."""
    mp.spawn(ddp_main, args=(2, free_port(), str(tmp_path / "ddp")), nprocs=2, join=True)
    config = demo_config(epochs=3)
    with one_thread():
        single = first_step(config, None)

    ddp = torch.load(tmp_path / "ddp" / "ddp_step.pt", weights_only=True)
    assert single["labels"].dtype == torch.float64
    assert close(ddp["labels"], single["labels"]) and close(ddp["weights"], single["weights"])
    assert 0 < single["weights"].count_nonzero() < len(single["weights"])  # a real selection happened
    assert close(ddp["loss"], single["loss"])
    for name, grad in single["grads"].items():
        assert close(ddp["grads"][name], grad), name
    # Learning-to-reweight: each rank holds half of the validation batch, the weights need the global g.
    with one_thread():
        reweighting = reweighting_weights_of(None)
    assert 0 < reweighting.count_nonzero() < len(reweighting) and close(ddp["reweighting"], reweighting)

    # Stopped after epoch 1, resumed by the grid under DDP: one completed record, by rank 0 alone.
    (ddp_record,) = records(tmp_path / "ddp").values()
    assert ddp_record["status"] == "completed" and ddp_record["run_id"] == config.identity()
    assert ddp_record["world_size"] == 2 and ddp_record["resumed_at"] == [1, 0]
    assert [e["epoch"] for e in ddp_record["epochs"]] == [1, 2, 3]
    assert [e["event"] for e in events(tmp_path / "ddp")] == ["resume", "complete"]
    assert len({e["pid"] for e in events(tmp_path / "ddp")}) == 1  # rank 0 alone writes
