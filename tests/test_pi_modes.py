"""Fast Pi modes and validation-gradient reuse, against brute-force autograd oracles."""
from __future__ import annotations

import copy

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from saflex_cli.errors import SaflexError
from saflex_cli.method.core import SaflexStep, extrapolate, refine
from saflex_cli.method.objectives import CrossEntropy
from saflex_cli.method.pi import validation_gradient
from saflex_cli.models.base import Classifier

torch.set_num_threads(2)
K = 4


def mlp_classifier() -> Classifier:
    return Classifier(nn.Sequential(nn.Linear(5, 12), nn.Tanh(), nn.Linear(12, 8), nn.Tanh()), 8, K)


def cnn_classifier() -> Classifier:
    body = nn.Sequential(nn.Conv2d(3, 6, 3, padding=1), nn.BatchNorm2d(6), nn.ReLU(), nn.AdaptiveAvgPool2d(2), nn.Flatten())
    return Classifier(body, 24, K)


MODELS = {"mlp": (mlp_classifier, (5,)), "cnn+bn": (cnn_classifier, (3, 6, 6))}


def batch(shape, n, seed):
    gen = torch.Generator().manual_seed(seed)
    return torch.randn((n,) + shape, generator=gen), torch.randint(0, K, (n,), generator=gen)


def head_oracle(model: Classifier, x_aug, x_val, y_val, rows=None) -> torch.Tensor:
    """-<grad_head log p_k(x_i), grad_head L(val)>, one sample and class at a time (train mode)."""
    model = copy.deepcopy(model)
    head = list(model.head.parameters())
    g = torch.autograd.grad(F.cross_entropy(model(x_val), y_val), head)
    log_probs = F.log_softmax(model(x_aug), dim=1)
    rows = range(len(log_probs)) if rows is None else rows
    pi = torch.zeros(len(rows), K)
    for out, i in enumerate(rows):
        for k in range(K):
            grads = torch.autograd.grad(log_probs[i, k], head, retain_graph=True)
            pi[out, k] = -sum((a * b).sum() for a, b in zip(grads, g))
    return pi


@pytest.mark.parametrize("kind", MODELS)
def test_last_layer_pi_matches_head_restricted_oracle(kind):
    build, shape = MODELS[kind]
    torch.manual_seed(0)
    model = build().train()
    x_aug, y_aug = batch(shape, 6, 1)
    x_val, y_val = batch(shape, 10, 2)
    refined = refine(model, x_aug, y_aug, x_val, y_val, beta=0.0, tau=0.01, gumbel=False, pi_mode="last-layer")
    torch.testing.assert_close(refined.pi, head_oracle(model, x_aug, x_val, y_val), rtol=1e-4, atol=1e-6)


def test_last_layer_refine_leaves_the_model_as_it_was():
    build, shape = MODELS["cnn+bn"]
    model = build().train()
    before = copy.deepcopy(model.state_dict())
    refine(model, *batch(shape, 6, 1), *batch(shape, 8, 2), beta=0.0, tau=0.01, pi_mode="last-layer")
    assert model.training
    for name, value in model.state_dict().items():
        assert torch.equal(value, before[name]), name
    assert all(p.grad is None for p in model.parameters())


def test_last_layer_step_takes_pi_from_the_union_forward_and_its_loss_is_the_plain_one():
    """Inside a training step Pi uses the union's BatchNorm statistics, and the loss is the
    objective's own training loss with the refined labels and weights."""
    build, shape = MODELS["cnn+bn"]
    torch.manual_seed(0)
    model = build().train()
    x, y = batch(shape, 5, 1)
    x_aug, y_aug = batch(shape, 5, 2)
    x_val, y_val = batch(shape, 8, 3)
    reference = copy.deepcopy(model)
    step = SaflexStep(beta=0.0, tau=0.01, gumbel=False, pi_mode="last-layer")
    loss, refined = step.training_loss(model, x, y, x_aug, y_aug, iter([(x_val, y_val)]))
    union = torch.cat([x, x_aug])
    oracle = head_oracle(reference, union, x_val, y_val, rows=range(5, 10))
    torch.testing.assert_close(refined.pi, oracle, rtol=1e-4, atol=1e-6)
    expected = CrossEntropy().training_loss(reference, x, y, x_aug, refined.labels, refined.weights)
    torch.testing.assert_close(loss, expected)
    loss.backward()
    assert all(p.grad is not None for p in model.parameters())


def test_last_layer_needs_a_classifier_head():
    model = nn.Sequential(nn.Linear(5, K))
    with pytest.raises(SaflexError, match="exact"):
        refine(model, *batch((5,), 4, 1), *batch((5,), 4, 2), beta=0.0, tau=0.01, pi_mode="last-layer")


def test_unknown_pi_mode_and_bad_refresh_are_refused():
    with pytest.raises(SaflexError, match="last-layer"):
        SaflexStep(beta=0.0, tau=0.01, pi_mode="fast")
    with pytest.raises(SaflexError, match=">= 1"):
        SaflexStep(beta=0.0, tau=0.01, refresh=0)


class Counting:
    """Validation batches that count how often they were drawn."""

    def __init__(self, shape):
        self.shape, self.drawn = shape, 0

    def __next__(self):
        self.drawn += 1
        return batch(self.shape, 8, 100 + self.drawn)


def sgd_nudge(model: nn.Module, seed: int) -> None:
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.05 * torch.randn(p.shape, generator=gen))


@pytest.mark.parametrize("pi_mode", ["exact", "last-layer"])
def test_refresh_1_is_refine_with_a_fresh_validation_batch_every_step(pi_mode):
    build, shape = MODELS["mlp"]
    torch.manual_seed(0)
    model = build().train()
    step = SaflexStep(beta=0.0, tau=0.01, pi_mode=pi_mode, refresh=1)
    val = Counting(shape)
    step_gen, ref_gen = torch.Generator().manual_seed(5), torch.Generator().manual_seed(5)
    for t in range(3):
        x_aug, y_aug = batch(shape, 6, 10 + t)
        _, got = step.training_loss(model, *batch(shape, 4, 20 + t), x_aug, y_aug, val, step_gen)
        want = refine(model, x_aug, y_aug, *batch(shape, 8, 100 + t + 1), beta=0.0, tau=0.01,
                      generator=ref_gen, pi_mode=pi_mode)
        # No BatchNorm here, so the last-layer step's union forward gives each sample the same Pi.
        torch.testing.assert_close(got.pi, want.pi)
        torch.testing.assert_close(got.labels, want.labels)
        torch.testing.assert_close(got.weights, want.weights)
        sgd_nudge(model, t)
    assert val.drawn == 3


@pytest.mark.parametrize("pi_mode", ["exact", "last-layer"])
def test_refresh_k_reuses_g_between_refreshes_and_keeps_pi_exact_for_the_current_model(pi_mode):
    build, shape = MODELS["mlp"]
    torch.manual_seed(0)
    model = build().train()
    step = SaflexStep(beta=0.0, tau=0.01, gumbel=False, pi_mode=pi_mode, refresh=3)
    val = Counting(shape)
    grads, draws = [], []
    for t in range(7):
        x_aug, y_aug = batch(shape, 6, 10 + t)
        _, refined = step.training_loss(model, *batch(shape, 4, 20 + t), x_aug, y_aug, val)
        grads.append({n: g.clone() for n, g in step.val_grad.items()})
        draws.append(val.drawn)
        # Pi with the cached g equals refine for the model as it is now.
        want = refine(model, x_aug, y_aug, None, None, beta=0.0, tau=0.01, gumbel=False,
                      val_grad=step.val_grad, pi_mode=pi_mode)
        torch.testing.assert_close(refined.pi, want.pi)
        sgd_nudge(model, t)
    assert draws == [1, 1, 1, 2, 2, 2, 3]
    same = [all(torch.equal(grads[t][n], grads[t - 1][n]) for n in grads[t]) for t in range(1, 7)]
    assert same == [True, True, False, True, True, False]


def test_state_dict_resumes_on_the_same_refresh_schedule():
    build, shape = MODELS["mlp"]
    torch.manual_seed(0)
    model = build().train()
    step = SaflexStep(beta=0.0, tau=0.01, gumbel=False, refresh=3)
    val = Counting(shape)
    for t in range(2):
        step.training_loss(model, *batch(shape, 4, t), *batch(shape, 6, 10 + t), val)
    resumed = SaflexStep(beta=0.0, tau=0.01, gumbel=False, refresh=3)
    resumed.load_state_dict(step.state_dict())
    x_aug, y_aug = batch(shape, 6, 50)
    _, a = step.training_loss(model, *batch(shape, 4, 9), x_aug, y_aug, val)
    _, b = resumed.training_loss(model, *batch(shape, 4, 9), x_aug, y_aug, val)
    assert val.drawn == 1  # the third step reused g in both
    torch.testing.assert_close(a.pi, b.pi)
    with pytest.raises(SaflexError, match="cannot resume"):
        SaflexStep(beta=0.0, tau=0.01, refresh=2).load_state_dict(step.state_dict())


def test_exact_step_matches_the_exact_refine_oracle_path():
    """The exact step's g is the full validation gradient (not a head-only one)."""
    build, shape = MODELS["mlp"]
    model = build().train()
    step = SaflexStep(beta=0.0, tau=0.01)
    x_val, y_val = batch(shape, 8, 1)
    step.training_loss(model, *batch(shape, 4, 2), *batch(shape, 6, 3), iter([(x_val, y_val)]))
    full = validation_gradient(model, CrossEntropy(), x_val, y_val)
    assert set(step.val_grad) == set(full) and len(full) > 2


def test_all_rejected_weights_stay_zero_without_a_host_branch():
    pi = torch.tensor([[1.0, -1.0], [2.0, -3.0]])
    upstream = torch.tensor([[0.0, 1.0], [0.0, 1.0]])
    _, weights = extrapolate(pi, upstream, beta=100.0, tau=0.01, gumbel=False)
    assert torch.equal(weights, torch.zeros(2))
    _, weights = extrapolate(pi, upstream, beta=0.0, tau=0.01, gumbel=False)
    assert torch.equal(weights, torch.full((2,), 0.5))
