"""Local weight files (torchvision or timm checkpoints, .pth or .safetensors) as plain state dicts."""
from __future__ import annotations

from pathlib import Path
from typing import Callable

import torch
from torch import nn

from ..errors import SaflexError


def read_state_dict(path: Path) -> dict:
    """The tensors of a checkpoint, unwrapped from a 'state_dict' / 'model' entry and a DDP 'module.' prefix."""
    path = Path(path)
    if not path.is_file():
        raise SaflexError(f"no weights file at {path}: --pretrained takes an existing .pth or .safetensors file")
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file
        state = load_file(str(path))
    else:
        state = torch.load(path, map_location="cpu", weights_only=True)
    for key in ("state_dict", "model"):
        if isinstance(state.get(key), dict):
            state = state[key]
    return {k.removeprefix("module."): v for k, v in state.items()}


def load_fitting(module: nn.Module, state: dict, path: Path, what: str, skip: Callable[[str], bool]) -> None:
    """Load `state`, less the keys `skip` names (a classifier head), into `module`, whose every other
    tensor it must hold with the same shape; a file that does not fit is refused in one line."""
    state = {key: value for key, value in state.items() if not skip(key)}
    try:
        missing, unexpected = module.load_state_dict(state, strict=False)
    except RuntimeError as error:  # shapes that differ
        raise SaflexError(f"{path} does not fit {what} ({str(error).splitlines()[-1].strip()}): "
                          f"give a checkpoint of the same architecture") from None
    missing = [key for key in missing if not skip(key)]
    if missing or unexpected:
        raise SaflexError(f"{path} does not fit {what} ({len(missing)} missing keys such as "
                          f"{(missing or unexpected)[:2]}, {len(unexpected)} unexpected): give a checkpoint "
                          f"of the same architecture")
