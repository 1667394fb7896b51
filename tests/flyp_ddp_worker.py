"""The body of each rank in the FLYP DDP test (spawned by torch.multiprocessing, gloo on the CPU)."""
from __future__ import annotations

import atexit
import dataclasses
import os
from pathlib import Path

import torch
import torch.distributed as dist

from flyp_helpers import TINY_CLIP, register_tiny_clip
from saflex_cli.cli.common import build_configs
from saflex_cli.compute.distributed import Ranks, init_from_env, share
from saflex_cli.compute.runtime import seed_everything
from saflex_cli.method.pi import validation_gradient
from saflex_cli.registry import FAMILIES
from saflex_cli.runs.grid import run_grid

CPU = torch.device("cpu")


def flyp_config(root: str):
    """FLYP + WILDS RandAugment + SAflex on the tiny CLIP, one epoch."""
    (config,) = build_configs(
        "flyp", "iwildcam", "randaug", True, "0",
        train={"epochs": 1, "batch_size": 8, "data_root": root, "model": TINY_CLIP},
        options={"method": "flyp", "pretrained": "random", "loader_workers": 0})
    return dataclasses.replace(config, saflex=dataclasses.replace(config.saflex, val_batch_size=8))


def validation_batch_gradients(config, ranks):
    """g of this rank's share of the first validation batch (averaged over ranks when ranks is set)."""
    seed_everything(config.seed)
    setup = FAMILIES.get(config.family).build(config, CPU)
    batch = next(setup.val_batches)
    if ranks is None:  # one process: the gradient of each half, as two ranks would hold them
        halves = [share(batch, Ranks(group=None, rank=r, world=2)) for r in (0, 1)]
        return [validation_gradient(setup.model, setup.objective, *half) for half in halves]
    return validation_gradient(setup.model, setup.objective, *share(batch, ranks), ranks.group)


def note_group_at_exit(out: str, rank: int) -> None:
    """Runs after saflex's own exit handler (atexit is last in, first out): is the group gone?"""
    Path(out, f"rank{rank}-group-destroyed-at-exit").write_text(str(not dist.is_initialized()))


def flyp_rank(rank: int, world: int, port: int, root: str, out: str) -> None:
    atexit.register(note_group_at_exit, out, rank)  # before init_from_env registers saflex's handler
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), RANK=str(rank), WORLD_SIZE=str(world),
                      LOCAL_RANK=str(rank))
    torch.set_num_threads(1)
    register_tiny_clip()
    ranks = init_from_env("cpu")
    config = flyp_config(root)
    grad = validation_batch_gradients(config, ranks)
    os.makedirs(out, exist_ok=True)
    if ranks.leader:
        torch.save(grad, os.path.join(out, "val_grad.pt"))
    run_grid([config], out, device="cpu", quiet=True)
