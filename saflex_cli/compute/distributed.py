"""One run over several processes (torchrun + DDP), and the collectives the SAflex core needs.

Every rank draws the same global batches (same seeds) and keeps its share of the rows; the
validation gradient is the mean over ranks, the weight renormalisation divides by the global
weight sum, and Gumbel noise is drawn for the global batch and sliced, so that N processes
compute what one process computes on the global batch. With no process group every function
here is the identity, which is the single-process path.
"""
from __future__ import annotations

import atexit
import os
from dataclasses import dataclass, fields, is_dataclass, replace

import torch
import torch.distributed as dist
from torch import Tensor


@dataclass(frozen=True)
class Ranks:
    group: object  # a torch.distributed ProcessGroup
    rank: int
    world: int

    @property
    def leader(self) -> bool:
        return self.rank == 0


def init_from_env(device_type: str) -> Ranks | None:
    """Join the process group torchrun describes in the environment; None when run alone.

    A group this function creates is destroyed at exit, while the interpreter is still whole: a
    gloo group left to interpreter finalization can abort the process ("terminate called without
    an active exception") when its worker threads are torn down after Python's state is gone.
    """
    if int(os.environ.get("WORLD_SIZE", "1")) <= 1:
        return None
    if not dist.is_initialized():
        dist.init_process_group("nccl" if device_type == "cuda" else "gloo")
        atexit.register(_destroy_group)
    return Ranks(dist.group.WORLD, dist.get_rank(), dist.get_world_size())


def _destroy_group() -> None:
    if dist.is_initialized():  # the program may have destroyed it itself
        dist.destroy_process_group()


def is_leader() -> bool:
    """True unless this is a non-zero rank of a process group (only rank 0 writes and prints)."""
    return not (dist.is_available() and dist.is_initialized()) or dist.get_rank() == 0


def local_device(ranks: Ranks | None, requested: torch.device) -> torch.device:
    """cuda:LOCAL_RANK for a CUDA run under torchrun; the requested device otherwise."""
    if ranks is None or requested.type != "cuda":
        return requested
    device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
    torch.cuda.set_device(device)
    return device


def mean_over_ranks(tensors: dict[str, Tensor], group) -> dict[str, Tensor]:
    """Element-wise mean over the ranks of a dict of tensors, in one all-reduce."""
    if group is None:
        return tensors
    flat = torch.cat([t.reshape(-1) for t in tensors.values()])
    dist.all_reduce(flat, group=group)
    flat /= dist.get_world_size(group)
    out, start = {}, 0
    for name, t in tensors.items():
        out[name] = flat[start:start + t.numel()].view_as(t)
        start += t.numel()
    return out


def sum_over_ranks(tensor: Tensor, group) -> Tensor:
    if group is None:
        return tensor
    total = tensor.clone()
    dist.all_reduce(total, group=group)
    return total


def own_rows(local_count: int, group, device) -> tuple[slice, int]:
    """This rank's rows within the global batch (ranks hold consecutive shares), and its size."""
    if group is None:
        return slice(0, local_count), local_count
    sizes = [torch.zeros(1, dtype=torch.long, device=device) for _ in range(dist.get_world_size(group))]
    dist.all_gather(sizes, torch.tensor([local_count], device=device), group=group)
    sizes = [int(s) for s in sizes]
    start = sum(sizes[: dist.get_rank(group)])
    return slice(start, start + local_count), sum(sizes)


def share(batch, ranks: Ranks | None):
    """This rank's consecutive share of the rows of a batch (tensors, tuples, dicts of them)."""
    if ranks is None:
        return batch
    if isinstance(batch, Tensor):
        return torch.tensor_split(batch, ranks.world)[ranks.rank] if batch.dim() else batch
    if is_dataclass(batch):  # an AugBatch
        return replace(batch, **{f.name: share(getattr(batch, f.name), ranks) for f in fields(batch)})
    if isinstance(batch, dict):
        return {k: share(v, ranks) for k, v in batch.items()}
    if isinstance(batch, (tuple, list)):
        return type(batch)(share(part, ranks) for part in batch)
    return batch


def broadcast(value, ranks: Ranks | None):
    """Rank 0's value on every rank: decisions that must agree (which run, skip or not)."""
    if ranks is None:
        return value
    box = [value]
    dist.broadcast_object_list(box, src=0, group=ranks.group)
    return box[0]


class RankShare:
    """An endless batch stream of which this rank sees its own share (the whole batch alone)."""

    def __init__(self, stream, ranks: Ranks | None):
        self.stream, self.ranks = stream, ranks

    def __next__(self):
        return share(next(self.stream), self.ranks)
