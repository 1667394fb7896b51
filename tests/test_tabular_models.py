"""Tabular backbones: shapes, categorical codes, forward-mode AD (exact Pi) and fixed-order evaluation."""
from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch.func import functional_call

from saflex_cli.data.splits import Split
from saflex_cli.method.core import refine
from saflex_cli.method.objectives import CrossEntropy
from saflex_cli.method.pi import directional_log_probs, trainable_parameters
from saflex_cli.registry import BACKBONES
from saflex_cli.training.evaluation import ClassifierEvaluator

CARDS, N_CONT, K = [3, 4], 3, 3


def table_batch(batch: int, seed: int = 0) -> torch.Tensor:
    gen = torch.Generator().manual_seed(seed)
    codes = torch.stack([torch.randint(0, c, (batch,), generator=gen) for c in CARDS], 1).float()
    return torch.cat([codes, torch.randn(batch, N_CONT, generator=gen)], 1)


def tiny_saint():
    torch.manual_seed(0)
    return BACKBONES.get("saint")(CARDS, N_CONT, K, dim=8, heads=2, dim_head=4, row_dim_head=8, head_hidden=16)


@pytest.mark.parametrize("name", ["tabular_mlp", "saint"])
def test_shapes_and_features_head_split(name):
    model = BACKBONES.get(name)(CARDS, N_CONT, K).eval()
    x = table_batch(10)
    assert model(x).shape == (10, K)
    assert torch.allclose(model.head(model.features(x)), model(x))


def test_saint_layout_follows_the_official_colrow_settings():
    model = BACKBONES.get("saint")(CARDS, N_CONT, 2)
    body = model.body
    assert len(body.blocks) == 1 and body.blocks[0].col_attn.fn.heads == 4
    assert body.embed.table.num_embeddings == 1 + sum(CARDS)  # the CLS token's single category first
    tokens = 1 + len(CARDS) + N_CONT
    assert body.blocks[0].row_attn.norm.normalized_shape == (32 * tokens,)
    assert body.blocks[0].col_ff.fn.dropout.p == 0.8 and model.head.in_features == 1000
    wide = BACKBONES.get("saint")([], 101, 2)
    assert wide.body.embed.table.embedding_dim == 8  # train.py: embedding 8 beyond 100 features


def test_categorical_codes_select_embeddings():
    model = tiny_saint().eval()
    x = table_batch(6)
    other = x.clone()
    other[:, 0] = (other[:, 0] + 1) % CARDS[0]
    assert not torch.allclose(model(x), model(other))
    out_of_range = x.clone()
    out_of_range[:, 1] = 99.0  # clamped to the column's last code, never another column's embedding
    clamped = x.clone()
    clamped[:, 1] = CARDS[1] - 1
    assert torch.allclose(model(out_of_range), model(clamped))


def test_saint_rows_attend_to_their_batch_mates():
    model = tiny_saint().eval()
    x = table_batch(8)
    together = model(x)[:4]
    alone = model(x[:4])
    assert not torch.allclose(together, alone)  # hence a fixed evaluation batch size and order


def brute_force_pi(model, inputs, direction):
    """d/dt log_softmax(f(x; theta + t d)) by reverse mode, one output entry at a time."""
    params = {n: p.detach().clone().requires_grad_() for n, p in trainable_parameters(model).items()}
    buffers = dict(model.named_buffers())
    log_probs = F.log_softmax(functional_call(model, {**params, **buffers}, (inputs,)), dim=1)
    pi = torch.zeros_like(log_probs)
    for i in range(log_probs.shape[0]):
        for k in range(log_probs.shape[1]):
            grads = torch.autograd.grad(log_probs[i, k], list(params.values()), retain_graph=True, allow_unused=True)
            pi[i, k] = sum((g * direction[n]).sum() for n, g in zip(params, grads) if g is not None)
    return pi.detach()


@pytest.mark.parametrize("name", ["saint", "tabular_mlp"])
def test_forward_ad_pi_matches_brute_force_autograd(name):
    model = tiny_saint() if name == "saint" else BACKBONES.get(name)(CARDS, N_CONT, K, batchnorm=True)
    model.eval()  # dropout off, so both passes see the same function
    x = table_batch(5, seed=1)
    gen = torch.Generator().manual_seed(2)
    direction = {n: torch.randn(p.shape, generator=gen) for n, p in trainable_parameters(model).items()}
    _, exact = directional_log_probs(model, lambda call: CrossEntropy().logits(call, x), direction)
    expected = brute_force_pi(model, x, direction)
    assert exact.abs().max() > 1e-3  # a non-trivial direction
    torch.testing.assert_close(exact, expected, rtol=1e-4, atol=1e-5)


def test_refine_on_saint_leaves_the_model_untouched():
    model = tiny_saint().train()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    x, y = table_batch(8), torch.randint(0, K, (8,))
    refined = refine(model, x, y, table_batch(6, seed=3), torch.randint(0, K, (6,)), beta=1.0, tau=0.01,
                     generator=torch.Generator().manual_seed(0))
    assert refined.pi.shape == (8, K) and torch.isfinite(refined.pi).all()
    assert model.training and all(torch.equal(before[k], v) for k, v in model.state_dict().items())


def test_evaluating_saint_twice_gives_identical_scores():
    model = tiny_saint()
    x = table_batch(50, seed=4)
    y = torch.arange(50) % 2
    model.head = torch.nn.Linear(16, 2)
    evaluator = ClassifierEvaluator({"test": Split(x, y)}, ("acc", "auc"), batch_size=16, device=torch.device("cpu"))
    model.train()  # evaluation must switch dropout off and restore the mode
    first, second = evaluator(model), evaluator(model)
    assert first == second and model.training
