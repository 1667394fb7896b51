"""The contrastive SAflex step (paper Appendix A, Eq. 13-14) against brute-force oracles."""
from __future__ import annotations

import copy

import open_clip
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from flyp_helpers import tiny_clip, tiny_tokens
from saflex_cli.method.core import refine
from saflex_cli.method.objectives import Contrastive, weighted_soft_cross_entropy

ANIMALS = ["cat", "dog", "zebra", "giraffe", "elephant", "impala", "cattle", "dik-dik"]


def paired_batch(count: int, seed: int, first_class: int = 0):
    """(uint8 images, tokens of `count` captions of distinct classes)."""
    gen = torch.Generator().manual_seed(seed)
    images = torch.randint(0, 256, (count, 3, 32, 32), generator=gen, dtype=torch.uint8)
    names = [ANIMALS[(first_class + i) % len(ANIMALS)] for i in range(count)]
    return images, tiny_tokens([f"a photo of a {n}." for n in names])


def brute_force_pi(model, objective, x_aug, x_val):
    """Pi_ik = <grad log p_k(x_i), -g>, one backward pass per (i, k)."""
    params = [p for p in model.parameters() if p.requires_grad]
    val_loss = objective.loss(objective.logits(model, x_val))
    g = torch.autograd.grad(val_loss, params, allow_unused=True)
    log_probs = F.log_softmax(objective.logits(model, x_aug), dim=1)
    pi = torch.zeros_like(log_probs)
    for i in range(log_probs.shape[0]):
        for k in range(log_probs.shape[1]):
            grads = torch.autograd.grad(log_probs[i, k], params, retain_graph=True, allow_unused=True)
            pi[i, k] = -sum((a * b).sum() for a, b in zip(grads, g) if a is not None and b is not None)
    return pi.detach()


@pytest.mark.parametrize("training", [True, False], ids=["train-mode", "eval-mode"])
def test_pi_matches_per_sample_autograd_on_tiny_clip(training):
    torch.manual_seed(0)
    model = tiny_clip(seed=1, dtype=torch.float64).train(training)
    objective = Contrastive()
    x_aug, x_val = paired_batch(3, seed=2), paired_batch(4, seed=3, first_class=2)
    refined = refine(model, x_aug, torch.eye(3), x_val, torch.arange(4), beta=0.0, tau=0.1, gumbel=False,
                     objective=objective)
    expected = brute_force_pi(model, objective, x_aug, x_val)
    assert refined.pi.shape == (3, 3)
    assert expected.abs().max() > 1e-3  # a real signal, not zeros on both sides
    torch.testing.assert_close(refined.pi.double(), expected, rtol=1e-4, atol=1e-6 * float(expected.abs().max()))


def test_refine_leaves_clip_parameters_mode_and_grads_untouched():
    model = tiny_clip(seed=4).train()
    before = copy.deepcopy(model.state_dict())
    x_aug, x_val = paired_batch(4, seed=5), paired_batch(4, seed=6, first_class=3)
    refine(model, x_aug, torch.eye(4), x_val, torch.arange(4), beta=0.0, tau=0.1,
           generator=torch.Generator().manual_seed(0), objective=Contrastive())
    assert model.training
    assert all(p.grad is None for p in model.parameters())
    after = model.state_dict()
    assert all(torch.equal(before[name], after[name]) for name in before)


class BatchNormDualEncoder(nn.Module):
    """A dual encoder with BatchNorm in its image tower: refine must not move its running stats."""

    def __init__(self):
        super().__init__()
        self.image = nn.Sequential(nn.Flatten(), nn.Linear(12, 8), nn.BatchNorm1d(8), nn.ReLU(), nn.Linear(8, 6))
        self.text = nn.Embedding(10, 6)
        self.logit_scale = nn.Parameter(torch.tensor(1.0))

    def forward(self, inputs):
        images, tokens = inputs
        return (F.normalize(self.image(images.float()), dim=-1), F.normalize(self.text(tokens), dim=-1),
                self.logit_scale.exp())


@pytest.mark.parametrize("training", [True, False])
def test_refine_leaves_batchnorm_statistics_and_mode_untouched(training):
    torch.manual_seed(0)
    model = BatchNormDualEncoder().train(training)
    before = copy.deepcopy(model.state_dict())
    x_aug = (torch.randn(5, 3, 4), torch.arange(5))
    x_val = (torch.randn(6, 3, 4), torch.arange(6) + 2)
    refined = refine(model, x_aug, torch.eye(5), x_val, torch.arange(6), beta=0.0, tau=0.1,
                     generator=torch.Generator().manual_seed(1), objective=Contrastive())
    assert refined.pi.abs().sum() > 0
    assert model.training == training
    assert all(torch.equal(before[n], model.state_dict()[n]) for n in before)  # running_mean/var, counters


def test_contrastive_loss_matches_open_clip_clip_loss():
    image = F.normalize(torch.randn(6, 5), dim=-1)
    text = F.normalize(torch.randn(6, 5), dim=-1)
    scale = torch.tensor(14.3)
    ours = Contrastive().loss(scale * image @ text.T)
    theirs = open_clip.ClipLoss()(image, text, scale)
    torch.testing.assert_close(ours, theirs)


def test_augmented_loss_without_saflex_is_the_clip_loss_of_the_augmented_batch():
    logits = 10 * torch.randn(5, 5)
    objective = Contrastive()
    uniform = torch.full((5,), 0.2)
    torch.testing.assert_close(objective.augmented_loss(logits, torch.eye(5), uniform), objective.loss(logits))


def test_a_rejected_augmented_image_leaves_the_loss_entirely():
    torch.manual_seed(0)
    image = F.normalize(torch.randn(5, 4), dim=-1).requires_grad_()
    text = F.normalize(torch.randn(5, 4), dim=-1)
    weights = torch.tensor([0.25, 0.25, 0.0, 0.25, 0.25])
    labels = torch.softmax(torch.randn(5, 5), dim=1)
    loss = Contrastive().augmented_loss(20 * image @ text.T, labels, weights)
    (grad,) = torch.autograd.grad(loss, image)
    assert torch.isfinite(loss)
    assert grad[2].abs().max() == 0  # neither an anchor nor a negative of any kept caption
    assert grad[[0, 1, 3, 4]].abs().max() > 0


def test_training_loss_encodes_shared_captions_once_with_the_same_value():
    model = tiny_clip(seed=7)
    images, tokens = paired_batch(4, seed=8)
    aug_images = images.flip(-1)
    labels = torch.softmax(torch.randn(4, 4), dim=1)
    weights = torch.tensor([0.5, 0.0, 0.25, 0.25])
    objective = Contrastive()
    shared = objective.training_loss(model, (images, tokens), None, (aug_images, tokens), labels, weights)
    copied = objective.training_loss(model, (images, tokens), None, (aug_images, tokens.clone()), labels, weights)
    separate = objective.loss(objective.logits(model, (images, tokens))) + objective.augmented_loss(
        objective.logits(model, (aug_images, tokens)), labels, weights)
    torch.testing.assert_close(shared, copied)
    torch.testing.assert_close(shared, separate)


def val_loss(model, objective, x_val) -> float:
    with torch.no_grad():
        return float(objective.loss(objective.logits(model, x_val)))


def sgd_step_on(model, objective, x_aug, labels, weights, lr: float):
    """One SGD step on Eq. 14's image->text term, the term Theorem 1 is about."""
    stepped = copy.deepcopy(model)
    loss = weighted_soft_cross_entropy(objective.logits(stepped, x_aug), labels, weights)
    grads = torch.autograd.grad(loss, list(stepped.parameters()), allow_unused=True)
    with torch.no_grad():
        for p, g in zip(stepped.parameters(), grads):
            if g is not None:
                p -= lr * g
    return stepped


def test_first_order_property_with_distinct_captions():
    """With the noise off and tau -> 0, a small step on the refined batch lowers the validation loss
    at least as much as a step on the upstream batch (uniform weights, own captions)."""
    objective, trials, wins, lr = Contrastive(), 20, 0, 1e-5
    for trial in range(trials):
        model = tiny_clip(seed=100 + trial).train()
        x_aug = paired_batch(6, seed=1000 + trial, first_class=trial)
        x_val = paired_batch(6, seed=2000 + trial, first_class=trial + 1)
        refined = refine(model, x_aug, torch.eye(6), x_val, torch.arange(6), beta=0.0, tau=1e-4, gumbel=False,
                         objective=objective)
        start = val_loss(model, objective, x_val)
        refined_drop = start - val_loss(sgd_step_on(model, objective, x_aug, refined.labels, refined.weights, lr),
                                        objective, x_val)
        upstream_drop = start - val_loss(sgd_step_on(model, objective, x_aug, torch.eye(6), torch.full((6,), 1 / 6), lr),
                                         objective, x_val)
        wins += refined_drop >= upstream_drop
    assert wins >= 0.95 * trials, f"{wins} of {trials}"
