"""torchvision ResNets as Classifiers, for the diffusion experiments (paper Table 3, ALIA's setup).

ResNet-50 starts from the ImageNet weights ALIA used (torchvision IMAGENET1K_V1, the same
tensors as timm's `resnet50.tv_in1k`), gets a new head and is fine-tuned in full. `pretrained`
is "imagenet" (torch hub cache, downloaded once if the network allows), "none" (random init), or
a local file (torchvision .pth or timm .safetensors/.pth state dict). `tiny_resnet` is a narrow
ResNet-10 for smoke tests on a CPU; it has no released ImageNet weights.
"""
from __future__ import annotations

import hashlib
from pathlib import Path

import torch
import torchvision
from torch import nn
from torchvision.models.resnet import ResNet

from ..data.download import download
from ..errors import SaflexError
from ..registry import BACKBONES
from .base import Classifier, ImageNormalize
from .resnet_small import resnet_body
from .weights import load_fitting, read_state_dict

IMAGENET1K_V1 = "https://download.pytorch.org/models/resnet50-0676ba61.pth"  # torchvision's ResNet50_Weights.IMAGENET1K_V1
NORMALIZATION = {"imagenet": ([0.485, 0.456, 0.406], [0.229, 0.224, 0.225]), "none": ([0.0] * 3, [1.0] * 3)}


def imagenet_weights_file() -> Path:
    """The torchvision checkpoint in the torch hub cache, fetched (and its SHA-256 prefix checked) if absent."""
    path = Path(torch.hub.get_dir()) / "checkpoints" / Path(IMAGENET1K_V1).name
    if not path.is_file():
        try:
            download([IMAGENET1K_V1], path, None, timeout=60.0)
        except SaflexError as error:
            raise SaflexError(f"{error}; or pass --pretrained FILE (torchvision's resnet50-0676ba61.pth or timm's "
                              f"resnet50.tv_in1k weights)") from None
    prefix = path.stem.split("-")[-1]
    if hashlib.sha256(path.read_bytes()).hexdigest()[: len(prefix)] != prefix:
        raise SaflexError(f"{path} is not torchvision's ResNet-50 IMAGENET1K_V1 (SHA-256 does not start with {prefix}): "
                          f"delete it and place the file from {IMAGENET1K_V1} there")
    return path


def load_body_weights(net: nn.Module, path: Path) -> None:
    """Load everything but the classifier head; refuse a file that does not fit the body."""
    load_fitting(net, read_state_dict(path), path, "this ResNet", skip=lambda key: key.startswith("fc."))


def normalization(name: str) -> ImageNormalize:
    if name not in NORMALIZATION:
        raise SaflexError(f"unknown normalisation {name!r}; choose {', '.join(NORMALIZATION)}")
    return ImageNormalize(*NORMALIZATION[name])


def as_classifier(net: ResNet, num_classes: int, normalize: str) -> Classifier:
    feature_dim = net.fc.in_features
    net.fc = nn.Identity()
    return Classifier(net, feature_dim, num_classes, normalization(normalize))


@BACKBONES.register("resnet50")
def resnet50(num_classes: int, normalize: str = "imagenet", pretrained: str = "imagenet") -> Classifier:
    net = torchvision.models.resnet50()
    if pretrained == "imagenet":
        load_body_weights(net, imagenet_weights_file())
    elif pretrained != "none":
        load_body_weights(net, Path(pretrained))
    return as_classifier(net, num_classes, normalize)


@BACKBONES.register("tiny_resnet")
def tiny_resnet(num_classes: int, normalize: str = "imagenet", pretrained: str = "none", width: int = 16) -> Classifier:
    """ResNet-10 layout (one basic block per stage) at width 16 with a 3x3 stem: smoke tests on a CPU."""
    body = resnet_body(3, (1, 1, 1, 1), width)
    if pretrained == "imagenet":
        raise SaflexError("tiny_resnet has no released ImageNet weights: use --pretrained none or a local file")
    if pretrained != "none":
        load_body_weights(body, Path(pretrained))
    return Classifier(body, width * 8, num_classes, normalization(normalize))
