"""Pi, the directional derivative of an augmented sample's log-probabilities (docs/method.md).

The validation gradient g and Pi are taken without touching the model: parameters, `.grad`,
every buffer and the train/eval mode are as before each call. BatchNorm's running statistics
are frozen for the pass (not copied), any other state buffer is copied. The network mode of the
passes is the model's own unless `network_mode` says otherwise; in training mode BatchNorm
normalises with the statistics of the batch being differentiated, as the training step does.

Two estimators, chosen by `pi_mode`:
- exact: one backward on the validation batch for g, one batched JVP (forward-mode AD) for Pi,
  through the forward the step differentiates (the clean + augmented union) or the augmented
  batch alone (`pi_forward`).
- last-layer: Pi for the final linear layer z = W h + b only, in closed form: with (G_W, g_b)
  the validation gradient of that layer, Pi_k = -[(G_W h + g_b)_k - sum_j p_j (G_W h + g_b)_j].
  Inside a training step Pi comes from the training forward of the union itself (no extra pass).
"""
from __future__ import annotations

from contextlib import contextmanager
from typing import Callable

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.autograd import forward_ad
from torch.func import functional_call, jvp
from torch.nn.attention import SDPBackend, sdpa_kernel
from torch.nn.modules.batchnorm import _BatchNorm

from ..compute.compiled import compiled
from ..compute.distributed import mean_over_ranks
from ..data.batches import input_count
from ..errors import SaflexError
from .objectives import Objective, concat_inputs, full_precision

ParamDict = dict[str, Tensor]
LogitsOf = Callable[[Callable], Tensor]  # call (the model or a functional twin) -> (B, K) logits


def trainable_parameters(model: nn.Module) -> ParamDict:
    return {name: p.detach() for name, p in model.named_parameters() if p.requires_grad}


@contextmanager
def network_mode(model: nn.Module, mode: str | None):
    """The model in 'train' or 'eval' mode for the duration (None: as it is), then as it was."""
    if mode is None or mode == ("train" if model.training else "eval"):
        yield
        return
    modes = {module: module.training for module in model.modules()}
    model.train(mode == "train")
    try:
        yield
    finally:
        for module, training in modes.items():
            module.training = training


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


@contextmanager
def functional_twin(model: nn.Module):
    """call(params, *args): `model` with `params` in place of its own, leaving every buffer as it was
    (for passes through several parameter values, as a virtual step takes)."""
    copies = _other_buffer_copies(model)
    with frozen_batchnorm_statistics(model):
        yield lambda params, *args: functional_call(model, {**copies, **params}, args)


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


def directional_log_probs(model: nn.Module, logits_of: LogitsOf, direction: ParamDict,
                          scale: float = 1.0) -> tuple[Tensor, Tensor]:
    """(log p, Pi): log_softmax of `logits_of(call)` and its derivative d/dt at t = 0 along
    theta + t * scale * direction, by one batched JVP.

    Forward-mode AD on dual parameters (torch.autograd.forward_ad, the engine under torch.func.jvp,
    without functorch's transform layer: about a fifth fewer dispatched ops in a step that is
    launch-bound on a GPU). Pi is linear in the direction, so `scale` (-1 for -g) is applied once
    to Pi instead of to every tangent.
    """
    params = trainable_parameters(model)
    with torch.no_grad(), differentiable_attention(), forward_ad.dual_level():
        duals = {name: forward_ad.make_dual(p, direction[name].to(p.dtype)) for name, p in params.items()}
        with stateless(model, duals) as call:
            log_probs = F.log_softmax(full_precision(logits_of(call)), dim=1)
        primal, pi = forward_ad.unpack_dual(log_probs)
    if pi is None:  # no parameter reaches the outputs
        pi = torch.zeros_like(primal)
    return primal, (pi * scale if scale != 1.0 else pi)


def compiled_directional_log_probs(model: nn.Module, logits_of: LogitsOf, direction: ParamDict,
                                   scale: float = 1.0) -> tuple[Tensor, Tensor]:
    """directional_log_probs by torch.func.jvp through functional_call under torch.compile
    (compiled.py): the same Pi, by the route dynamo can trace."""
    params = trainable_parameters(model)
    tangents = {name: direction[name].to(p.dtype) for name, p in params.items()}
    with torch.no_grad(), differentiable_attention(), functional_twin(model) as call:
        primal, pi = compiled(_log_probs_jvp)(call, logits_of, params, tangents)
    return primal, (pi * scale if scale != 1.0 else pi)


def _log_probs_jvp(call, logits_of: LogitsOf, params: ParamDict, tangents: ParamDict) -> tuple[Tensor, Tensor]:
    def log_probs(values: ParamDict) -> Tensor:
        return F.log_softmax(full_precision(logits_of(lambda *args: call(values, *args))), dim=1)
    return jvp(log_probs, (params,), (tangents,))


@contextmanager
def differentiable_attention():
    """Attention kernels that forward-mode AD and a double backward can differentiate, for Pi's JVP
    and learning-to-reweight's second-order pass only (training keeps the fast ones).

    Fused SDPA kernels have neither, so the math kernel is forced; in eval mode nn.MultiheadAttention
    takes its native fast path (also without them) unless that path is switched off.
    """
    fastpath = torch.backends.mha.get_fastpath_enabled()
    torch.backends.mha.set_fastpath_enabled(False)
    try:
        with sdpa_kernel([SDPBackend.MATH]):
            yield
    finally:
        torch.backends.mha.set_fastpath_enabled(fastpath)


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


def last_layer_pi(features: Tensor, logits: Tensor, direction: ParamDict) -> Tensor:
    """Pi_k = -[(D_W h + d_b)_k - sum_j p_j (D_W h + d_b)_j]: Pi along -direction, head parameters only."""
    along = features.float() @ direction["head.weight"].T + direction["head.bias"]
    probs = torch.softmax(logits.float(), dim=1)
    return -(along - (probs * along).sum(dim=1, keepdim=True))


def require_classifier(model: nn.Module) -> None:
    if not (isinstance(getattr(model, "head", None), nn.Linear) and callable(getattr(model, "features", None))):
        raise SaflexError(f"pi_mode 'last-layer' needs a Classifier (a model with .features(x) and a linear "
                          f".head); {type(model).__name__} has none: use pi_mode 'exact'")


class ExactPi:
    """Pi for every trainable parameter: a backward on the validation batch and one batched JVP
    (`along`: eager forward-mode AD, or its compiled twin)."""

    name = "exact"

    def __init__(self, along=directional_log_probs):
        self.along = along

    def validation_gradient(self, model: nn.Module, objective: Objective, inputs, targets,
                            process_group=None) -> ParamDict:
        return validation_gradient(model, objective, inputs, targets, process_group)

    def pi(self, model: nn.Module, objective: Objective, x_aug, direction: ParamDict,
           clean_inputs=None) -> tuple[Tensor, Tensor]:
        """(log p, Pi) of the augmented rows, through the union forward when `clean_inputs` are given."""
        if clean_inputs is None:
            return self.along(model, lambda call: objective.logits(call, x_aug), direction, scale=-1.0)
        return self.along(model, lambda call: objective.augmented_logits(call, clean_inputs, x_aug), direction,
                          scale=-1.0)

    def step_loss(self, step, model, train_model, inputs, targets, x_aug, y_aug, direction, generator):
        through_union = inputs if step.pi_forward == "union" else None
        if through_union is not None and shares_forward(step, model, train_model):
            outputs, log_probs, pi = shared_union_forward(model, step.objective, inputs, x_aug, direction)
            train_model = ReplayedForward(outputs, input_count(inputs) + input_count(x_aug))
        else:
            with step.pi_precision(), network_mode(model, step.network_mode):
                log_probs, pi = self.pi(model, step.objective, x_aug, direction, through_union)
        refined = step.extrapolated(pi, y_aug, generator, log_probs)
        # DDP averages gradients over ranks: scaling the globally normalised weights by the world
        # size makes that mean equal the single-process sum over the whole batch.
        with step.autocast():
            loss = step.objective.training_loss(train_model, inputs, targets, x_aug, refined.labels,
                                                refined.weights * step.world_size)
        return loss, refined


def shares_forward(step, model: nn.Module, train_model) -> bool:
    """Whether Pi can come from the training forward itself: one process, Pi in the training
    forward's precision, the same network mode."""
    return (step.share_forward and train_model is model
            and step.network_mode in (None, "train" if model.training else "eval"))


def primal(value):
    if isinstance(value, Tensor):
        return forward_ad.unpack_dual(value).primal
    if isinstance(value, (tuple, list)):
        return type(value)(primal(v) for v in value)
    return value


def shared_union_forward(model: nn.Module, objective: Objective, inputs, x_aug, direction: ParamDict):
    """(the union's outputs, log p, Pi) from ONE forward of the clean + augmented union on dual
    parameters, which is also the step's training forward: its primal outputs carry autograd's
    graph for the backward, and BatchNorm updates its running statistics once, as that forward
    does. Exact as the separate pass (tested); no second forward of the union."""
    params = {name: p for name, p in model.named_parameters() if p.requires_grad}
    recorded = []

    with differentiable_attention(), forward_ad.dual_level():
        duals = {name: forward_ad.make_dual(p, direction[name].to(p.dtype)) for name, p in params.items()}

        def call(*args):
            recorded.append(functional_call(model, duals, args, strict=False))
            return recorded[-1]

        log_probs = F.log_softmax(full_precision(objective.augmented_logits(call, inputs, x_aug)), dim=1)
        primal_log_probs, tangent = forward_ad.unpack_dual(log_probs)
        outputs = primal(recorded[-1])
    return outputs, primal_log_probs.detach(), -tangent


class LastLayerPi:
    """Pi for the head's parameters only, in closed form; the validation pass is a forward."""

    name = "last-layer"

    def validation_gradient(self, model: nn.Module, objective: Objective, inputs, targets,
                            process_group=None) -> ParamDict:
        require_classifier(model)
        features, logits = penultimate(model, inputs)
        return mean_over_ranks(head_gradient(features, logits, targets, objective), process_group)

    def pi(self, model: nn.Module, objective: Objective, x_aug, direction: ParamDict,
           clean_inputs=None) -> tuple[Tensor, Tensor]:
        require_classifier(model)
        inputs = x_aug if clean_inputs is None else concat_inputs(clean_inputs, x_aug)
        features, logits = penultimate(model, inputs)
        rows = slice(input_count(inputs) - input_count(x_aug), None)
        return F.log_softmax(logits[rows].float(), dim=1), last_layer_pi(features[rows], logits[rows], direction)

    def step_loss(self, step, model, train_model, inputs, targets, x_aug, y_aug, direction, generator):
        """Pi from the training forward of the union itself: no extra pass over the augmented batch."""
        require_classifier(model)
        if train_model is not model:  # the replayed forward would bypass DDP's gradient hooks
            raise SaflexError("pi_mode 'last-layer' runs on one process only; under torchrun use pi_mode 'exact'")
        if step.network_mode not in (None, "train" if model.training else "eval"):
            raise SaflexError("pi_mode 'last-layer' takes Pi from the training forward itself: it cannot use "
                              "another network mode; use pi_mode 'exact' with network_mode 'eval'")
        union = x_aug if inputs is None else concat_inputs(inputs, x_aug)
        clean = 0 if inputs is None else len(targets)
        with step.autocast():
            features = model.features(union)
            logits = model.head(features)
            aug_logits = logits[clean:].detach()
            pi = last_layer_pi(features[clean:].detach(), aug_logits, direction)
            refined = step.extrapolated(pi, y_aug, generator, F.log_softmax(aug_logits.float(), dim=1))
            loss = step.objective.training_loss(ReplayedForward(logits, len(logits)), inputs, targets, x_aug,
                                                refined.labels, refined.weights)
        return loss, refined


class ReplayedForward:
    """Stands in for the model in `objective.training_loss`, returning the union's outputs already
    computed, so the backbone runs once per step. Refuses any other call rather than guess."""

    def __init__(self, outputs, count: int):
        self.outputs, self.count, self.used = outputs, count, False

    def __call__(self, inputs):
        if self.used or input_count(inputs) != self.count:
            raise SaflexError("Pi from the training forward needs an objective whose training loss runs the model "
                              "once on the clean + augmented union; use pi_mode 'exact' with pi_forward 'augmented'")
        self.used = True
        return self.outputs


PI_ESTIMATORS = {estimator.name: estimator for estimator in (ExactPi(), LastLayerPi())}
COMPILED_PI = ExactPi(along=compiled_directional_log_probs)  # --compile (config refuses it with last-layer)


def pi_estimator(pi_mode: str, compile: bool = False):
    if pi_mode not in PI_ESTIMATORS:
        raise SaflexError(f"unknown pi mode {pi_mode!r}; choose from: {', '.join(PI_ESTIMATORS)}")
    return COMPILED_PI if compile and pi_mode == "exact" else PI_ESTIMATORS[pi_mode]
