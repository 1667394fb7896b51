"""Any timm image model as a backbone: `--model timm/<name>` (timm/resnet18, timm/efficientnet_b0, ...).

timm builds the network without its classifier (num_classes=0: pooled pre-logit features) and
saflex adds the linear head, so the model is a Classifier: `.features(x)` and a linear `.head`,
as pi_mode 'last-layer' needs, with forward = head(features) by construction. Weights come from a
local file only (a timm or torchvision state dict, .safetensors or .pth; nothing is downloaded):
the body must fit it exactly; the file's classifier goes into the head when its shape fits
(same number of classes) and is dropped otherwise.
"""
from __future__ import annotations

import functools
from pathlib import Path
from typing import Callable

from ..errors import SaflexError
from ..registry import BACKBONES
from .base import Classifier, ImageNormalize
from .resnet import NORMALIZATION
from .weights import load_fitting, read_state_dict

PREFIX = "timm/"


@BACKBONES.register_prefix(PREFIX)
def timm_factory(name: str) -> Callable[..., Classifier]:
    """'timm/<name>' -> a factory; an unknown name fails here, before any run starts."""
    import timm
    if not timm.is_model(name):
        raise SaflexError(f"unknown backbone {PREFIX}{name}: timm {timm.__version__} has no model {name!r} "
                          f"(timm.list_models('*{name.split('_')[0]}*') lists similar names)")
    return functools.partial(timm_classifier, name)


def timm_classifier(name: str, num_classes: int, in_channels: int = 3, normalize: str = "timm",
                    pretrained: str = "none") -> Classifier:
    """timm model `name` + a linear head; `normalize` 'timm' uses the mean/std its weights were trained with."""
    import timm
    if pretrained == "imagenet":
        raise SaflexError(f"{PREFIX}{name} loads weights from a local file only (no download): pass --pretrained "
                          f"FILE (e.g. the model.safetensors of a timm checkpoint of {name}) or none")
    net = timm.create_model(name, num_classes=0, in_chans=in_channels, pretrained=False)
    feature_dim = getattr(net, "head_hidden_size", None) or net.num_features
    model = Classifier(net, feature_dim, num_classes, normalization(net, normalize, in_channels))
    if pretrained != "none":
        load_weights(model, Path(pretrained), classifier_names(net))
    return model


def normalization(net, normalize: str, in_channels: int) -> ImageNormalize:
    """uint8 images -> the normalised input the weights expect; a channel count other than the
    statistics' gets their average on every channel."""
    if normalize == "timm":
        mean, std = net.pretrained_cfg["mean"], net.pretrained_cfg["std"]
    elif normalize in NORMALIZATION:
        mean, std = NORMALIZATION[normalize]
    else:
        raise SaflexError(f"unknown normalisation {normalize!r}; choose timm, {', '.join(NORMALIZATION)}")
    if len(mean) != in_channels:
        mean, std = [sum(mean) / len(mean)] * in_channels, [sum(std) / len(std)] * in_channels
    return ImageNormalize(mean, std)


def classifier_names(net) -> tuple[str, ...]:
    names = net.pretrained_cfg.get("classifier") or ()
    return (names,) if isinstance(names, str) else tuple(names)


def load_weights(model: Classifier, path: Path, classifiers: tuple[str, ...]) -> None:
    """The body strictly; the file's first classifier into the head if its shape fits, else dropped."""
    state = read_state_dict(path)
    load_fitting(model.body, state, path, "this timm model",
                 skip=lambda key: any(key.startswith(f"{name}.") for name in classifiers))
    head = {key.removeprefix(f"{classifiers[0]}."): value for key, value in state.items()
            if classifiers and key.startswith(f"{classifiers[0]}.")}
    if {key: value.shape for key, value in head.items()} == \
            {key: value.shape for key, value in model.head.state_dict().items()}:
        model.head.load_state_dict(head)
