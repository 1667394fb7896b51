"""The methods beside SAflex (refiners.py): learning-to-reweight against a brute-force virtual step
and against SAflex's sign rule, and every method through one step of the real trainer."""
from __future__ import annotations

import copy

import pytest
import torch
import torch.nn.functional as F
from conftest import TinyCNN, tiny_mlp
from torch.func import functional_call

from saflex_cli.augment.base import AugBatch
from saflex_cli.config import REFINE_READS, RunConfig
from saflex_cli.data.splits import Split, Splits
from saflex_cli.families.base import tensor_setup
from saflex_cli.method.core import refine
from saflex_cli.method.objectives import CrossEntropy
from saflex_cli.method.refiners import LearningToReweight, reweighting_gradient, reweighting_weights
from saflex_cli.registry import REFINERS
from saflex_cli.training.trainer import EpochStats, Trainer


def test_the_registry_and_the_identity_table_name_the_same_methods():
    assert set(REFINERS.names()) == set(REFINE_READS)


def problem(seed=0, soft=False):
    """A BatchNorm MLP in float64 (so that finite differences are exact to ~1e-9), a clean batch,
    an augmented batch with one-hot or soft labels, a validation batch."""
    torch.manual_seed(seed)
    model = tiny_mlp(5, 3, batchnorm=True).double().train()
    labels = torch.softmax(3 * torch.randn(6, 3), 1) if soft else F.one_hot(torch.randint(0, 3, (6,)), 3).float()
    return (model, torch.randn(4, 5).double(), torch.randn(6, 5).double(), labels.double(),
            torch.randn(10, 5).double(), torch.randint(0, 3, (10,)))


def validation_loss_after_step(model, eps, x_aug, labels, x_val, y_val, x_clean=None):
    """L_val(theta - grad_theta sum_i eps_i l_i(theta)), written out: the virtual step of Ren et al."""
    model = copy.deepcopy(model)  # BatchNorm's running statistics move on each forward
    params = dict(model.named_parameters())
    inputs = x_aug if x_clean is None else torch.cat([x_clean, x_aug])
    logits = model(inputs)[len(inputs) - len(x_aug):]
    weighted = (eps * -(labels * F.log_softmax(logits, 1)).sum(1)).sum()
    grads = torch.autograd.grad(weighted, list(params.values()))
    moved = {name: p - g for (name, p), g in zip(params.items(), grads)}
    return F.cross_entropy(functional_call(model, moved, (x_val,)), y_val).item()


def finite_difference_gradient(model, x_aug, labels, x_val, y_val, x_clean=None, h=1e-5):
    out = []
    for i in range(len(x_aug)):
        step = torch.zeros(len(x_aug), dtype=torch.float64)
        step[i] = h
        up, down = (validation_loss_after_step(model, s, x_aug, labels, x_val, y_val, x_clean) for s in (step, -step))
        out.append((up - down) / (2 * h))
    return torch.tensor(out, dtype=torch.float64)


@pytest.mark.parametrize("with_clean_batch", [False, True])
def test_reweighting_gradient_and_weights_match_finite_differences_of_the_virtual_step(with_clean_batch):
    model, x_clean, x_aug, labels, xv, yv = problem()
    clean = x_clean if with_clean_batch else None
    expected = finite_difference_gradient(model, x_aug, labels, xv, yv, clean)
    gradient = reweighting_gradient(model, CrossEntropy(), x_aug, labels, xv, yv, clean)
    torch.testing.assert_close(gradient.double(), expected, rtol=1e-4, atol=1e-8)
    raw = (-expected).clamp_min(0)
    torch.testing.assert_close(reweighting_weights(gradient).double(), raw / raw.sum(), rtol=1e-4, atol=1e-8)
    assert 0 < (raw > 0).sum() < len(raw)  # some samples kept, some dropped
    other = finite_difference_gradient(model, x_aug, labels, xv, yv, None if with_clean_batch else x_clean)
    assert (other - expected).abs().max() > 1e-3  # BatchNorm: which forward the step takes matters


def test_all_rejected_stays_all_zero():
    assert torch.equal(reweighting_weights(torch.tensor([0.5, 2.0, 0.0])), torch.zeros(3))


@pytest.mark.parametrize("soft", [False, True])
def test_reweighting_weights_are_saflex_with_frozen_labels_up_to_magnitude(soft):
    """At eps = 0 the virtual step is theta: d L_val / d eps_i = -<Pi_i, y_i>, so the kept samples
    are exactly those SAflex keeps at beta = inf, each weighted by <Pi_i, y_i>."""
    model, x_clean, x_aug, labels, xv, yv = problem(seed=1, soft=soft)
    _, weights, _ = LearningToReweight(CrossEntropy(), mode=None).decide(model, x_clean, AugBatch(x_aug, labels),
                                                                         iter([(xv, yv)]))
    saflex = refine(model, x_aug, labels, xv, yv, beta=float("inf"), tau=0.01, x_clean=x_clean)
    assert torch.equal(weights > 0, saflex.weights > 0) and 0 < (weights > 0).sum() < len(weights)
    alignment = (saflex.pi * labels).sum(1).clamp_min(0)
    torch.testing.assert_close(weights.double(), alignment / alignment.sum(), rtol=1e-4, atol=1e-8)


class TinyAttention(torch.nn.Module):
    """One head of scaled dot-product attention: the CPU picks a fused kernel without a double backward."""

    def __init__(self):
        super().__init__()
        self.embed, self.head = torch.nn.Linear(4, 8), torch.nn.Linear(8, 3)

    def forward(self, x):
        tokens = self.embed(x)
        return self.head(F.scaled_dot_product_attention(tokens, tokens, tokens).mean(1))


def test_reweighting_differentiates_attention_twice():
    torch.manual_seed(0)
    model, x_aug, xv = TinyAttention(), torch.randn(6, 5, 4), torch.randn(8, 5, 4)
    labels, yv = F.one_hot(torch.randint(0, 3, (6,)), 3).float(), torch.randint(0, 3, (8,))
    gradient = reweighting_gradient(model, CrossEntropy(), x_aug, labels, xv, yv)
    pi = refine(model, x_aug, labels, xv, yv, beta=float("inf"), tau=0.01).pi
    torch.testing.assert_close(gradient, -(pi * labels).sum(1), rtol=1e-4, atol=1e-7)


class ImageCNN(TinyCNN):
    """TinyCNN on uint8-range images, as the image backbones take them."""

    def forward(self, x):
        return super().forward(x.float() / 255.0)


def vectors(count, gen):
    return Split(torch.randn(count, 5, generator=gen), torch.randint(0, 3, (count,), generator=gen))


def pictures(count, gen):
    return Split(torch.randint(0, 256, (count, 3, 8, 8), generator=gen, dtype=torch.uint8),
                 torch.randint(0, 3, (count,), generator=gen))


def one_step(refine_name: str, aug: str = "label-shift", train_mode: str = "union", monkeypatch=None):
    """One trainer step: (its loss, the loss recomputed from what the refiner decided, the decision,
    the epoch's statistics, whether the parameters moved)."""
    torch.manual_seed(0)
    gen = torch.Generator().manual_seed(0)
    make, model = (pictures, ImageCNN(num_classes=3)) if aug == "crop" else (vectors, tiny_mlp(5, 3))
    config = RunConfig(family="demo", dataset="x", model="m", aug=aug, refine=refine_name, epochs=1, batch_size=8,
                       train_mode=train_mode)
    splits = Splits(make(32, gen), make(24, gen), make(8, gen), num_classes=3, task="multi-class")
    trainer = Trainer(tensor_setup(config, splits, model, torch.device("cpu"), metrics=("acc",)), config,
                      torch.device("cpu"))
    seen = {}
    accumulate = trainer._accumulate
    monkeypatch.setattr(trainer, "_accumulate", lambda stats, refined, aug: (
        seen.update(refined=refined, aug=aug), accumulate(stats, refined, aug)))
    before = copy.deepcopy(trainer.model)
    inputs, targets = next(iter(trainer.setup.train_batches))
    stats = EpochStats()
    loss = trainer.train_step(inputs, targets, stats)
    refined, augmented = seen["refined"], seen["aug"]
    clean = (inputs, targets) if train_mode == "union" else (None, None)
    expected = CrossEntropy().training_loss(before.train(), *clean, augmented.inputs, refined.labels, refined.weights)
    moved = any(not torch.equal(a, b) for a, b in zip(before.parameters(), trainer.model.parameters()))
    return loss.detach(), expected.detach(), refined, augmented, stats.summary(1), moved


@pytest.mark.parametrize("train_mode", ["union", "replace"])
@pytest.mark.parametrize("refine_name, aug", [("l2rw", "label-shift"), ("soft-aug", "crop")])
def test_methods_beside_saflex_take_a_trainer_step_in_both_train_modes(refine_name, aug, train_mode, monkeypatch):
    loss, expected, refined, augmented, summary, moved = one_step(refine_name, aug, train_mode, monkeypatch)
    torch.testing.assert_close(loss, expected)
    assert moved and torch.isfinite(loss)
    if refine_name == "l2rw":
        assert torch.equal(refined.labels, augmented.labels)  # upstream labels, reweighted
        assert refined.weights.sum().item() == pytest.approx(1.0) and 0 < summary["kept_fraction"] < 1
    else:
        assert (refined.labels.max(1).values < 1).any()  # targets softened by the crop
        assert summary["visible_fraction"] == pytest.approx(augmented.meta["visible_fraction"].mean().item())


@pytest.mark.parametrize("variant", ["saflex-weights", "saflex-labels"])
def test_each_ablation_takes_a_trainer_step_and_records_saflexs_decisions(variant, monkeypatch):
    loss, expected, refined, augmented, summary, moved = one_step(variant, monkeypatch=monkeypatch)
    torch.testing.assert_close(loss, expected)
    assert moved and {"kept_fraction", "changed_fraction", "label_entropy", "pi_margin"} <= summary.keys()
    assert summary["changed_fraction"] > 0 and summary["kept_fraction"] < 1  # SAflex relabelled and dropped some
    if variant == "saflex-weights":
        assert torch.equal(refined.labels, augmented.labels)
        kept = refined.weights > 0
        assert 0 < kept.sum() < len(kept) and torch.allclose(refined.weights[kept], 1 / kept.sum().float())
    else:
        assert not torch.equal(refined.labels, augmented.labels)
        torch.testing.assert_close(refined.weights, torch.full((8,), 1 / 8))
