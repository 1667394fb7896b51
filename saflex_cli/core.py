"""The SAflex step (paper Sec. 3, Algorithm 1; signs as in DEVELOPERS.md).

For a minibatch: g = grad_theta L(val batch). For augmented sample i, Pi_i in R^K is the
directional derivative of the log-softmax outputs log p_k(x_i; theta) along -g, computed exactly
with forward-mode AD (one batched JVP). Then

    y_i = softmax((Pi_i + beta * y_upstream_i + G_i) / tau),   G_i ~ Gumbel(0, 1) i.i.d.
    w_i = 1 if <Pi_i, y_i> >= 0 else 0,  renormalised to sum to 1 (all zero stays zero).

Both passes run through `torch.func.functional_call` on copies of the buffers, so parameters,
BatchNorm running statistics and the train/eval mode are left exactly as they were. The model's
current mode is used: in training mode BatchNorm normalises with the statistics of the batch
being differentiated, as in the training step itself.
"""
from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.func import functional_call, jvp
from torch.nn.attention import SDPBackend, sdpa_kernel

from .distributed import mean_over_ranks, own_rows, sum_over_ranks
from .objectives import CrossEntropy, Objective

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


def _buffer_copies(model: nn.Module) -> ParamDict:
    # Fresh copies per pass: BatchNorm updates running stats in place, on these, not the model's.
    return {name: b.clone() for name, b in model.named_buffers()}


def _functional(model: nn.Module, params: ParamDict):
    buffers = _buffer_copies(model)

    def call(*args):
        return functional_call(model, {**params, **buffers}, args)

    return call


def validation_gradient(model: nn.Module, objective: Objective, inputs, targets, process_group=None) -> ParamDict:
    """g = grad_theta L(val batch), leaving the model (and its .grad fields) untouched.

    With a process group, each rank holds a share of the val batch and g is the mean over ranks.
    """
    params = {name: p.requires_grad_() for name, p in
              ((n, t.clone()) for n, t in trainable_parameters(model).items())}
    with torch.enable_grad():
        logits = objective.logits(_functional(model, params), inputs)
        loss = objective.loss(logits, targets)
        grads = torch.autograd.grad(loss, list(params.values()), allow_unused=True)
    return mean_over_ranks({name: torch.zeros_like(p) if grad is None else grad.detach()
                            for (name, p), grad in zip(params.items(), grads)}, process_group)


def directional_log_probs(model: nn.Module, objective: Objective, inputs, direction: ParamDict) -> Tensor:
    """Pi = d/dt log_softmax(f(inputs; theta + t * direction)) at t = 0, by one batched JVP."""
    params = trainable_parameters(model)
    tangents = {name: direction[name].to(p.dtype) for name, p in params.items()}

    def log_probs(p: ParamDict) -> Tensor:
        return F.log_softmax(objective.logits(_functional(model, p), inputs).float(), dim=1)

    with forward_ad_attention():
        _, pi = jvp(log_probs, (params,), (tangents,))
    return pi.detach()


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
    total = sum_over_ranks(keep.sum(), process_group)
    weights = keep / total if total > 0 else keep
    return labels, weights


def refinement_stats(pi: Tensor, upstream: Tensor, labels: Tensor, weights: Tensor) -> dict[str, Tensor]:
    """Per-batch diagnostics as 0-dim tensors (reading them with float() is the only sync)."""
    entropy = -(labels * labels.clamp_min(1e-12).log()).sum(dim=1)
    return {
        "kept_fraction": (weights > 0).float().mean(),
        "changed_fraction": (labels.argmax(1) != upstream.argmax(1)).float().mean(),
        "label_entropy": entropy.mean(),
    }


def refine(model: nn.Module, x_aug, y_aug: Tensor, x_val, y_val: Tensor, *, beta: float,
           tau: float, gumbel: bool = True, generator: torch.Generator | None = None,
           objective: Objective | None = None, val_grad: ParamDict | None = None,
           process_group=None) -> Refined:
    """Sample weights and soft labels for an augmented batch (DEVELOPERS.md, 'The method').

    `y_aug` holds class ids (B,) or soft rows (B, K). `val_grad` lets a caller reuse a
    validation gradient computed earlier (then `x_val`, `y_val` are not used). `process_group`
    (torch.distributed; None = one process) makes the step that of the batch held by all ranks:
    see distributed.py.
    """
    objective = objective or CrossEntropy()
    with torch.no_grad():
        grad = val_grad if val_grad is not None else validation_gradient(model, objective, x_val, y_val, process_group)
        pi = directional_log_probs(model, objective, x_aug, {n: -g for n, g in grad.items()})
        upstream = as_soft_rows(y_aug, pi.shape[1]).to(pi.device)
        labels, weights = extrapolate(pi, upstream, beta=beta, tau=tau, gumbel=gumbel, generator=generator,
                                      process_group=process_group)
    return Refined(pi, labels, weights, refinement_stats(pi, upstream, labels, weights))


def saflex_loss(model: nn.Module, x_clean, y_clean: Tensor, x_aug, refined: Refined,
                objective: Objective | None = None) -> Tensor:
    """Mean loss on the clean batch + sum_i w_i * CE(soft y_i, x_aug_i)."""
    objective = objective or CrossEntropy()
    return objective.training_loss(model, x_clean, y_clean, x_aug, refined.labels, refined.weights)
