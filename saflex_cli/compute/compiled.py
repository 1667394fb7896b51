"""--compile: what a training step runs, under torch.compile (timm's and open_clip's --torchcompile).

The model is compiled in place (nn.Module.compile, so its state_dict and checkpoints keep their
keys): the training forward and its backward, the validation forward and backward SAflex takes g
from, and evaluation. The exact Pi's JVP is compiled as torch.func.jvp through functional_call
(pi.compiled_directional_log_probs): the dual-tensor forward pi.py runs eagerly cannot be traced
(dynamo refuses inputs that carry a forward-mode tangent), so under --compile the union's Pi takes
a compiled pass of its own instead of sharing the training forward.

Shapes are static (dynamic=False): each batch shape compiles once, so the smaller last batch of
a pass adds one graph per pass, and nothing recompiles after the first epoch. What cannot compile
is refused before any run starts (config._check_compilable) or, for a model dynamo or inductor
cannot handle, in one line at the first step, before any step is taken.
"""
from __future__ import annotations

import contextlib
import functools

import torch
from torch import nn

from ..errors import SaflexError

OPTIONS = {"dynamic": False}
# Graphs per compiled function: training, validation (BatchNorm's statistics frozen) and eval
# mode, each at its full and last batch shapes, and the eval splits' last batches.
RECOMPILE_LIMIT = 32


def compile_model(model: nn.Module) -> nn.Module:
    """`model`, its forward compiled in place (the first call compiles)."""
    torch._dynamo.config.recompile_limit = max(torch._dynamo.config.recompile_limit, RECOMPILE_LIMIT)
    model.compile(**OPTIONS)
    return model


@functools.cache
def compiled(function):
    """`function` under torch.compile, made once per function."""
    return torch.compile(function, **OPTIONS)


@contextlib.contextmanager
def compile_errors(model: nn.Module):
    """A model that torch.compile cannot handle: one line, not dynamo's traceback."""
    try:
        yield
    except (torch._dynamo.exc.Unsupported, torch._dynamo.exc.BackendCompilerFailed,
            torch._dynamo.exc.InternalTorchDynamoError) as error:
        reason = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise SaflexError(f"--compile: torch.compile cannot compile {type(model).__name__} ({reason}); "
                          f"run without --compile") from None
