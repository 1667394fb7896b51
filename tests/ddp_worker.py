"""The body of each rank in the DDP test (spawned by torch.multiprocessing, gloo on the CPU)."""
from __future__ import annotations

import os

import torch
import torch.distributed as dist

from reliability_helpers import demo_config
from saflex_cli.augment.base import AugBatch
from saflex_cli.compute.distributed import init_from_env, share
from saflex_cli.compute.runtime import seed_everything
from saflex_cli.method.core import refine
from saflex_cli.method.objectives import CrossEntropy
from saflex_cli.method.refiners import LearningToReweight
from saflex_cli.registry import FAMILIES
from saflex_cli.runs.grid import checkpoint_folder, run_grid
from saflex_cli.training.checkpoint import Checkpoints
from saflex_cli.training.trainer import Trainer

CPU = torch.device("cpu")


class Interrupted(Exception):
    pass


def first_step(config, ranks, model_wrapper=None):
    """One SAflex step on the first global batch: labels, weights, loss and the parameter gradients.

    In float64: SAflex's decisions (argmax, keep/drop) are discontinuous, so a float32 rounding that
    differs between a half batch and the whole one (kernel choice, CPU model) could flip one; in
    float64 the two paths agree on every CPU."""
    seed_everything(config.seed)
    setup = FAMILIES.get(config.family).build(config, CPU)
    model = setup.model.double()
    inputs, targets = next(iter(setup.train_batches))
    inputs = inputs.double()
    generator = torch.Generator().manual_seed(1)
    aug = setup.augmenter(inputs, setup.objective.soft_targets(targets, 10).double(), generator)
    aug = share(AugBatch(aug.inputs.double(), aug.labels.double(), aug.meta), ranks)
    val_inputs, val_targets = next(setup.val_batches)
    val_inputs, val_targets = share((val_inputs.double(), val_targets), ranks)
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


def join(rank: int, world: int, port: int):
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), RANK=str(rank), WORLD_SIZE=str(world),
                      LOCAL_RANK=str(rank))
    torch.set_num_threads(1)
    return init_from_env("cpu")


def reweighting_problem():
    """A tiny MLP (no BatchNorm: its batch statistics are per rank under DDP), a clean batch, an
    augmented batch with soft labels and a validation batch, the same in every process; float64,
    as first_step, so that no rounding flips a weight's sign."""
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(5, 16), torch.nn.Tanh(), torch.nn.Linear(16, 3)).double()
    double = {"dtype": torch.float64}
    return (model, torch.randn(8, 5, **double), AugBatch(torch.randn(8, 5, **double),
                                                        torch.softmax(torch.randn(8, 3, **double), 1)),
            (torch.randn(12, 5, **double), torch.randint(0, 3, (12,))))


def reweighting_weights_of(ranks):
    """Learning-to-reweight's weights of the problem's augmented batch, this rank's share of them."""
    model, inputs, aug, val = reweighting_problem()
    refiner = LearningToReweight(CrossEntropy(), mode=None, process_group=ranks.group if ranks else None,
                                 world_size=ranks.world if ranks else 1)
    return refiner.decide(model, share(inputs, ranks), share(aug, ranks), iter([share(val, ranks)]))[2].weights


def ddp_main(rank: int, world: int, port: int, out: str) -> None:
    ranks = join(rank, world, port)
    config = demo_config(epochs=3)

    os.makedirs(out, exist_ok=True)
    step = first_step(config, ranks, lambda m: torch.nn.parallel.DistributedDataParallel(m))
    gathered = [None] * world
    dist.all_gather_object(gathered, {**{k: step[k] for k in ("labels", "weights", "loss")},
                                      "reweighting": reweighting_weights_of(ranks)})
    if rank == 0:
        torch.save({"labels": torch.cat([g["labels"] for g in gathered]),
                    "weights": torch.cat([g["weights"] for g in gathered]),
                    "reweighting": torch.cat([g["reweighting"] for g in gathered]),
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
