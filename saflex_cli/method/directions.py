"""Which step Pi describes, and on what scale: three of SAflex's open choices (docs/method.md).

- pi_params 'no-output-bias': the output layer's bias leaves the direction. Its share of Pi,
  -(g_b,k - sum_j p_j g_b,j), is nearly the same for every sample of a batch, so it can give
  most of a batch one label whatever the sample.
- direction 'optimizer': Pi along the step the optimiser takes for the sample's gradient instead
  of -g. For Adam(W) a sample's gradient enters the update as -lr * grad / (sqrt(v_hat) + eps)
  (to first order, v_hat from the state before this step), so the direction is
  -g / (sqrt(v_hat) + eps); before Adam's first step, and for SGD, it is -g. Theorem 1 assumes
  SGD; this is an extension, labelled so.
- pi_scale 'rms': Pi divided by the root mean square of its per-sample-centred entries over the
  batch, so that beta and tau are in the same units on every model and epoch. An ablation, not
  the paper's; the weight rule's sign is unchanged by it.
"""
from __future__ import annotations

import torch
from torch import Tensor, nn

from ..compute.distributed import sum_over_ranks
from ..errors import SaflexError

ParamDict = dict[str, Tensor]


def output_bias_name(model: nn.Module) -> str:
    """The name of the output layer's bias: the classifier head's, else that of the model's last nn.Linear."""
    head = getattr(model, "head", None)
    if isinstance(head, nn.Linear) and head.bias is not None:
        return "head.bias"
    last_linear = [(name, m) for name, m in model.named_modules() if isinstance(m, nn.Linear)]
    if last_linear and last_linear[-1][1].bias is not None:
        return f"{last_linear[-1][0]}.bias" if last_linear[-1][0] else "bias"
    raise SaflexError(f"{type(model).__name__} has no output-layer bias to leave out of Pi: use pi_params 'all'")


def without_output_bias(grad: ParamDict, model: nn.Module) -> ParamDict:
    name = output_bias_name(model)
    if name not in grad:
        raise SaflexError(f"the output bias {name!r} is not among the parameters Pi is taken over")
    return {**grad, name: torch.zeros_like(grad[name])}


def preconditioned(grad: ParamDict, model: nn.Module, optimizer: torch.optim.Optimizer) -> ParamDict:
    """g / (sqrt(v_hat) + eps) for parameters with Adam(W) state; g where there is none (SGD, step 0)."""
    if not isinstance(optimizer, (torch.optim.Adam, torch.optim.AdamW)):
        return grad
    params = dict(model.named_parameters())
    eps, beta2 = optimizer.defaults["eps"], optimizer.defaults["betas"][1]
    out = {}
    for name, g in grad.items():
        state = optimizer.state.get(params[name], {})
        if "exp_avg_sq" not in state:
            out[name] = g
            continue
        step = float(state["step"])
        v_hat = state["exp_avg_sq"] / (1 - beta2 ** step)
        out[name] = g / (v_hat.sqrt() + eps).to(g.dtype)
    return out


def rms_normalised(pi: Tensor, process_group=None) -> Tensor:
    """Pi / RMS of (Pi_ik - mean_k Pi_ik) over the (global) batch; an all-zero Pi stays zero."""
    centred = pi - pi.mean(dim=1, keepdim=True)
    total = sum_over_ranks(centred.pow(2).sum(), process_group)
    count = sum_over_ranks(torch.tensor(float(centred.numel()), device=pi.device), process_group)
    rms = (total / count).sqrt()
    return pi / rms.clamp_min(torch.finfo(pi.dtype).tiny)
