"""The SAflex core against brute-force autograd, and the properties docs/method.md fixes."""
from __future__ import annotations

import copy

import pytest
import torch
import torch.nn.functional as F
from conftest import TinyCNN, brute_force_pi, tiny_mlp

from saflex_cli import refine, saflex_loss
from saflex_cli.method.core import extrapolate
from saflex_cli.method.objectives import CrossEntropy
from saflex_cli.method.pi import validation_gradient


def problem(kind: str, seed: int = 0):
    torch.manual_seed(seed)
    if kind == "cnn-bn":
        model = TinyCNN(num_classes=4)
        return model, torch.randn(6, 3, 8, 8), torch.randint(0, 4, (6,)), torch.randn(10, 3, 8, 8), torch.randint(0, 4, (10,))
    model = tiny_mlp(5, 3)
    return model, torch.randn(7, 5), torch.randint(0, 3, (7,)), torch.randn(9, 5), torch.randint(0, 3, (9,))


@pytest.mark.parametrize("kind", ["cnn-bn", "mlp"])
def test_pi_matches_brute_force_autograd(kind):
    model, x, y, xv, yv = problem(kind)
    model.train()
    refined = refine(model, x, y, xv, yv, beta=0.0, tau=0.01, gumbel=False)
    grad = validation_gradient(model, CrossEntropy(), xv, yv)
    expected = brute_force_pi(model, x, grad)
    torch.testing.assert_close(refined.pi, expected, rtol=1e-4, atol=1e-6)
    assert expected.abs().max() > 1e-3  # the comparison is not between two zeros


def test_validation_gradient_matches_plain_backward():
    model, _, _, xv, yv = problem("cnn-bn")
    reference = copy.deepcopy(model)
    F.cross_entropy(reference(xv), yv).backward()
    grad = validation_gradient(model, CrossEntropy(), xv, yv)
    for (name, p) in reference.named_parameters():
        torch.testing.assert_close(grad[name], p.grad)


@pytest.mark.parametrize("mode", ["train", "eval"])
def test_refine_leaves_model_state_untouched(mode):
    model, x, y, xv, yv = problem("cnn-bn")
    model.train(mode == "train")
    before = copy.deepcopy(model.state_dict())
    refine(model, x, y, xv, yv, beta=0.0, tau=0.01)
    after = model.state_dict()
    assert before.keys() == after.keys()
    for key in before:
        assert torch.equal(before[key], after[key]), key
    assert model.training == (mode == "train")
    assert all(m.training == (mode == "train") for m in model.modules())
    assert all(p.grad is None for p in model.parameters())


class CountingLayer(torch.nn.Module):
    """A buffer changed in place by every forward: the kind BatchNorm's freezing does not cover."""

    def __init__(self):
        super().__init__()
        self.register_buffer("calls", torch.zeros(()))

    def forward(self, x):
        self.calls += 1
        return x


def test_every_buffer_is_left_alone_and_batchnorm_keeps_tracking():
    model, x, y, xv, yv = problem("cnn-bn")
    model = torch.nn.Sequential(CountingLayer(), model).train()
    before = copy.deepcopy(model.state_dict())
    refined = refine(model, x, y, xv, yv, beta=0.0, tau=0.01, gumbel=False)
    for key, value in model.state_dict().items():
        assert torch.equal(before[key], value), key
    norms = [m for m in model.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    assert norms and all(m.track_running_stats for m in norms)
    expected = brute_force_pi(model[1], x, validation_gradient(model[1], CrossEntropy(), xv, yv))
    torch.testing.assert_close(refined.pi, expected, rtol=1e-4, atol=1e-6)
    model(x)  # the model's own forward still updates its statistics and its counter
    assert model[0].calls == 1
    assert not torch.equal(before["1.body.1.running_mean"], model.state_dict()["1.body.1.running_mean"])


def test_small_tau_gives_one_hot_at_argmax_of_pi_plus_beta_label():
    torch.manual_seed(1)
    pi, upstream = torch.randn(50, 6), F.one_hot(torch.randint(0, 6, (50,)), 6).float()
    for beta in (0.0, 0.7):
        labels, _ = extrapolate(pi, upstream, beta=beta, tau=1e-4, gumbel=False)
        expected = F.one_hot((pi + beta * upstream).argmax(1), 6).float()
        torch.testing.assert_close(labels, expected)


@pytest.mark.parametrize("kind", ["cnn-bn", "mlp"])
def test_theorem_1_limit_keeps_every_sample(kind):
    """sum_k p_k Pi_k = 0 for log-probabilities, so max_k Pi_k >= 0: without noise and bonus, all are kept."""
    model, x, y, xv, yv = problem(kind)
    refined = refine(model, x, y, xv, yv, beta=0.0, tau=1e-4, gumbel=False)
    probs = torch.softmax(model(x), dim=1)
    torch.testing.assert_close((probs * refined.pi).sum(1), torch.zeros(len(x)), atol=1e-5, rtol=0)
    assert (refined.weights > 0).all()


def test_large_beta_keeps_the_upstream_label():
    torch.manual_seed(2)
    pi, ids = torch.randn(40, 5), torch.randint(0, 5, (40,))
    labels, _ = extrapolate(pi, F.one_hot(ids, 5).float(), beta=1e3, tau=0.01, gumbel=True,
                            generator=torch.Generator().manual_seed(0))
    assert torch.equal(labels.argmax(1), ids)


def test_weight_rule_and_renormalisation():
    pi = torch.tensor([[1.0, -1.0], [-2.0, 0.5], [-1.0, -3.0], [0.0, 0.0]])
    # Force the labels with a huge beta so <pi, y> is known: rows 0, 3 keep (>= 0), rows 1, 2 don't.
    upstream = torch.tensor([[1.0, 0.0], [1.0, 0.0], [0.0, 1.0], [0.0, 1.0]])
    labels, weights = extrapolate(pi, upstream, beta=1e3, tau=0.01, gumbel=False)
    torch.testing.assert_close(weights, torch.tensor([0.5, 0.0, 0.0, 0.5]))
    assert torch.equal(labels.argmax(1), upstream.argmax(1))


def test_all_rejected_stays_all_zero():
    pi = -torch.ones(3, 2)
    _, weights = extrapolate(pi, torch.eye(2)[[0, 1, 0]], beta=0.0, tau=0.01, gumbel=False)
    assert torch.equal(weights, torch.zeros(3))


def test_soft_upstream_rows_are_accepted():
    model, x, _, xv, yv = problem("mlp")
    soft = torch.softmax(torch.randn(len(x), 3), 1)
    refined = refine(model, x, soft, xv, yv, beta=1e3, tau=0.01, gumbel=False)
    assert torch.equal(refined.labels.argmax(1), soft.argmax(1))
    torch.testing.assert_close(refined.labels.sum(1), torch.ones(len(x)))


def _val_loss_after_step(model, x_aug, labels, weights, xv, yv, lr=1e-3):
    stepped = copy.deepcopy(model)
    loss = (weights * -(labels * F.log_softmax(stepped(x_aug), 1)).sum(1)).sum()
    grads = torch.autograd.grad(loss, list(stepped.parameters()))
    with torch.no_grad():
        for p, g in zip(stepped.parameters(), grads):
            p -= lr * g
        return F.cross_entropy(stepped(xv), yv).item()


@pytest.mark.parametrize("batchnorm", [False, True])
def test_first_order_property_over_random_problems(batchnorm):
    """Refined step lowers the val loss at least as much as the unrefined one (Theorem 1)."""
    wins, trials = 0, 200
    for trial in range(trials):
        torch.manual_seed(trial)
        model = tiny_mlp(5, 3, batchnorm=batchnorm).train()
        x, y = torch.randn(16, 5), torch.randint(0, 3, (16,))
        xv, yv = torch.randn(32, 5), torch.randint(0, 3, (32,))
        refined = refine(model, x, y, xv, yv, beta=0.0, tau=1e-4, gumbel=False)
        uniform = torch.full((16,), 1 / 16)
        refined_loss = _val_loss_after_step(model, x, refined.labels, refined.weights, xv, yv)
        upstream_loss = _val_loss_after_step(model, x, F.one_hot(y, 3).float(), uniform, xv, yv)
        wins += refined_loss <= upstream_loss + 1e-9
    assert wins >= 0.95 * trials, f"{wins}/{trials}"


def test_same_seed_same_result_and_different_seed_different_noise():
    model, x, y, xv, yv = problem("mlp")
    runs = [refine(model, x, y, xv, yv, beta=0.0, tau=1.0, generator=torch.Generator().manual_seed(s))
            for s in (3, 3, 4)]
    assert torch.equal(runs[0].labels, runs[1].labels) and torch.equal(runs[0].weights, runs[1].weights)
    assert not torch.equal(runs[0].labels, runs[2].labels)


@pytest.mark.parametrize("kind", ["cnn-bn", "mlp"])
def test_permuting_the_batch_permutes_the_result(kind):
    model, x, y, xv, yv = problem(kind)
    model.train()
    perm = torch.randperm(len(x))
    base = refine(model, x, y, xv, yv, beta=0.3, tau=0.01, gumbel=False)
    permuted = refine(model, x[perm], y[perm], xv, yv, beta=0.3, tau=0.01, gumbel=False)
    torch.testing.assert_close(permuted.pi, base.pi[perm], rtol=1e-4, atol=1e-6)
    torch.testing.assert_close(permuted.labels, base.labels[perm])
    torch.testing.assert_close(permuted.weights, base.weights[perm])


def test_without_batchnorm_a_sample_does_not_depend_on_its_batch():
    model, x, y, xv, yv = problem("mlp")
    whole = refine(model, x, y, xv, yv, beta=0.0, tau=0.01, gumbel=False)
    for i in range(len(x)):
        alone = refine(model, x[i:i + 1], y[i:i + 1], xv, yv, beta=0.0, tau=0.01, gumbel=False)
        torch.testing.assert_close(alone.pi[0], whole.pi[i], rtol=1e-4, atol=1e-6)
        torch.testing.assert_close(alone.labels[0], whole.labels[i])


def test_saflex_loss_is_clean_mean_plus_weighted_soft_ce():
    model, x, y, xv, yv = problem("mlp")
    x_aug = torch.randn(5, 5)
    refined = refine(model, x_aug, torch.randint(0, 3, (5,)), xv, yv, beta=0.0, tau=0.5,
                     generator=torch.Generator().manual_seed(0))
    loss = saflex_loss(model, x, y, x_aug, refined)
    expected = F.cross_entropy(model(x), y) + sum(
        refined.weights[i] * -(refined.labels[i] * F.log_softmax(model(x_aug[i:i + 1]), 1)[0]).sum()
        for i in range(5))
    torch.testing.assert_close(loss, expected)


def test_stats_describe_the_batch():
    model, x, y, xv, yv = problem("mlp")
    refined = refine(model, x, y, xv, yv, beta=0.0, tau=1e-4, gumbel=False)
    assert float(refined.stats["kept_fraction"]) == pytest.approx((refined.weights > 0).float().mean().item())
    changed = (refined.labels.argmax(1) != y).float().mean().item()
    assert float(refined.stats["changed_fraction"]) == pytest.approx(changed)
    assert float(refined.stats["label_entropy"]) < 1e-3  # tau -> 0: one-hot rows
