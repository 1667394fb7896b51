"""--compile: the compiled step computes what the eager step does, resumes like it, and is its own identity.

torch.compile on the CPU takes seconds to tens of seconds per graph, so each test compiles a tiny
model once. Numbers are compared in float64 (the models' parameters and inputs), where compiled
and eager kernels differ by rounding far below the tolerances, whatever the CPU.
"""
from __future__ import annotations

import copy
import dataclasses
import io
import json
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from conftest import TinyCNN
from reliability_helpers import demo_config, one_thread
from saflex_cli.compiled import compile_model
from saflex_cli.config import RunConfig
from saflex_cli.core import SaflexStep
from saflex_cli.errors import SaflexError
from saflex_cli.objectives import CrossEntropy
from saflex_cli.registry import BACKBONES, FAMILIES
from saflex_cli.runtime import seed_everything
from saflex_cli.trainer import Trainer

pytestmark = pytest.mark.slow
CPU = torch.device("cpu")
REPO = Path(__file__).resolve().parents[1]


class Forever:
    def __init__(self, batch):
        self.batch = batch

    def __next__(self):
        return self.batch


def one_step(model, compiled: bool, batches, network_mode=None):
    """A SAflex step as the trainer takes it on the CPU: eager with Pi from the shared union forward,
    or compiled with Pi by its own compiled JVP. Returns what the step decided and changed."""
    x, y, x_aug, y_aug, val = batches
    step = SaflexStep(CrossEntropy(), beta=0.0, tau=0.01, share_forward=not compiled, compile=compiled,
                      network_mode=network_mode)
    if compiled:
        compile_model(model)
    loss, refined = step.training_loss(model, x, y, x_aug, y_aug, Forever(val), torch.Generator().manual_seed(0))
    loss.backward()
    return {"loss": loss.detach(), "pi": refined.pi, "labels": refined.labels, "weights": refined.weights,
            **{f"grad {n}": p.grad for n, p in model.named_parameters()},
            **{f"buffer {n}": b.clone() for n, b in model.state_dict().items()}}


def assert_same_step(model, batches, network_mode=None):
    eager = one_step(copy.deepcopy(model), False, batches, network_mode)
    compiled = one_step(copy.deepcopy(model), True, batches, network_mode)
    assert eager["pi"].abs().max() > 1e-2 and 0 < eager["weights"].count_nonzero() < len(eager["weights"])
    assert torch.equal(compiled["weights"], eager["weights"])  # float64 Pi: no decision near the rounding
    for name, value in eager.items():
        torch.testing.assert_close(compiled[name], value, rtol=1e-6, atol=1e-9, msg=name)


def image_batches(n=12, classes=4):
    gen = torch.Generator().manual_seed(1)
    images = lambda: torch.randn(n, 3, 8, 8, generator=gen, dtype=torch.float64)  # noqa: E731
    labels = lambda: torch.randint(0, classes, (n,), generator=gen)  # noqa: E731
    return images(), labels(), images(), F.one_hot(labels(), classes).double(), (images(), labels())


def test_compiled_step_equals_eager_on_a_batchnorm_cnn_in_training_mode():
    """Pi through the clean + augmented union, BatchNorm normalising with the batch's statistics and
    updating its running ones once: labels, weights, loss, gradients and buffers as in eager mode."""
    torch.manual_seed(0)
    assert_same_step(TinyCNN(num_classes=4).double().train(), image_batches())


@pytest.mark.parametrize("name", ["tabular_mlp", "saint"])
def test_compiled_step_equals_eager_on_the_tabular_models(name):
    from test_tabular_models import CARDS, K, table_batch, tiny_saint

    torch.manual_seed(0)
    model = tiny_saint() if name == "saint" else BACKBONES.get(name)(CARDS, N_CONT := 3, K, batchnorm=True)
    gen = torch.Generator().manual_seed(3)
    labels = lambda n: torch.randint(0, K, (n,), generator=gen)  # noqa: E731
    batches = (table_batch(16, 1).double(), labels(16), table_batch(16, 2).double(),
               F.one_hot(labels(16), K).double(), (table_batch(16, 3).double(), labels(16)))
    # eval: dropout off (compiled and eager dropout draw different masks); BatchNorm uses running stats
    assert_same_step(model.double().eval(), batches, network_mode="eval")
