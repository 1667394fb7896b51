"""The SAflex step (paper Sec. 3, Algorithm 1; the signs are those of docs/method.md).

For a minibatch: g = grad_theta L(val batch). For augmented sample i, Pi_i in R^K is the
directional derivative of the log-softmax outputs log p_k(x_i; theta) along -g (pi.py). Then

    y_i = softmax((Pi_i + beta * y_upstream_i + G_i) / tau),   G_i ~ Gumbel(0, 1) i.i.d.
    w_i = 1 if <Pi_i, y_i> >= 0 else 0,  renormalised to sum to 1 (all zero stays zero).

beta = inf keeps the upstream label (soft rows included) and only reweights: learning-to-
reweight's sign rule. The open choices the paper leaves (which forward Pi is taken through, the
network mode, the parameters, the step direction, Pi's scale) are SaflexStep's arguments;
docs/method.md says what each means and which is the paper's.
"""
from __future__ import annotations

import contextlib
import math
from dataclasses import dataclass, field
from typing import Callable, Iterator

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..compute.distributed import own_rows, sum_over_ranks
from ..errors import SaflexError
from .directions import preconditioned, rms_normalised, without_output_bias
from .objectives import CrossEntropy, Objective
from .pi import ParamDict, network_mode, pi_estimator


@dataclass
class Refined:
    """What SAflex returns for one augmented batch."""

    pi: Tensor | None  # (B, K) directional derivative of log-softmax along the step direction (None: not SAflex)
    labels: Tensor  # (B, K) soft labels, rows on the simplex
    weights: Tensor  # (B,) sample weights: SAflex's sum to 1 (or are all zero); Soft-Augmentation's are p_i / B
    stats: dict = field(default_factory=dict)


def as_soft_rows(targets: Tensor, num_classes: int) -> Tensor:
    if targets.dim() == 1:
        return F.one_hot(targets.long(), num_classes).float()
    return targets.float()


def sample_gumbel(shape, generator: torch.Generator | None, device, process_group=None) -> Tensor:
    """With a process group: this rank's rows of noise drawn for the global batch."""
    gen_device = generator.device if generator is not None else device
    rows, total = own_rows(shape[0], process_group, device)
    uniform = torch.rand((total, *shape[1:]), generator=generator, device=gen_device)[rows].to(device)
    tiny = torch.finfo(uniform.dtype).tiny
    return -torch.log(-torch.log(uniform.clamp(tiny, 1.0 - 1e-7)))


def extrapolate(pi: Tensor, upstream: Tensor, *, beta: float, tau: float, gumbel: bool = True,
                generator: torch.Generator | None = None, process_group=None) -> tuple[Tensor, Tensor]:
    """Soft labels and weights from Pi (Theorem 1 with the paper's two modifications).

    beta = inf: the upstream rows are kept as they are (no noise drawn) and weighted by the sign
    of <Pi, y_upstream>. With a process group, `pi` holds this rank's rows and the weights sum to
    1 over all ranks.
    """
    if tau <= 0:
        raise ValueError(f"tau must be > 0, got {tau}")
    if math.isinf(beta) and beta > 0:
        labels = upstream
    else:
        scores = pi + beta * upstream
        if gumbel:
            scores = scores + sample_gumbel(pi.shape, generator, pi.device, process_group)
        labels = torch.softmax(scores / tau, dim=1)
    keep = ((pi * labels).sum(dim=1) >= 0).float()
    # keep.sum() is 0 or >= 1, so the clamp only matters when all are rejected (they stay 0),
    # and no host sync is needed to decide.
    weights = keep / sum_over_ranks(keep.sum(), process_group).clamp_min(1.0)
    return labels, weights


def noiseless_argmax(pi: Tensor, upstream: Tensor, beta: float) -> Tensor:
    """The label SAflex would give without Gumbel noise (tau does not change an argmax)."""
    if math.isinf(beta) and beta > 0:
        return upstream.argmax(1)
    return (pi + beta * upstream).argmax(1)


def top_share(classes: Tensor, num_classes: int, process_group=None) -> Tensor:
    counts = sum_over_ranks(torch.bincount(classes, minlength=num_classes).float(), process_group)
    return counts.max() / counts.sum()


def refinement_stats(pi: Tensor, upstream: Tensor, labels: Tensor, weights: Tensor,
                     log_probs: Tensor | None = None, plain_argmax: Tensor | None = None,
                     process_group=None) -> dict[str, Tensor]:
    """Per-batch diagnostics of SAflex's decisions, as 0-dim tensors (reading them is the only sync).

    Fractions are batch means; `*_count` entries are sums, turned into ratios at the epoch's end
    (trainer.EpochStats): the model's correct predictions, and how many of them were relabelled.
    The share of the most common label is the global batch's (its class counts summed over ranks).
    """
    new, old = labels.argmax(1), upstream.argmax(1)
    entropy = -(labels * labels.clamp_min(1e-12).log()).sum(dim=1)
    top2 = pi.topk(2, dim=1).values if pi.shape[1] > 1 else torch.cat([pi, pi], dim=1)
    stats = {
        "kept_fraction": (weights > 0).float().mean(),
        "changed_fraction": (new != old).float().mean(),
        "agree_upstream_fraction": (new == old).float().mean(),
        "label_entropy": entropy.mean(),
        "top_label_share": top_share(new, labels.shape[1], process_group),
        "pi_margin": (top2[:, 0] - top2[:, 1]).mean(),
    }
    if plain_argmax is not None:
        stats["gumbel_flip_fraction"] = (new != plain_argmax).float().mean()
    if log_probs is not None:
        predicted = log_probs.argmax(1)
        correct = predicted == old
        stats["agree_prediction_fraction"] = (new == predicted).float().mean()
        stats["correct_count"] = correct.sum().float()
        stats["correct_relabelled_count"] = (correct & (new != old)).sum().float()
    return stats


def _refined(pi: Tensor, y_aug: Tensor, *, beta: float, tau: float, gumbel: bool,
             generator: torch.Generator | None, process_group=None, log_probs: Tensor | None = None) -> Refined:
    upstream = as_soft_rows(y_aug, pi.shape[1]).to(pi.device)
    labels, weights = extrapolate(pi, upstream, beta=beta, tau=tau, gumbel=gumbel, generator=generator,
                                  process_group=process_group)
    stats = refinement_stats(pi, upstream, labels, weights, log_probs, noiseless_argmax(pi, upstream, beta),
                             process_group)
    return Refined(pi, labels, weights, stats)


def refine(model: nn.Module, x_aug, y_aug: Tensor, x_val, y_val: Tensor, *, beta: float,
           tau: float, gumbel: bool = True, generator: torch.Generator | None = None,
           objective: Objective | None = None, val_grad: ParamDict | None = None,
           pi_mode: str = "exact", x_clean=None, mode: str | None = None, pi_scale: str = "raw",
           pi_params: str = "all", optimizer: torch.optim.Optimizer | None = None,
           process_group=None) -> Refined:
    """Sample weights and soft labels for an augmented batch (docs/method.md).

    `y_aug` holds class ids (B,) or soft rows (B, K). `val_grad` lets a caller reuse a
    validation gradient computed earlier (then `x_val`, `y_val` are not used); in the
    'last-layer' mode it holds only the head's entries ('head.weight', 'head.bias').
    `x_clean`: the clean batch the step trains beside the augmented one; Pi is then taken
    through their union's forward, as the step differentiates it. `mode` ('train' / 'eval';
    None: the model's own) is the network mode of both passes; `pi_scale`, `pi_params` and an
    Adam(W) `optimizer` (Pi along its preconditioned step) are the options of directions.py.
    `process_group` (torch.distributed; None = one process) makes the step that of the batch
    held by all ranks: see distributed.py.
    """
    step = SaflexStep(objective, beta=beta, tau=tau, gumbel=gumbel, pi_mode=pi_mode, network_mode=mode,
                      pi_scale=pi_scale, pi_params=pi_params, direction="optimizer" if optimizer else "sgd",
                      optimizer=optimizer, process_group=process_group)
    with torch.no_grad(), network_mode(model, mode):
        if val_grad is None:
            val_grad = step.estimator.validation_gradient(model, step.objective, x_val, y_val, process_group)
        log_probs, pi = step.estimator.pi(model, step.objective, x_aug, step.direction(model, val_grad), x_clean)
    return step.extrapolated(pi, y_aug, generator, log_probs)


VARIANTS = ("saflex", "saflex-weights", "saflex-labels")


class SaflexStep:
    """SAflex inside a training step: the Pi mode and options, the reuse of g over `refresh` steps,
    the loss.

    The trainer calls `training_loss` once per step (with `inputs=None` when the step trains on
    the augmented batch alone). The cached g and the step count are state: `state_dict` /
    `load_state_dict` carry them, so a resumed run refreshes g on the same steps. `autocast` is
    the context of the training forward; `pi_autocast` runs the exact mode's validation backward
    and JVP under it too (off by default: Pi in full precision); `share_forward` takes the union's
    Pi from the training forward itself where that forward runs in Pi's precision; `compile`
    takes the exact Pi's JVP by its compiled route (compiled.py). `variant`
    selects an ablation: SAflex's weights with the upstream labels, or its labels with uniform
    weights.
    """

    def __init__(self, objective: Objective | None = None, *, beta: float, tau: float, gumbel: bool = True,
                 pi_mode: str = "exact", refresh: int = 1, pi_forward: str = "union",
                 network_mode: str | None = None, pi_scale: str = "raw", pi_params: str = "all",
                 direction: str = "sgd", optimizer: torch.optim.Optimizer | None = None, variant: str = "saflex",
                 autocast: Callable[[], contextlib.AbstractContextManager] = contextlib.nullcontext,
                 pi_autocast: bool = False, share_forward: bool = False, compile: bool = False, process_group=None,
                 world_size: int = 1):
        if refresh < 1:
            raise SaflexError(f"pi refresh must be >= 1 step, got {refresh}")
        if variant not in VARIANTS:
            raise SaflexError(f"unknown SAflex variant {variant!r}; choose from: {', '.join(VARIANTS)}")
        if direction == "optimizer" and optimizer is None:
            raise SaflexError("direction 'optimizer' needs the optimizer whose step Pi describes")
        self.objective = objective or CrossEntropy()
        self.estimator = pi_estimator(pi_mode, compile)
        self.beta, self.tau, self.gumbel, self.refresh = beta, tau, gumbel, refresh
        self.pi_forward, self.network_mode, self.pi_scale, self.pi_params = pi_forward, network_mode, pi_scale, pi_params
        self.optimizer = optimizer if direction == "optimizer" else None
        self.variant = variant
        self.autocast = autocast
        self.pi_precision = autocast if pi_autocast else contextlib.nullcontext
        # Pi of the union from the training forward itself (pi.shared_union_forward): only where
        # that forward runs in Pi's precision (full, unless pi_autocast), which the caller knows.
        self.share_forward = share_forward
        self.process_group, self.world_size = process_group, world_size  # DDP: see refine()
        self.steps = 0
        self.val_grad: ParamDict | None = None

    @classmethod
    def from_config(cls, config, objective: Objective, **kwargs) -> "SaflexStep":
        return cls(objective, beta=config.beta, tau=config.tau, gumbel=config.gumbel, pi_mode=config.pi_mode,
                   refresh=config.pi_refresh, pi_forward=config.pi_forward, network_mode=config.network_mode,
                   pi_scale=config.pi_scale, pi_params=config.pi_params, direction=config.direction, **kwargs)

    def direction(self, model: nn.Module, grad: ParamDict) -> ParamDict:
        """The direction Pi is taken along (up to its sign): g, less the output bias, preconditioned."""
        if self.pi_params == "no-output-bias":
            grad = without_output_bias(grad, model)
        if self.optimizer is not None:
            grad = preconditioned(grad, model, self.optimizer)
        return grad

    def extrapolated(self, pi: Tensor, y_aug: Tensor, generator, log_probs: Tensor | None = None) -> Refined:
        pi = pi.detach()
        if self.pi_scale == "rms":
            pi = rms_normalised(pi, self.process_group)
        refined = _refined(pi, y_aug, beta=self.beta, tau=self.tau, gumbel=self.gumbel, generator=generator,
                           process_group=self.process_group, log_probs=log_probs)
        if self.variant == "saflex-weights":
            refined.labels = as_soft_rows(y_aug, pi.shape[1]).to(pi.device)
        elif self.variant == "saflex-labels":
            total = sum_over_ranks(torch.tensor(float(len(pi)), device=pi.device), self.process_group)
            refined.weights = torch.ones(len(pi), device=pi.device) / total
        return refined

    def validation_gradient(self, model: nn.Module, val_batches: Iterator) -> ParamDict:
        """g, recomputed on steps 0, K, 2K, ... (drawing a validation batch only then)."""
        if self.val_grad is None or self.steps % self.refresh == 0:
            x_val, y_val = next(val_batches)
            with self.pi_precision(), network_mode(model, self.network_mode):
                self.val_grad = self.estimator.validation_gradient(model, self.objective, x_val, y_val,
                                                                   self.process_group)
        self.steps += 1
        return self.val_grad

    def training_loss(self, model: nn.Module, inputs, targets: Tensor | None, x_aug, y_aug: Tensor,
                      val_batches: Iterator, generator: torch.Generator | None = None,
                      train_model: nn.Module | None = None) -> tuple[Tensor, Refined]:
        """Loss on the clean batch (if any) + the refined augmented batch, and what SAflex decided.

        `model` is differentiated for Pi; `train_model` (its DDP wrapper, say) runs the loss.
        """
        direction = self.direction(model, self.validation_gradient(model, val_batches))
        return self.estimator.step_loss(self, model, train_model or model, inputs, targets, x_aug, y_aug,
                                        direction, generator)

    def state_dict(self) -> dict:
        return {"pi_mode": self.estimator.name, "refresh": self.refresh, "steps": self.steps,
                "val_grad": None if self.val_grad is None else {n: g.clone() for n, g in self.val_grad.items()}}

    def load_state_dict(self, state: dict) -> None:
        if (state["pi_mode"], state["refresh"]) != (self.estimator.name, self.refresh):
            raise SaflexError(f"this SAflex state was saved with pi mode {state['pi_mode']!r}, refresh "
                              f"{state['refresh']}; it cannot resume a run with {self.estimator.name!r}, {self.refresh}")
        self.steps, self.val_grad = state["steps"], state["val_grad"]


def saflex_loss(model: nn.Module, x_clean, y_clean: Tensor, x_aug, refined: Refined,
                objective: Objective | None = None) -> Tensor:
    """Mean loss on the clean batch + sum_i w_i * CE(soft y_i, x_aug_i); x_clean=None: the second term alone."""
    objective = objective or CrossEntropy()
    return objective.training_loss(model, x_clean, y_clean, x_aug, refined.labels, refined.weights)
