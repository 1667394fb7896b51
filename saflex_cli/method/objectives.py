"""Losses as objects, so the trainer and the SAflex core never branch on the family.

An objective says three things: which (B, K) scores play the role of class logits for an
augmented batch (their log-softmax rows are what SAflex differentiates), the loss of a labelled
batch (the validation gradient g is taken of it), and the training loss of a clean batch plus a
refined augmented batch.
"""
from __future__ import annotations

from typing import Callable, Protocol

import torch
import torch.nn.functional as F
from torch import Tensor

from ..compute.distributed import share
from ..data.batches import input_count


class Objective(Protocol):
    def logits(self, call: Callable, inputs) -> Tensor:
        """(B, K) scores for `inputs`, computed through `call` (the model or a functional twin)."""

    def loss(self, logits: Tensor, targets: Tensor) -> Tensor:
        """Mean loss of a labelled batch; `targets` are class ids (B,) or soft rows (B, K)."""

    def soft_targets(self, targets: Tensor, num_classes: int) -> Tensor:
        """The upstream label rows of a batch, before any augmentation."""

    def rank_labels(self, labels: Tensor, ranks) -> Tensor:
        """Under DDP, this rank's label rows (already its share of the batch's rows) over its classes."""

    def augmented_logits(self, call: Callable, inputs, aug_inputs) -> Tensor:
        """(B_aug, K) scores of the augmented rows, from the forward `training_loss` runs on the
        clean batch and the augmented one together (what a step with both differentiates)."""

    def training_loss(self, model, inputs, targets, aug_inputs=None, aug_labels=None,
                      aug_weights=None) -> Tensor:
        """Mean loss on the clean batch + sum_i w_i * CE(soft y_i, aug_i) (docs/method.md);
        `inputs=None`: the augmented term alone (a step that replaces the batch by its augmentation)."""


def full_precision(logits: Tensor) -> Tensor:
    """Half-precision logits (autocast) up to float32 for the log-softmax; float64 stays float64, so a
    model run in float64 (the DDP test's exact comparison) is differentiated in float64 throughout."""
    return logits if logits.dtype == torch.float64 else logits.float()


def weighted_soft_cross_entropy(logits: Tensor, soft_labels: Tensor, weights: Tensor) -> Tensor:
    """sum_i w_i * CE(y_i, logits_i): linear in w and y, which is what makes Theorem 1 exact."""
    log_probs = F.log_softmax(full_precision(logits), dim=1)
    per_sample = -(soft_labels * log_probs).sum(dim=1)
    return (weights * per_sample).sum()


def concat_inputs(first, second):
    """Concatenate two batches of inputs (tensors, or tuples of tensors) along the batch axis."""
    if isinstance(first, Tensor):
        return torch.cat([first, second])
    return type(first)(concat_inputs(a, b) for a, b in zip(first, second))


class CrossEntropy:
    """Classifier whose forward returns (B, K) class logits.

    `class_weights` (K,) reweights each sample by the weight of its (soft) class, as the
    class-balanced loss of the diffusion experiments does; None is the plain mean.
    """

    def __init__(self, class_weights: Tensor | None = None):
        self.class_weights = class_weights

    def logits(self, call: Callable, inputs) -> Tensor:
        return call(inputs)

    def soft_targets(self, targets: Tensor, num_classes: int) -> Tensor:
        return F.one_hot(targets.long(), num_classes).float()

    def rank_labels(self, labels: Tensor, ranks) -> Tensor:
        return labels  # the classes are the same on every rank

    def loss(self, logits: Tensor, targets: Tensor) -> Tensor:
        if self.class_weights is None:
            return F.cross_entropy(full_precision(logits), targets)
        soft = targets if targets.dim() == 2 else F.one_hot(targets, logits.shape[1]).float()
        sample_weights = soft @ self.class_weights.to(soft)
        per_sample = -(soft * F.log_softmax(full_precision(logits), dim=1)).sum(dim=1)
        return (sample_weights * per_sample).sum() / sample_weights.sum()

    def augmented_logits(self, call: Callable, inputs, aug_inputs) -> Tensor:
        return call(concat_inputs(inputs, aug_inputs))[input_count(inputs):]

    def training_loss(self, model, inputs, targets, aug_inputs=None, aug_labels=None,
                      aug_weights=None) -> Tensor:
        if aug_inputs is None:
            return self.loss(model(inputs), targets)
        if inputs is None:
            return self._augmented_term(model(aug_inputs), aug_labels, aug_weights)
        # One forward over the union, so BatchNorm sees clean and augmented samples together.
        logits = model(concat_inputs(inputs, aug_inputs))
        clean, augmented = logits[: len(targets)], logits[len(targets):]
        return self.loss(clean, targets) + self._augmented_term(augmented, aug_labels, aug_weights)

    def _augmented_term(self, logits: Tensor, aug_labels: Tensor, aug_weights: Tensor) -> Tensor:
        if self.class_weights is not None:
            aug_weights = aug_weights * (aug_labels @ self.class_weights.to(aug_labels))
            aug_weights = aug_weights / aug_weights.sum().clamp_min(1e-12)
        return weighted_soft_cross_entropy(logits, aug_labels, aug_weights)


class Contrastive:
    """CLIP's symmetric InfoNCE, as FLYP fine-tunes with it (paper Eq. 13; Appendix A).

    The model maps (images, texts) to (L2-normalised image embeddings, L2-normalised text
    embeddings, logit scale s), as open_clip's CLIP does. The B captions of a batch are its B
    proxy classes: `logits` are the image->text scores s * g(I) h(T)^T (B x B), upstream label
    rows are the identity (image i belongs to caption i), and same-class pairs count as
    negatives, as in FLYP. Class ids passed as `targets` are not used.

    Training loss of a refined augmented batch (a choice, since the paper writes only the
    image->text term, Eq. 14): the image->text term with SAflex's soft rows y_i over the texts
    and weights w_i, plus the text->image term with its usual positive (image i for text i)
    weighted by the same w_i, where the softmax over images leaves rejected images out. A
    rejected image (w_i = 0) thus leaves the loss entirely, and with uniform weights and identity
    labels (no SAflex) the augmented term is exactly the CLIP loss of the augmented batch. Both
    terms are weighted means over the batch (sum w = 1), like the clean loss, so averaging
    gradients across data-parallel ranks averages the per-rank losses.
    """

    MASKED = -1.0e4  # a logit whose exp is 0 in float32 next to s * cos <= 100, and stays finite

    def logits(self, call: Callable, inputs) -> Tensor:
        image, text, scale = call(inputs)[:3]
        return scale * image @ text.T

    def soft_targets(self, targets: Tensor, num_classes: int) -> Tensor:
        return torch.eye(len(targets), device=targets.device)

    def rank_labels(self, labels: Tensor, ranks) -> Tensor:
        # The proxy classes are the batch's captions: a rank's classes are its own share of them.
        return share(labels.T, ranks).T

    def loss(self, logits: Tensor, targets: Tensor | None = None) -> Tensor:
        logits = full_precision(logits)
        positives = torch.arange(len(logits), device=logits.device)
        return (F.cross_entropy(logits, positives) + F.cross_entropy(logits.T, positives)) / 2

    def augmented_loss(self, logits: Tensor, soft_labels: Tensor, weights: Tensor) -> Tensor:
        """(sum_i w_i CE(y_i, image i -> texts) + sum_i w_i CE(i, text i -> kept images)) / 2."""
        logits = full_precision(logits)
        image_to_text = weighted_soft_cross_entropy(logits, soft_labels, weights)
        kept_images = (weights > 0)[None, :]
        text_logits = logits.T.masked_fill(~kept_images, self.MASKED)
        positives = torch.arange(len(logits), device=logits.device)
        text_to_image = (weights * F.cross_entropy(text_logits, positives, reduction="none")).sum()
        return (image_to_text + text_to_image) / 2

    def _union_logits(self, call: Callable, inputs, aug_inputs) -> tuple[Tensor, Tensor]:
        """Clean and augmented image->text scores from one forward of both batches."""
        images, texts = inputs[0], inputs[1]
        count = len(images)
        if aug_inputs[1] is texts:  # captions untouched by the augmenter: encode them once
            image, text, scale = call(type(inputs)([torch.cat([images, aug_inputs[0]]), texts]))[:3]
            clean_text = aug_text = text
        else:
            image, text, scale = call(concat_inputs(inputs, aug_inputs))[:3]
            clean_text, aug_text = text[:count], text[count:]
        return scale * image[:count] @ clean_text.T, scale * image[count:] @ aug_text.T

    def augmented_logits(self, call: Callable, inputs, aug_inputs) -> Tensor:
        return self._union_logits(call, inputs, aug_inputs)[1]

    def training_loss(self, model, inputs, targets, aug_inputs=None, aug_labels=None,
                      aug_weights=None) -> Tensor:
        if aug_inputs is None:
            return self.loss(self.logits(model, inputs))
        if inputs is None:
            return self.augmented_loss(self.logits(model, aug_inputs), aug_labels, aug_weights)
        clean, augmented = self._union_logits(model, inputs, aug_inputs)
        return self.loss(clean) + self.augmented_loss(augmented, aug_labels, aug_weights)
