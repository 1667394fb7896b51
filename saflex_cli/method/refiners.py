"""What a training step does with its augmented batch: one registry entry per method.

A refiner gives the step's loss (the clean batch's mean loss, if the step trains on it, plus a
weighted loss on the augmented batch) and what it decided (a core.Refined, for the run's
diagnostics; None when nothing is decided). Every method runs in the one trainer, so two rows of
a table differ only in their refiner:

- none: upstream labels, uniform weights (the upstream rows of the paper's tables);
- soft-aug: Soft Augmentation (Liu et al., CVPR 2023; paper Table 7), targets and weights from
  the visible fraction of a crop (augment/crop.py);
- saflex: SAflex (core.SaflexStep); saflex-weights / saflex-labels: its two halves alone;
- l2rw: learning-to-reweight (Ren et al., ICML 2018), upstream labels reweighted by one
  virtual SGD step, by reverse-mode AD.
"""
from __future__ import annotations

import contextlib
from typing import Callable

import torch
from torch import Tensor, nn
from torch.func import grad

from ..compute.distributed import sum_over_ranks
from ..config import RunConfig
from ..errors import SaflexError
from ..registry import REFINERS
from .core import Refined, SaflexStep
from .objectives import Objective, weighted_soft_cross_entropy
from .pi import differentiable_attention, functional_twin, network_mode, trainable_parameters, validation_gradient


class Upstream:
    """The upstream's own labels with uniform weights: standard augmented training.

    The other stateless methods change `decide` only: the labels and weights of the augmented
    batch, in the per-rank convention the loss takes (DDP averages the ranks' gradients).
    """

    def __init__(self, objective: Objective, autocast: Callable = contextlib.nullcontext):
        self.objective, self.autocast = objective, autocast

    def decide(self, model, inputs, aug, val_batches) -> tuple[Tensor, Tensor, Refined | None]:
        """(labels, weights, what was decided for the run's diagnostics, or None)."""
        return aug.labels, torch.full((len(aug.labels),), 1.0 / len(aug.labels), device=aug.labels.device), None

    def loss(self, model, inputs, targets, aug, val_batches, generator, train_model) -> tuple[Tensor, Refined | None]:
        labels, weights, refined = self.decide(model, inputs, aug, val_batches)
        with self.autocast():
            return self.objective.training_loss(train_model, inputs, targets, aug.inputs, labels, weights), refined

    def state_dict(self) -> dict:
        return {}

    def load_state_dict(self, state: dict) -> None:
        pass


class Saflex:
    """SAflex (or one of its ablations) through core.SaflexStep, whose state resumes with the run."""

    def __init__(self, step: SaflexStep):
        self.step = step

    def loss(self, model, inputs, targets, aug, val_batches, generator, train_model) -> tuple[Tensor, Refined]:
        return self.step.training_loss(model, inputs, targets, aug.inputs, aug.labels, val_batches, generator,
                                       train_model)

    def state_dict(self) -> dict:
        return self.step.state_dict()

    def load_state_dict(self, state: dict) -> None:
        self.step.load_state_dict(state)


SOFT_POWER = 2  # k of Soft Augmentation's published recipe (read_me.sh: --pcrop 2)


def soft_augmentation_targets(upstream: Tensor, visible: Tensor, power: float = SOFT_POWER) -> tuple[Tensor, Tensor]:
    """(targets, confidence p) with p = 1 - (1 - 1/N)(1 - v)^k (Liu et al. 2023): the upstream class
    gets p and every other class (1 - p)/(N - 1). Their code always starts from a class id; a soft
    upstream row here gets the mixture of those targets over its classes (the same for one-hot)."""
    classes = upstream.shape[1]
    confidence = 1.0 - (1.0 - 1.0 / classes) * (1.0 - visible.clamp(0.0, 1.0)) ** power
    others = (1.0 - confidence) / max(classes - 1, 1)
    return upstream * confidence[:, None] + (1.0 - upstream) * others[:, None], confidence


class SoftAugmentation(Upstream):
    """Soft Augmentation (Liu et al., CVPR 2023): targets softened by the visible fraction of a crop,
    each sample's loss weighted by its confidence p, as their `soft_target(..., reweight=True)`:
    the mean over the batch of p_i * loss_i, not renormalised (lr_correction off). Their KL to the
    soft target and the cross-entropy used here differ by the target's entropy, a constant."""

    def decide(self, model, inputs, aug, val_batches) -> tuple[Tensor, Tensor, Refined]:
        visible = aug.meta.get("visible_fraction")
        if visible is None:
            raise SaflexError("refine 'soft-aug' softens each target by how much of the image a crop kept, and this "
                              "upstream augmenter gives no visible fraction: use it with --aug crop")
        targets, confidence = soft_augmentation_targets(aug.labels, visible.to(aug.labels.device))
        weights = confidence / len(confidence)
        stats = {"target_confidence": confidence.mean(), "visible_fraction": visible.float().mean()}
        return targets, weights, Refined(pi=None, labels=targets, weights=weights, stats=stats)


def reweighting_gradient(model: nn.Module, objective: Objective, x_aug, labels: Tensor, x_val, y_val,
                         clean_inputs=None, process_group=None) -> Tensor:
    """d L_val(theta - grad_theta sum_i eps_i l_i(theta)) / d eps at eps = 0 (Ren et al. 2018, Sec. 3),
    by reverse-mode AD; l_i is the augmented sample's loss in the forward the step takes (the
    union's when `clean_inputs` are given).

    At eps = 0 the virtual step is theta itself, so by the chain rule this is -<g, grad l_i> with
    g = grad L_val(theta): the eps-gradient of <grad_theta sum_i eps_i l_i, g>, as uber-research's
    `reweight_autodiff` takes it for its ResNets (`tf.gradients(grads_a, ex_wts, grads_b)`). g is
    the mean over ranks under DDP, so data-parallel training reweights as one process does (a
    virtual step through a rank's own share of the validation batch would not). Any step size
    rescales the result, which the normalisation removes.
    """
    val_grad = validation_gradient(model, objective, x_val, y_val, process_group)
    params = trainable_parameters(model)
    with functional_twin(model) as call, torch.enable_grad(), differentiable_attention():
        def weighted_loss(values, eps):
            forward = lambda *args: call(values, *args)  # noqa: E731
            logits = objective.logits(forward, x_aug) if clean_inputs is None else \
                objective.augmented_logits(forward, clean_inputs, x_aug)
            return weighted_soft_cross_entropy(logits, labels, eps)

        def along_validation_gradient(eps):
            step = grad(weighted_loss)(params, eps)
            return sum((step[name] * val_grad[name]).sum() for name in params)

        return -grad(along_validation_gradient)(torch.zeros(len(labels), device=labels.device)).detach()


def reweighting_weights(gradient: Tensor, process_group=None) -> Tensor:
    """w_i = max(-gradient_i, 0), normalised to sum to 1 over the (global) batch; all zero stays zero."""
    raw = (-gradient).clamp_min(0.0)
    total = sum_over_ranks(raw.sum(), process_group)
    return raw / total.clamp_min(torch.finfo(raw.dtype).tiny)


class LearningToReweight(Upstream):
    """Ren et al. (2018): per-sample weights from one virtual SGD step on a validation batch,
    upstream labels unchanged. Its weights' signs are SAflex's with the labels frozen (beta = inf)."""

    def __init__(self, objective: Objective, *, mode: str | None, autocast: Callable = contextlib.nullcontext,
                 process_group=None, world_size: int = 1):
        super().__init__(objective, autocast)
        self.mode, self.process_group, self.world_size = mode, process_group, world_size

    def decide(self, model, inputs, aug, val_batches) -> tuple[Tensor, Tensor, Refined]:
        x_val, y_val = next(val_batches)
        with network_mode(model, self.mode):
            gradient = reweighting_gradient(model, self.objective, aug.inputs, aug.labels, x_val, y_val, inputs,
                                            self.process_group)
        weights = reweighting_weights(gradient, self.process_group)
        refined = Refined(pi=None, labels=aug.labels, weights=weights,
                          stats={"kept_fraction": (weights > 0).float().mean()})
        # DDP averages the ranks' gradients: weights summing to 1 over all ranks, times the world size.
        return aug.labels, weights * self.world_size, refined


def _saflex(variant: str):
    def make(config: RunConfig, objective: Objective, *, optimizer, autocast, process_group, world_size,
             full_precision: bool):
        # A compiled step cannot share the training forward (compiled.py): the union's Pi takes its own pass.
        share_forward = full_precision and world_size == 1 and not config.compile
        return Saflex(SaflexStep.from_config(config.saflex, objective, variant=variant, optimizer=optimizer,
                                             autocast=autocast, share_forward=share_forward, compile=config.compile,
                                             process_group=process_group, world_size=world_size))
    return make


REFINERS.register("none")(lambda config, objective, *, autocast, **_: Upstream(objective, autocast))
REFINERS.register("soft-aug")(lambda config, objective, *, autocast, **_: SoftAugmentation(objective, autocast))
for _variant in ("saflex", "saflex-weights", "saflex-labels"):
    REFINERS.register(_variant)(_saflex(_variant))
REFINERS.register("l2rw")(lambda config, objective, *, autocast, process_group, world_size, **_: LearningToReweight(
    objective, mode=config.saflex.network_mode, autocast=autocast, process_group=process_group,
    world_size=world_size))


def make_refiner(config: RunConfig, objective: Objective, **context):
    """The refiner of a run: `context` holds optimizer, autocast, full_precision (whether the training
    forward runs in full precision), process_group and world_size."""
    return REFINERS.get(config.refine)(config, objective, **context)
