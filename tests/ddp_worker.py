"""The body of each rank in the DDP test (spawned by torch.multiprocessing, gloo on the CPU)."""
from __future__ import annotations

import os

import torch
import torch.distributed as dist

from reliability_helpers import demo_config
from saflex_cli.checkpoint import Checkpoints
from saflex_cli.core import refine
from saflex_cli.distributed import init_from_env, share
from saflex_cli.grid import checkpoint_folder, run_grid
from saflex_cli.registry import FAMILIES
from saflex_cli.runtime import seed_everything
from saflex_cli.trainer import Trainer

CPU = torch.device("cpu")


class Interrupted(Exception):
    pass


def first_step(config, ranks, model_wrapper=None):
    """One SAflex step on the first global batch: labels, weights, loss and the parameter gradients."""
    seed_everything(config.seed)
    setup = FAMILIES.get(config.family).build(config, CPU)
    model = setup.model
    inputs, targets = next(iter(setup.train_batches))
    generator = torch.Generator().manual_seed(1)
    aug = share(setup.augmenter(inputs, setup.objective.soft_targets(targets, 10), generator), ranks)
    val_inputs, val_targets = share(next(setup.val_batches), ranks)
    refined = refine(model, aug.inputs, aug.labels, val_inputs, val_targets, beta=0.0, tau=0.01,
                     generator=generator, process_group=ranks.group if ranks else None)
    world = ranks.world if ranks else 1
    train_model = model_wrapper(model) if model_wrapper else model
    inputs, targets = share((inputs, targets), ranks)
    loss = setup.objective.training_loss(train_model, inputs, targets, aug.inputs, refined.labels,
                                         refined.weights * world)
    loss.backward()
    return {"labels": refined.labels, "weights": refined.weights, "loss": loss.detach(),
            "grads": {n: p.grad.clone() for n, p in model.named_parameters()}}


def ddp_main(rank: int, world: int, port: int, out: str) -> None:
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), RANK=str(rank), WORLD_SIZE=str(world),
                      LOCAL_RANK=str(rank))
    torch.set_num_threads(1)
    ranks = init_from_env("cpu")
    config = demo_config(epochs=3)

    os.makedirs(out, exist_ok=True)
    step = first_step(config, ranks, lambda m: torch.nn.parallel.DistributedDataParallel(m))
    gathered = [None] * world
    dist.all_gather_object(gathered, {k: step[k] for k in ("labels", "weights", "loss")})
    if rank == 0:
        torch.save({"labels": torch.cat([g["labels"] for g in gathered]),
                    "weights": torch.cat([g["weights"] for g in gathered]),
                    "loss": torch.stack([g["loss"] for g in gathered]).mean(), "grads": step["grads"]},
                   os.path.join(out, "ddp_step.pt"))

    # A run stopped after its first epoch, then resumed by the grid under DDP.
    seed_everything(config.seed)
    trainer = Trainer(FAMILIES.get(config.family).build(config, CPU), config, CPU, ranks=ranks)
    store = Checkpoints(checkpoint_folder(out, config))

    def save(t):
        if ranks.leader:
            store.save(t.state_dict(), config.identity(), t.epoch, t.step)

    def stop(entry):
        raise Interrupted

    try:
        trainer.fit(on_epoch=stop, save=save)
    except Interrupted:
        pass
    dist.barrier()
    run_grid([config], out, device="cpu", quiet=True)
    dist.destroy_process_group()
