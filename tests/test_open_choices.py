"""SAflex's open choices (docs/method.md, 'Open choices'): each against brute-force autograd or a
case whose answer is known."""
from __future__ import annotations

import copy
import dataclasses

import pytest
import torch
import torch.nn.functional as F
from conftest import TinyCNN, tiny_mlp

from saflex_cli.augment.base import AugBatch
from saflex_cli.config import RunConfig
from saflex_cli.data.splits import Split, Splits
from saflex_cli.families.base import tensor_setup
from saflex_cli.method.core import SaflexStep, extrapolate, refine, refinement_stats
from saflex_cli.method.directions import output_bias_name, rms_normalised
from saflex_cli.method.objectives import CrossEntropy
from saflex_cli.method.pi import network_mode, validation_gradient
from saflex_cli.training.trainer import EpochStats, Trainer


def brute_force_pi(model, x_aug, direction, x_clean=None):
    """-<grad_theta log p_k(x_aug_i), direction>, one backward per entry, through the union's
    forward when x_clean is given (BatchNorm in training mode then normalises with the union)."""
    model = copy.deepcopy(model)
    params = dict(model.named_parameters())
    inputs = x_aug if x_clean is None else torch.cat([x_clean, x_aug])
    log_probs = F.log_softmax(model(inputs), dim=1)[0 if x_clean is None else len(x_clean):]
    pi = torch.zeros_like(log_probs)
    for i in range(log_probs.shape[0]):
        for k in range(log_probs.shape[1]):
            grads = torch.autograd.grad(log_probs[i, k], list(params.values()), retain_graph=True)
            pi[i, k] = -sum((g * direction[name]).sum() for name, g in zip(params, grads))
    return pi.detach()


def cnn_problem(seed=0):
    torch.manual_seed(seed)
    return (TinyCNN(num_classes=4).train(), torch.randn(6, 3, 8, 8), torch.randn(5, 3, 8, 8),
            torch.randint(0, 4, (5,)), torch.randn(10, 3, 8, 8), torch.randint(0, 4, (10,)))


@pytest.mark.parametrize("mode", ["train", "eval"])
def test_exact_pi_through_the_union_matches_brute_force_in_both_network_modes(mode):
    model, x_clean, x_aug, y_aug, xv, yv = cnn_problem()
    with network_mode(model, mode):
        grad = validation_gradient(model, CrossEntropy(), xv, yv)
        expected = brute_force_pi(model, x_aug, grad, x_clean)
    union = refine(model, x_aug, y_aug, xv, yv, beta=0.0, tau=0.01, gumbel=False, x_clean=x_clean, mode=mode)
    alone = refine(model, x_aug, y_aug, xv, yv, beta=0.0, tau=0.01, gumbel=False, mode=mode)
    torch.testing.assert_close(union.pi, expected, rtol=1e-4, atol=1e-6)
    assert expected.abs().max() > 1e-3 and model.training  # the model's own mode is restored
    if mode == "train":  # BatchNorm couples the batch: the forward Pi is taken through matters
        assert (union.pi - alone.pi).abs().max() > 1e-3
    else:  # running statistics: a sample no longer depends on its batch-mates
        torch.testing.assert_close(union.pi, alone.pi, rtol=1e-4, atol=1e-6)


class DropoutNet(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.body = torch.nn.Sequential(torch.nn.Linear(5, 32), torch.nn.Tanh(), torch.nn.Dropout(0.5))
        self.head = torch.nn.Linear(32, 3)

    def forward(self, x):
        return self.head(self.body(x))


def test_eval_mode_turns_dropout_off_in_the_validation_pass_and_the_jvp():
    torch.manual_seed(0)
    model = DropoutNet().train()
    x, y, xv, yv = torch.randn(6, 5), torch.randint(0, 3, (6,)), torch.randn(8, 5), torch.randint(0, 3, (8,))
    evals = [refine(model, x, y, xv, yv, beta=0.0, tau=0.01, gumbel=False, mode="eval").pi for _ in range(2)]
    trains = [refine(model, x, y, xv, yv, beta=0.0, tau=0.01, gumbel=False, mode="train").pi for _ in range(2)]
    torch.testing.assert_close(evals[0], evals[1])
    assert (trains[0] - trains[1]).abs().max() > 1e-4  # dropout masks drawn anew
    reference = copy.deepcopy(model).eval()
    expected = brute_force_pi(reference, x, validation_gradient(reference, CrossEntropy(), xv, yv))
    torch.testing.assert_close(evals[0], expected, rtol=1e-4, atol=1e-6)
    assert model.training and all(m.training for m in model.modules())


def adam_with_state(model, steps=3):
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    for _ in range(steps):
        optimizer.zero_grad()
        F.cross_entropy(model(torch.randn(16, 5)), torch.randint(0, 3, (16,))).backward()
        optimizer.step()
    optimizer.zero_grad(set_to_none=True)
    return optimizer


def test_pi_along_adams_preconditioned_step_matches_a_brute_force_directional_derivative():
    torch.manual_seed(1)
    model = tiny_mlp(5, 3).train()
    optimizer = adam_with_state(model)
    x, y, xv, yv = torch.randn(6, 5), torch.randint(0, 3, (6,)), torch.randn(8, 5), torch.randint(0, 3, (8,))
    grad = validation_gradient(model, CrossEntropy(), xv, yv)
    beta2, eps = optimizer.defaults["betas"][1], optimizer.defaults["eps"]
    direction = {}
    for name, p in model.named_parameters():
        state = optimizer.state[p]
        v_hat = state["exp_avg_sq"] / (1 - beta2 ** float(state["step"]))
        direction[name] = grad[name] / (v_hat.sqrt() + eps)
    refined = refine(model, x, y, xv, yv, beta=0.0, tau=0.01, gumbel=False, optimizer=optimizer)
    torch.testing.assert_close(refined.pi, brute_force_pi(model, x, direction), rtol=1e-4, atol=1e-6)
    plain = refine(model, x, y, xv, yv, beta=0.0, tau=0.01, gumbel=False)
    assert (refined.pi / refined.pi.abs().max() - plain.pi / plain.pi.abs().max()).abs().max() > 1e-2
    # Before Adam's first step, and for SGD, the step of a sample's gradient is -g itself.
    fresh = refine(model, x, y, xv, yv, beta=0.0, tau=0.01, gumbel=False, optimizer=torch.optim.Adam(model.parameters()))
    torch.testing.assert_close(fresh.pi, plain.pi)


def test_pi_without_the_output_bias_leaves_its_share_out():
    model, x_clean, x_aug, y_aug, xv, yv = cnn_problem(2)
    assert output_bias_name(model) == "head.bias" and output_bias_name(tiny_mlp(5, 3)) == "2.bias"
    grad = validation_gradient(model, CrossEntropy(), xv, yv)
    direction = {**grad, "head.bias": torch.zeros_like(grad["head.bias"])}
    refined = refine(model, x_aug, y_aug, xv, yv, beta=0.0, tau=0.01, gumbel=False, pi_params="no-output-bias")
    torch.testing.assert_close(refined.pi, brute_force_pi(model, x_aug, direction), rtol=1e-4, atol=1e-6)
    full = refine(model, x_aug, y_aug, xv, yv, beta=0.0, tau=0.01, gumbel=False)
    assert (full.pi - refined.pi).abs().max() > 1e-4


def test_rms_scale_makes_pi_unit_rms_and_keeps_every_decision_of_the_sign_rule():
    pi = torch.randn(12, 4) * 37.0
    scaled = rms_normalised(pi)
    centred = scaled - scaled.mean(1, keepdim=True)
    assert centred.pow(2).mean().sqrt().item() == pytest.approx(1.0, rel=1e-5)
    torch.testing.assert_close(scaled * (pi / scaled)[0, 0], pi)  # one positive factor
    upstream = F.one_hot(torch.randint(0, 4, (12,)), 4).float()
    weights = [extrapolate(p, upstream, beta=float("inf"), tau=0.01)[1] for p in (pi, scaled)]
    torch.testing.assert_close(weights[0], weights[1])
    assert torch.equal(rms_normalised(torch.zeros(3, 2)), torch.zeros(3, 2))


def test_labels_frozen_keep_soft_upstream_rows_and_weigh_by_the_sign_rule():
    pi = torch.tensor([[1.0, -1.0], [-2.0, 1.0], [0.5, 0.5]])
    soft = torch.tensor([[0.7, 0.3], [0.9, 0.1], [0.5, 0.5]])
    generator = torch.Generator().manual_seed(0)
    labels, weights = extrapolate(pi, soft, beta=float("inf"), tau=0.01, gumbel=True, generator=generator)
    assert torch.equal(labels, soft)
    torch.testing.assert_close(weights, torch.tensor([0.5, 0.0, 0.5]))  # <pi, y>: 0.4, -1.7, 0.5
    assert torch.equal(generator.get_state(), torch.Generator().manual_seed(0).get_state())  # no noise drawn


def test_each_diagnostic_on_a_constructed_batch():
    pi = torch.tensor([[3.0, 0.0, 0.0], [0.0, 2.0, 1.0], [0.0, 0.0, 1.0], [5.0, 1.0, 0.0]])
    upstream = F.one_hot(torch.tensor([0, 0, 2, 1]), 3).float()
    labels = F.one_hot(torch.tensor([0, 2, 2, 0]), 3).float()  # sample 1: noise moved argmax 1 -> 2
    weights = torch.tensor([0.25, 0.25, 0.25, 0.25])
    log_probs = torch.log_softmax(torch.tensor([[5.0, 0, 0], [0, 0, 5.0], [5.0, 0, 0], [0, 5.0, 0]]), 1)
    plain = (pi + 0.0 * upstream).argmax(1)
    stats = {k: float(v) for k, v in refinement_stats(pi, upstream, labels, weights, log_probs, plain).items()}
    assert stats["changed_fraction"] == 0.5 and stats["agree_upstream_fraction"] == 0.5  # samples 1 and 3 changed
    assert stats["top_label_share"] == 0.5  # classes 0, 2, 2, 0
    assert stats["gumbel_flip_fraction"] == 0.25  # sample 1
    assert stats["agree_prediction_fraction"] == 0.5  # predictions 0, 2, 0, 1
    assert (stats["correct_count"], stats["correct_relabelled_count"]) == (2.0, 1.0)  # samples 0 and 3; 3 relabelled
    assert stats["pi_margin"] == pytest.approx((3 + 1 + 1 + 4) / 4)


class Recorder(torch.nn.Module):
    """A model that remembers the batch sizes of its forwards."""

    def __init__(self, model):
        super().__init__()
        self.inner, self.sizes = model, []

    def forward(self, x):
        self.sizes.append(len(x))
        return self.inner(x)


def splits(n=48, features=5, classes=3, seed=0) -> Splits:
    gen = torch.Generator().manual_seed(seed)
    part = lambda count: Split(torch.randn(count, features, generator=gen), torch.randint(0, classes, (count,), generator=gen))  # noqa: E731
    return Splits(part(n), part(40), part(16), num_classes=classes, task="multi-class")


def demo_config(**changes) -> RunConfig:
    return RunConfig(family="demo", dataset="x", model="mlp", aug="label-shift", epochs=1, batch_size=8,
                     eval_batch_size=64, **changes)


@pytest.mark.parametrize("refine_name", ["none", "saflex"])
def test_replace_trains_on_the_augmented_batch_alone(refine_name):
    sizes = {}
    for mode in ("union", "replace"):
        torch.manual_seed(0)
        config = demo_config(refine=refine_name, train_mode=mode)
        model = Recorder(tiny_mlp(5, 3))
        trainer = Trainer(tensor_setup(config, splits(), model, torch.device("cpu"), metrics=("acc",)), config,
                          torch.device("cpu"))
        inputs, targets = next(iter(trainer.setup.train_batches))
        model.sizes.clear()
        trainer.train_step(inputs, targets, EpochStats())
        sizes[mode] = model.sizes[-1]  # the training forward comes last (after any SAflex pass)
    assert (sizes["union"], sizes["replace"]) == (16, 8)


def test_replace_loss_is_the_weighted_loss_of_the_augmented_batch():
    torch.manual_seed(0)
    model = tiny_mlp(5, 3)
    x_aug, labels = torch.randn(4, 5), torch.softmax(torch.randn(4, 3), 1)
    weights = torch.tensor([0.5, 0.0, 0.25, 0.25])
    loss = CrossEntropy().training_loss(model, None, None, x_aug, labels, weights)
    expected = (weights * -(labels * F.log_softmax(model(x_aug), 1)).sum(1)).sum()
    torch.testing.assert_close(loss, expected)


def test_selection_holdout_and_full_validation_split_the_validation_rows():
    config = demo_config(refine="saflex", selection_holdout=0.25,
                         saflex=dataclasses.replace(RunConfig(family="demo", dataset="x", model="m").saflex, val_data="full"))
    data = splits()
    setup = tensor_setup(config, data, tiny_mlp(5, 3), torch.device("cpu"), metrics=("acc",))
    x_saflex, _ = next(setup.val_batches)
    x_select = setup.evaluate.splits["val"].inputs
    assert (len(x_saflex), len(x_select)) == (30, 10)  # 40 validation rows: 25% held for selection
    rows = {tuple(r.tolist()) for r in data.val.inputs}
    assert {tuple(r.tolist()) for r in x_saflex} | {tuple(r.tolist()) for r in x_select} == rows
    assert not {tuple(r.tolist()) for r in x_saflex} & {tuple(r.tolist()) for r in x_select}
    assert torch.equal(next(setup.val_batches)[0], x_saflex)  # the whole (SAflex) split, every step
    assert setup.provenance["validation"] == {"saflex_rows": 30, "selection_rows": 10, "shared": False}


def first_order_change(model, loss, grad) -> float:
    """d/dalpha L_val(theta - alpha * grad_theta loss) at alpha = 0, i.e. -<g, grad loss>."""
    grads = torch.autograd.grad(loss, list(model.parameters()))
    return -sum((a * grad[name]).sum() for (name, _), a in zip(model.named_parameters(), grads)).item()


def test_first_order_property_holds_exactly_for_the_trainers_own_step_with_batchnorm():
    """The step the trainer takes (clean + augmented union, BatchNorm in training mode): SAflex's
    labels and weights lower the validation loss at least as much as the upstream's to first order,
    in every problem, because Pi is taken through the forward the step differentiates."""
    violations = 0
    for trial in range(200):
        torch.manual_seed(trial)
        model = tiny_mlp(5, 3, batchnorm=True).train()
        x, y = torch.randn(8, 5), torch.randint(0, 3, (8,))
        x_aug, y_aug = torch.randn(8, 5), F.one_hot(torch.randint(0, 3, (8,)), 3).float()
        xv, yv = torch.randn(32, 5), torch.randint(0, 3, (32,))
        grad = validation_gradient(model, CrossEntropy(), xv, yv)
        step = SaflexStep(beta=0.0, tau=1e-4, gumbel=False)
        refined = step.training_loss(model, x, y, x_aug, y_aug, iter([(xv, yv)]))[0]
        upstream = CrossEntropy().training_loss(model, x, y, x_aug, y_aug, torch.full((8,), 1 / 8))
        violations += first_order_change(model, refined, grad) > first_order_change(model, upstream, grad) + 1e-7
    assert violations == 0


def test_ablations_keep_one_half_of_saflex():
    model, _, x_aug, y_aug, xv, yv = cnn_problem(3)
    upstream = F.one_hot(y_aug, 4).float()
    decided = {}
    for variant in ("saflex", "saflex-weights", "saflex-labels"):
        step = SaflexStep(beta=0.0, tau=0.01, gumbel=False, variant=variant, pi_forward="augmented")
        _, decided[variant] = step.training_loss(model, None, None, x_aug, upstream, iter([(xv, yv)]))
    full, weights_only, labels_only = decided["saflex"], decided["saflex-weights"], decided["saflex-labels"]
    assert torch.equal(weights_only.weights, full.weights) and torch.equal(weights_only.labels, upstream)
    assert torch.equal(labels_only.labels, full.labels)
    torch.testing.assert_close(labels_only.weights, torch.full((5,), 1 / 5))
    assert weights_only.stats["changed_fraction"] == full.stats["changed_fraction"]  # SAflex's decisions, reported


def test_the_trainer_counts_agreement_with_the_true_label_where_the_augmenter_knows_it():
    config = demo_config(refine="saflex")
    trainer = Trainer(tensor_setup(config, splits(), tiny_mlp(5, 3), torch.device("cpu"), metrics=("acc",)), config,
                      torch.device("cpu"))
    stats = EpochStats()
    labels = F.one_hot(torch.tensor([0, 1, 2, 0]), 3).float()
    refined = type("R", (), {"stats": {}, "weights": torch.ones(4) / 4, "labels": labels})()
    trainer._accumulate(stats, refined, AugBatch(None, labels, {"true_labels": torch.tensor([0, 1, 0, 1])}))
    assert stats.summary(1)["agree_true_fraction"] == 0.5


def test_pi_from_the_training_forward_itself_equals_the_separate_pass():
    """One dual forward of the union serves as Pi's pass and as the training forward: the same Pi,
    the same gradient, and BatchNorm's running statistics updated once, as by a plain step."""
    model, x_clean, x_aug, y_aug, xv, yv = cnn_problem(4)
    upstream = F.one_hot(y_aug, 4).float()
    results = {}
    for share in (False, True):
        copy_ = copy.deepcopy(model)
        step = SaflexStep(beta=0.0, tau=0.01, gumbel=False, share_forward=share)
        loss, refined = step.training_loss(copy_, x_clean, torch.zeros(6, dtype=torch.long), x_aug, upstream,
                                           iter([(xv, yv)]))
        loss.backward()
        results[share] = (refined.pi, loss.detach(), [p.grad for p in copy_.parameters()],
                          copy_.body[1].running_mean.clone())
    torch.testing.assert_close(results[True][0], results[False][0], rtol=1e-5, atol=1e-7)
    torch.testing.assert_close(results[True][1], results[False][1])
    for shared_grad, separate_grad in zip(results[True][2], results[False][2]):
        torch.testing.assert_close(shared_grad, separate_grad, rtol=1e-5, atol=1e-7)
    torch.testing.assert_close(results[True][3], results[False][3])
    plain = copy.deepcopy(model)
    plain(torch.cat([x_clean, x_aug]))
    torch.testing.assert_close(results[True][3], plain.body[1].running_mean)
