"""FLYP under DDP (2 gloo processes on the CPU): the contrastive SAflex step runs through torchrun's path.

Each rank's contrastive negatives are its own share of the batch (features are not gathered, as
FLYP's own code does), so the DDP loss is not the one-process loss; what must hold is that the
validation gradient is the mean of the ranks' gradients and that the run completes and is
recorded once, by rank 0, and that each rank's process group is destroyed before the interpreter
shuts down (left to finalization, gloo's threads can abort the process: SIGABRT, "terminate called
without an active exception").
"""
from __future__ import annotations

import json

import torch
import torch.multiprocessing as mp

from flyp_ddp_worker import flyp_config, flyp_rank, validation_batch_gradients
from flyp_helpers import register_tiny_clip, write_iwildcam
from test_ddp import free_port


def test_flyp_saflex_under_two_gloo_ranks(tmp_path):
    root = str(write_iwildcam(tmp_path / "wilds"))
    out = tmp_path / "ddp"
    mp.spawn(flyp_rank, args=(2, free_port(), root, str(out)), nprocs=2, join=True)

    register_tiny_clip()
    halves = validation_batch_gradients(flyp_config(root), None)
    ddp_grad = torch.load(out / "val_grad.pt", weights_only=True)
    for name, value in ddp_grad.items():
        torch.testing.assert_close(value, (halves[0][name] + halves[1][name]) / 2, rtol=1e-5, atol=1e-7)
    assert any(not torch.allclose(halves[0][n], halves[1][n]) for n in ddp_grad)  # the ranks' shares differ

    (record_path,) = (out / "runs" / "flyp").glob("*.json")
    record = json.loads(record_path.read_text())
    assert record["status"] == "completed" and record["world_size"] == 2
    epoch = record["epochs"][0]
    assert torch.isfinite(torch.tensor(epoch["train_loss"])) and 0 < epoch["saflex"]["kept_fraction"] <= 1
    assert [(out / f"rank{r}-group-destroyed-at-exit").read_text() for r in (0, 1)] == ["True", "True"]
