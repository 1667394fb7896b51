"""CLIP from open_clip, with CLIP's input preparation inside the model (paper Sec. 4, Table 4).

`ClipModel` maps (uint8 images, token ids) to (normalised image embeddings, normalised text
embeddings, logit scale), the contract of `objectives.Contrastive`, so augmenters work on raw
images. `image_classifier` is the same image tower with a linear head on normalised features
(LP-FT); its zero-shot head is s * the class embeddings, so both models interpolate with their
zero-shot weights alike (WiSE-FT).
"""
from __future__ import annotations

import logging
import os
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..data.download import offline
from ..errors import SaflexError
from .base import Classifier, ImageNormalize

RANDOM = "random"  # --pretrained random: untrained weights (timing, tests)
# open_clip is imported where it is used: it takes seconds, and every `saflex` command imports this module.


class ClipModel(nn.Module):
    def __init__(self, clip: nn.Module):
        super().__init__()
        import open_clip
        self.prepare = ImageNormalize(open_clip.OPENAI_DATASET_MEAN, open_clip.OPENAI_DATASET_STD)
        self.clip = clip

    def encode_image(self, images: Tensor) -> Tensor:
        return F.normalize(self.clip.encode_image(self.prepare(images)), dim=-1)

    def encode_text(self, tokens: Tensor) -> Tensor:
        return F.normalize(self.clip.encode_text(tokens), dim=-1)

    def forward(self, inputs) -> tuple[Tensor, Tensor, Tensor]:
        images, tokens = inputs[0], inputs[1]
        return self.encode_image(images), self.encode_text(tokens), self.clip.logit_scale.exp()


@torch.no_grad()
def class_embeddings(model: ClipModel, class_tokens: Tensor, chunk: int = 1024) -> Tensor:
    """(C, T, L) caption tokens -> (C, D): per class, the normalised mean of its T normalised captions."""
    classes, templates, length = class_tokens.shape
    flat = class_tokens.reshape(-1, length)
    text = torch.cat([model.encode_text(flat[i:i + chunk]) for i in range(0, len(flat), chunk)])
    return F.normalize(text.reshape(classes, templates, -1).mean(dim=1), dim=-1)


class _Normalized(nn.Module):
    def __init__(self, tower: nn.Module):
        super().__init__()
        self.tower = tower

    def forward(self, x: Tensor) -> Tensor:
        return F.normalize(self.tower(x), dim=-1)


def image_classifier(model: ClipModel, num_classes: int) -> Classifier:
    """CLIP's image tower (shared modules, not copies) + a linear head on normalised features."""
    return Classifier(_Normalized(model.clip.visual), model.clip.visual.output_dim, num_classes, model.prepare)


def set_zero_shot_head(classifier: Classifier, model: ClipModel, class_tokens: Tensor) -> None:
    """head = s * class embeddings, bias 0: the zero-shot classifier as a linear layer."""
    with torch.no_grad():
        classifier.head.weight.copy_(model.clip.logit_scale.exp() * class_embeddings(model, class_tokens))
        classifier.head.bias.zero_()


def weights_source(arch: str, tag: str) -> tuple[str, str]:
    """(file name, URL) of open_clip's weights `tag` of `arch`, for a copy placed by hand."""
    import open_clip
    cfg = open_clip.get_pretrained_cfg(arch, tag)
    if cfg.get("hf_hub"):
        repo, filename = os.path.split(cfg["hf_hub"])  # 'org/name/' means open_clip's default file name
        filename = filename or "open_clip_pytorch_model.bin"
        return filename, f"https://huggingface.co/{repo}/resolve/main/{filename}"
    return os.path.basename(cfg.get("url", "")), cfg.get("url", "")


def _weights_hint(arch: str, tag: str) -> str:
    filename, source = weights_source(arch, tag)
    return f"download {filename} from {source} and pass --pretrained /path/to/{filename}"


def image_size(arch: str) -> int:
    """The input resolution of an open_clip architecture, read from its config (no weights needed)."""
    import open_clip
    config = open_clip.get_model_config(arch)
    if config is None:
        raise SaflexError(f"unknown open_clip architecture {arch!r}; choose one of open_clip.list_models(), "
                          f"e.g. ViT-B-16-quickgelu")
    size = config["vision_cfg"]["image_size"]
    return size[0] if isinstance(size, (tuple, list)) else size


def load_clip(arch: str, pretrained: str) -> ClipModel:
    """open_clip `arch` with weights from a local file, a tag (downloaded by open_clip) or 'random'.

    The OpenAI ViT-B/16 weights need QuickGELU: use the '-quickgelu' architecture with them
    (open_clip only warns on a mismatch, and the model silently degrades).
    """
    import open_clip
    image_size(arch)  # refuses an unknown architecture
    tags = open_clip.list_pretrained_tags_by_model(arch)
    if pretrained == RANDOM:
        source = None
    elif Path(pretrained).is_file():
        source = str(pretrained)
    elif pretrained in tags:
        needs_quick_gelu = open_clip.get_pretrained_cfg(arch, pretrained).get("quick_gelu", False)
        if needs_quick_gelu != open_clip.get_model_config(arch).get("quick_gelu", False):
            raise SaflexError(f"the {pretrained} weights of {arch} need quick_gelu={needs_quick_gelu}, which {arch} "
                              f"lacks (the model would silently degrade): use the "
                              f"{'-quickgelu variant' if needs_quick_gelu else 'variant without -quickgelu'}")
        if offline():
            raise SaflexError(f"CLIP weights {arch}/{pretrained} are not here and SAFLEX_OFFLINE is set: "
                              f"{_weights_hint(arch, pretrained)}")
        source = pretrained
    else:
        raise SaflexError(f"CLIP weights {pretrained!r} not found: not a file, and not a tag of {arch} "
                          f"({', '.join(tags) or 'none'}, or {RANDOM}); pass an existing weights file with --pretrained")
    previous = logging.getLogger().level
    logging.getLogger().setLevel(logging.CRITICAL)  # open_clip logs 'no pretrained weights' and failed downloads
    try:
        clip = open_clip.create_model(arch, pretrained=source)
    except RuntimeError as error:
        if source in tags:
            raise SaflexError(f"open_clip could not download the CLIP weights {arch}/{pretrained} (no network?): "
                              f"{_weights_hint(arch, pretrained)}") from None
        raise SaflexError(f"could not load CLIP weights from {pretrained} into {arch}: {error}") from None
    finally:
        logging.getLogger().setLevel(previous)
    return ClipModel(clip)


def tokenizer(arch: str):
    """open_clip's tokenizer for `arch` (the bundled BPE vocabulary: no download)."""
    import open_clip
    return open_clip.get_tokenizer(arch)
