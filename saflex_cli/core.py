"""The SAflex step (paper Sec. 3, Algorithm 1; signs as in docs/method.md).

For a minibatch: g = grad_theta L(val batch). For augmented sample i, Pi_i in R^K is the
directional derivative of the log-softmax outputs log p_k(x_i; theta) along -g, computed exactly
with forward-mode AD (one batched JVP). Then

    y_i = softmax((Pi_i + beta * y_upstream_i + G_i) / tau),   G_i ~ Gumbel(0, 1) i.i.d.
    w_i = 1 if <Pi_i, y_i> >= 0 else 0,  renormalised to sum to 1 (all zero stays zero).

Both passes leave parameters, buffers and the train/eval mode exactly as they were: BatchNorm's
running statistics are frozen for the pass (not copied), any other buffer is copied. The model's
current mode is used: in training mode BatchNorm normalises with the statistics of the batch
being differentiated, as in the training step itself.

Two cheaper estimates of Pi, chosen by the user (issue 'Performance', section 2):
- pi_mode="last-layer": Pi restricted to the classifier's final linear layer z = W h + b, in
  closed form: with (G_W, g_b) the validation gradient of that layer,
  Pi_k = -[(G_W h + g_b)_k - sum_j p_j (G_W h + g_b)_j]. The validation pass is a forward only.
  Inside a training step (`SaflexStep`) Pi comes from the training forward of the clean +
  augmented union itself, as the paper describes (Sec. 3, after Theorem 1), so it adds no pass.
- refresh=K (`SaflexStep`): g is recomputed every K steps and reused in between; Pi stays exact
  for the current parameters.
"""
from __future__ import annotations

import contextlib
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Callable, Iterator

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.autograd import forward_ad
from torch.func import functional_call
from torch.nn.attention import SDPBackend, sdpa_kernel
from torch.nn.modules.batchnorm import _BatchNorm

from .data.batches import input_count
from .distributed import mean_over_ranks, own_rows, sum_over_ranks
from .errors import SaflexError
from .objectives import CrossEntropy, Objective, concat_inputs

ParamDict = dict[str, Tensor]


@dataclass
class Refined:
    """What SAflex returns for one augmented batch."""

    pi: Tensor  # (B, K) directional derivative of log-softmax along -g
    labels: Tensor  # (B, K) soft labels, rows on the simplex
    weights: Tensor  # (B,) sample weights, summing to 1 (or all zero)
    stats: dict = field(default_factory=dict)


def trainable_parameters(model: nn.Module) -> ParamDict:
    return {name: p.detach() for name, p in model.named_parameters() if p.requires_grad}


@contextmanager
def frozen_batchnorm_statistics(model: nn.Module):
    """BatchNorm in training mode normalises with the batch's statistics, as in the training step,
    but leaves its running statistics (and count) alone: no buffer copies, no update kernels."""
    layers = [m for m in model.modules() if isinstance(m, _BatchNorm) and m.training and m.track_running_stats]
    for layer in layers:
        layer.track_running_stats = False
    try:
        yield
    finally:
        for layer in layers:
            layer.track_running_stats = True


def _other_buffer_copies(model: nn.Module) -> ParamDict:
    """Copies of the state buffers a forward might change in place, other than BatchNorm's (frozen
    above). Non-persistent buffers (lookup tables, attention masks) are not state: left as they are."""
    copies = {}
    for prefix, module in model.named_modules():
        if isinstance(module, _BatchNorm):
            continue
        for name, buffer in module.named_buffers(recurse=False):
            if name not in module._non_persistent_buffers_set:  # what state_dict leaves out
                copies[f"{prefix}.{name}" if prefix else name] = buffer.clone()
    return copies


@contextmanager
def stateless(model: nn.Module, params: ParamDict | None = None):
    """A call of `model` (with `params` in place of its own, if given) that leaves every buffer as it was."""
    tensors = {**(params or {}), **_other_buffer_copies(model)}
    with frozen_batchnorm_statistics(model):
        yield (lambda *args: functional_call(model, tensors, args)) if tensors else model


def validation_gradient(model: nn.Module, objective: Objective, inputs, targets, process_group=None) -> ParamDict:
    """g = grad_theta L(val batch), leaving the model (its buffers and .grad fields) untouched.

    With a process group, each rank holds a share of the val batch and g is the mean over ranks.
    """
    params = {name: p for name, p in model.named_parameters() if p.requires_grad}
    with torch.enable_grad(), stateless(model) as call:
        loss = objective.loss(objective.logits(call, inputs), targets)
        grads = torch.autograd.grad(loss, list(params.values()), allow_unused=True)
    return mean_over_ranks({name: torch.zeros_like(p) if grad is None else grad.detach()
                            for (name, p), grad in zip(params.items(), grads)}, process_group)


def directional_log_probs(model: nn.Module, objective: Objective, inputs, direction: ParamDict,
                          scale: float = 1.0) -> Tensor:
    """Pi = d/dt log_softmax(f(inputs; theta + t * scale * direction)) at t = 0, by one batched JVP.

    Forward-mode AD on dual parameters (torch.autograd.forward_ad, the engine under torch.func.jvp,
    without functorch's transform layer: about a fifth fewer dispatched ops in a step that is
    launch-bound on a GPU). Pi is linear in the direction, so `scale` (-1 for -g) is applied once
    to Pi instead of to every tangent.
    """
    params = trainable_parameters(model)
    with torch.no_grad(), forward_ad_attention(), forward_ad.dual_level():
        duals = {name: forward_ad.make_dual(p, direction[name].to(p.dtype)) for name, p in params.items()}
        with stateless(model, duals) as call:
            log_probs = F.log_softmax(objective.logits(call, inputs).float(), dim=1)
        pi = forward_ad.unpack_dual(log_probs).tangent
    if pi is None:  # no parameter reaches the outputs
        pi = torch.zeros_like(log_probs)
    return pi * scale if scale != 1.0 else pi


@contextmanager
def forward_ad_attention():
    """Attention kernels that have a forward-AD formula, for the JVP only (training keeps the fast ones).

    Fused SDPA kernels have none, so the math kernel is forced; in eval mode nn.MultiheadAttention
    takes its native fast path (also without one) unless that path is switched off.
    """
    fastpath = torch.backends.mha.get_fastpath_enabled()
    torch.backends.mha.set_fastpath_enabled(False)
    try:
        with sdpa_kernel([SDPBackend.MATH]):
            yield
    finally:
        torch.backends.mha.set_fastpath_enabled(fastpath)


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

    With a process group, `pi` holds this rank's rows and the weights sum to 1 over all ranks.
    """
    if tau <= 0:
        raise ValueError(f"tau must be > 0, got {tau}")
    scores = pi + beta * upstream
    if gumbel:
        scores = scores + sample_gumbel(pi.shape, generator, pi.device, process_group)
    labels = torch.softmax(scores / tau, dim=1)
    keep = ((pi * labels).sum(dim=1) >= 0).float()
    # keep.sum() is 0 or >= 1, so the clamp only matters when all are rejected (they stay 0),
    # and no host sync is needed to decide.
    weights = keep / sum_over_ranks(keep.sum(), process_group).clamp_min(1.0)
    return labels, weights


def refinement_stats(pi: Tensor, upstream: Tensor, labels: Tensor, weights: Tensor) -> dict[str, Tensor]:
    """Per-batch diagnostics as 0-dim tensors (reading them with float() is the only sync)."""
    entropy = -(labels * labels.clamp_min(1e-12).log()).sum(dim=1)
    return {
        "kept_fraction": (weights > 0).float().mean(),
        "changed_fraction": (labels.argmax(1) != upstream.argmax(1)).float().mean(),
        "label_entropy": entropy.mean(),
    }


def penultimate(model: nn.Module, inputs) -> tuple[Tensor, Tensor]:
    """Features h (the head's input) and logits, by a forward that leaves the buffers as they were."""
    captured = []
    handle = model.head.register_forward_hook(lambda module, args, output: captured.append(args[0]))
    try:
        with torch.no_grad(), stateless(model) as call:
            logits = call(inputs)
    finally:
        handle.remove()
    return captured[0], logits


def head_gradient(features: Tensor, logits: Tensor, targets: Tensor, objective: Objective) -> ParamDict:
    """(G_W, g_b) of the loss in closed form: G_W = dz^T h, g_b = sum_i dz_i, dz = dL/dz.

    dz comes from autograd on the (B, K) logits alone, never through the backbone; for mean
    cross-entropy it is (P - Y) / n, and a class-weighted loss gets its own dz for free.
    """
    with torch.enable_grad():
        z = logits.detach().float().requires_grad_()
        (dz,) = torch.autograd.grad(objective.loss(z, targets), z)
    return {"head.weight": dz.T @ features.detach().float(), "head.bias": dz.sum(0)}


def last_layer_pi(features: Tensor, logits: Tensor, grad: ParamDict) -> Tensor:
    """Pi_k = -[(G_W h + g_b)_k - sum_j p_j (G_W h + g_b)_j]: Pi for the head's parameters only."""
    along_g = features.float() @ grad["head.weight"].T + grad["head.bias"]
    probs = torch.softmax(logits.float(), dim=1)
    return -(along_g - (probs * along_g).sum(dim=1, keepdim=True))


def require_classifier(model: nn.Module) -> None:
    if not (isinstance(getattr(model, "head", None), nn.Linear) and callable(getattr(model, "features", None))):
        raise SaflexError(f"pi_mode 'last-layer' needs a Classifier (a model with .features(x) and a linear "
                          f".head); {type(model).__name__} has none: use pi_mode 'exact'")


class ExactPi:
    """Pi for every trainable parameter: a backward on the validation batch and one batched JVP."""

    name = "exact"

    def validation_gradient(self, model: nn.Module, objective: Objective, inputs, targets,
                            process_group=None) -> ParamDict:
        return validation_gradient(model, objective, inputs, targets, process_group)

    def pi(self, model: nn.Module, objective: Objective, inputs, grad: ParamDict) -> Tensor:
        return directional_log_probs(model, objective, inputs, grad, scale=-1.0)

    def step_loss(self, step: "SaflexStep", model, train_model, inputs, targets, x_aug, y_aug, grad, generator):
        with step.pi_precision():
            pi = self.pi(model, step.objective, x_aug, grad)
        refined = step.extrapolated(pi, y_aug, generator)
        # DDP averages gradients over ranks: scaling the globally normalised weights by the world
        # size makes that mean equal the single-process sum over the whole batch.
        with step.autocast():
            loss = step.objective.training_loss(train_model, inputs, targets, x_aug, refined.labels,
                                                refined.weights * step.world_size)
        return loss, refined


class LastLayerPi:
    """Pi for the head's parameters only, in closed form; the validation pass is a forward."""

    name = "last-layer"

    def validation_gradient(self, model: nn.Module, objective: Objective, inputs, targets,
                            process_group=None) -> ParamDict:
        require_classifier(model)
        features, logits = penultimate(model, inputs)
        return mean_over_ranks(head_gradient(features, logits, targets, objective), process_group)

    def pi(self, model: nn.Module, objective: Objective, inputs, grad: ParamDict) -> Tensor:
        require_classifier(model)
        return last_layer_pi(*penultimate(model, inputs), grad)

    def step_loss(self, step: "SaflexStep", model, train_model, inputs, targets, x_aug, y_aug, grad, generator):
        """Pi from the training forward of the union itself: no extra pass over the augmented batch."""
        require_classifier(model)
        if train_model is not model:  # the replayed forward would bypass DDP's gradient hooks
            raise SaflexError("pi_mode 'last-layer' runs on one process only; under torchrun use pi_mode 'exact'")
        union = concat_inputs(inputs, x_aug)
        clean = len(targets)
        with step.autocast():
            features = model.features(union)
            logits = model.head(features)
            pi = last_layer_pi(features[clean:].detach(), logits[clean:].detach(), grad)
            refined = step.extrapolated(pi, y_aug, generator)
            loss = step.objective.training_loss(ReplayedForward(logits, len(logits)), inputs, targets, x_aug,
                                                refined.labels, refined.weights)
        return loss, refined


class ReplayedForward:
    """Stands in for the model in `objective.training_loss`, returning the union's logits already
    computed, so the backbone runs once per step. Refuses any other call rather than guess."""

    def __init__(self, logits: Tensor, count: int):
        self.logits, self.count, self.used = logits, count, False

    def __call__(self, inputs) -> Tensor:
        if self.used or input_count(inputs) != self.count:
            raise SaflexError("pi_mode 'last-layer' needs an objective whose training loss runs the model once "
                              "on the clean + augmented union; use pi_mode 'exact' with this objective")
        self.used = True
        return self.logits


PI_ESTIMATORS = {estimator.name: estimator for estimator in (ExactPi(), LastLayerPi())}


def pi_estimator(pi_mode: str):
    if pi_mode not in PI_ESTIMATORS:
        raise SaflexError(f"unknown pi mode {pi_mode!r}; choose from: {', '.join(PI_ESTIMATORS)}")
    return PI_ESTIMATORS[pi_mode]


def _refined(pi: Tensor, y_aug: Tensor, *, beta: float, tau: float, gumbel: bool,
             generator: torch.Generator | None, process_group=None) -> Refined:
    upstream = as_soft_rows(y_aug, pi.shape[1]).to(pi.device)
    labels, weights = extrapolate(pi, upstream, beta=beta, tau=tau, gumbel=gumbel, generator=generator,
                                  process_group=process_group)
    return Refined(pi, labels, weights, refinement_stats(pi, upstream, labels, weights))


def refine(model: nn.Module, x_aug, y_aug: Tensor, x_val, y_val: Tensor, *, beta: float,
           tau: float, gumbel: bool = True, generator: torch.Generator | None = None,
           objective: Objective | None = None, val_grad: ParamDict | None = None,
           pi_mode: str = "exact", process_group=None) -> Refined:
    """Sample weights and soft labels for an augmented batch (docs/method.md).

    `y_aug` holds class ids (B,) or soft rows (B, K). `val_grad` lets a caller reuse a
    validation gradient computed earlier (then `x_val`, `y_val` are not used); in the
    'last-layer' mode it holds only the head's entries ('head.weight', 'head.bias').
    `process_group` (torch.distributed; None = one process) makes the step that of the batch
    held by all ranks: see distributed.py.
    """
    objective = objective or CrossEntropy()
    estimator = pi_estimator(pi_mode)
    with torch.no_grad():
        grad = val_grad if val_grad is not None else \
            estimator.validation_gradient(model, objective, x_val, y_val, process_group)
        pi = estimator.pi(model, objective, x_aug, grad)
    return _refined(pi, y_aug, beta=beta, tau=tau, gumbel=gumbel, generator=generator, process_group=process_group)


class SaflexStep:
    """SAflex inside a training step: the Pi mode, the reuse of g over `refresh` steps, the loss.

    The trainer calls `training_loss` once per step. The cached g and the step count are state:
    `state_dict` / `load_state_dict` carry them, so a resumed run refreshes g on the same steps.
    `autocast` is the context of the training forward; `pi_autocast` runs the exact mode's
    validation backward and JVP under it too (off by default: Pi in full precision).
    """

    def __init__(self, objective: Objective | None = None, *, beta: float, tau: float, gumbel: bool = True,
                 pi_mode: str = "exact", refresh: int = 1,
                 autocast: Callable[[], contextlib.AbstractContextManager] = contextlib.nullcontext,
                 pi_autocast: bool = False, process_group=None, world_size: int = 1):
        if refresh < 1:
            raise SaflexError(f"pi refresh must be >= 1 step, got {refresh}")
        self.objective = objective or CrossEntropy()
        self.estimator = pi_estimator(pi_mode)
        self.beta, self.tau, self.gumbel, self.refresh = beta, tau, gumbel, refresh
        self.autocast = autocast
        self.pi_precision = autocast if pi_autocast else contextlib.nullcontext
        self.process_group, self.world_size = process_group, world_size  # DDP: see refine()
        self.steps = 0
        self.val_grad: ParamDict | None = None

    @classmethod
    def from_config(cls, config, objective: Objective, **kwargs) -> "SaflexStep":
        return cls(objective, beta=config.beta, tau=config.tau, gumbel=config.gumbel, pi_mode=config.pi_mode,
                   refresh=config.pi_refresh, **kwargs)

    def extrapolated(self, pi: Tensor, y_aug: Tensor, generator) -> Refined:
        return _refined(pi.detach(), y_aug, beta=self.beta, tau=self.tau, gumbel=self.gumbel, generator=generator,
                        process_group=self.process_group)

    def validation_gradient(self, model: nn.Module, val_batches: Iterator) -> ParamDict:
        """g, recomputed on steps 0, K, 2K, ... (drawing a validation batch only then)."""
        if self.val_grad is None or self.steps % self.refresh == 0:
            x_val, y_val = next(val_batches)
            with self.pi_precision():
                self.val_grad = self.estimator.validation_gradient(model, self.objective, x_val, y_val,
                                                                   self.process_group)
        self.steps += 1
        return self.val_grad

    def training_loss(self, model: nn.Module, inputs, targets: Tensor, x_aug, y_aug: Tensor,
                      val_batches: Iterator, generator: torch.Generator | None = None,
                      train_model: nn.Module | None = None) -> tuple[Tensor, Refined]:
        """Loss on the clean batch + the refined augmented batch, and what SAflex decided.

        `model` is differentiated for Pi; `train_model` (its DDP wrapper, say) runs the loss.
        """
        grad = self.validation_gradient(model, val_batches)
        return self.estimator.step_loss(self, model, train_model or model, inputs, targets, x_aug, y_aug, grad,
                                        generator)

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
    """Mean loss on the clean batch + sum_i w_i * CE(soft y_i, x_aug_i)."""
    objective = objective or CrossEntropy()
    return objective.training_loss(model, x_clean, y_clean, x_aug, refined.labels, refined.weights)
