"""SAflex and learning-to-reweight under DDP: 2 gloo processes on the CPU compute what one process
computes on the global batch."""
from __future__ import annotations

import socket

import torch
import torch.multiprocessing as mp

from ddp_worker import ddp_main, first_step, reweighting_weights_of
from reliability_helpers import demo_config, events, metrics, one_thread, records
from saflex_cli.runs.grid import run_grid


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def close(a, b):
    return torch.allclose(torch.as_tensor(a), torch.as_tensor(b), rtol=1e-5, atol=1e-7)


def test_two_gloo_ranks_match_one_process_and_resume(tmp_path):
    mp.spawn(ddp_main, args=(2, free_port(), str(tmp_path / "ddp")), nprocs=2, join=True)
    config = demo_config(epochs=3)
    with one_thread():
        single = first_step(config, None)
        run_grid([config], tmp_path / "single", device="cpu", quiet=True)

    ddp = torch.load(tmp_path / "ddp" / "ddp_step.pt", weights_only=True)
    assert close(ddp["labels"], single["labels"]) and close(ddp["weights"], single["weights"])
    assert 0 < single["weights"].count_nonzero() < len(single["weights"])  # a real selection happened
    assert close(ddp["loss"], single["loss"])
    for name, grad in single["grads"].items():
        assert close(ddp["grads"][name], grad), name
    # Learning-to-reweight: each rank holds half of the validation batch, the weights need the global g.
    with one_thread():
        reweighting = reweighting_weights_of(None)
    assert 0 < reweighting.count_nonzero() < len(reweighting) and close(ddp["reweighting"], reweighting)

    (ddp_record,), (single_record,) = records(tmp_path / "ddp").values(), records(tmp_path / "single").values()
    assert ddp_record["world_size"] == 2 and ddp_record["resumed_at"] == [1, 0]
    assert len({e["pid"] for e in events(tmp_path / "ddp")}) == 1  # rank 0 alone writes
    ours, theirs = metrics(ddp_record), metrics(single_record)
    for a, b in zip(ours["epochs"], theirs["epochs"]):
        assert close(a["train_loss"], b["train_loss"]), (a, b)
        for key, value in b["saflex"].items():
            assert close(a["saflex"][key], value), key
        assert close(a["test"]["acc"], b["test"]["acc"])
