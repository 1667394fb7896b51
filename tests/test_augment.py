"""Upstream augmenters: per-sample randomness, soft labels, and the seed as the only source."""
from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from saflex_cli.augment.corrupt import LabelShiftNoise
from saflex_cli.augment.mixup import Mixup
from saflex_cli.augment.randaug import RandAugment
from saflex_cli.errors import SaflexError
from saflex_cli.registry import AUGMENTERS


def images(batch=32, channels=3, size=28, seed=0):
    g = torch.Generator().manual_seed(seed)
    base = torch.randint(0, 256, (1, channels, size, size), generator=g, dtype=torch.uint8)
    return base.expand(batch, -1, -1, -1).clone()  # identical images: any difference is the augmenter's


def labels(batch=32, classes=5):
    return F.one_hot(torch.arange(batch) % classes, classes).float()


def test_registry_lists_augmenters_and_refuses_unknown():
    assert {"randaug", "mixup", "label-shift"} <= set(AUGMENTERS.names())
    with pytest.raises(SaflexError, match="choose one of"):
        AUGMENTERS.get("cutout-typo")


def test_randaugment_draws_different_ops_per_sample():
    out = RandAugment()(images(), labels(), torch.Generator().manual_seed(0))
    assert out.inputs.dtype == torch.uint8 and out.inputs.shape == (32, 3, 28, 28)
    distinct = {tuple(img.flatten()[:2000].tolist()) for img in out.inputs}
    assert len(distinct) >= 8, "one op per batch would give at most a few distinct images"
    assert torch.equal(out.labels, labels())


def test_randaugment_is_deterministic_given_the_generator():
    a = RandAugment()(images(), labels(), torch.Generator().manual_seed(5)).inputs
    b = RandAugment()(images(), labels(), torch.Generator().manual_seed(5)).inputs
    c = RandAugment()(images(), labels(), torch.Generator().manual_seed(6)).inputs
    assert torch.equal(a, b) and not torch.equal(a, c)


def test_randaugment_refuses_normalised_floats():
    with pytest.raises(TypeError, match="uint8"):
        RandAugment()(images().float(), labels(), torch.Generator())


def test_mixup_soft_labels_follow_the_mixing_coefficient():
    x = torch.randn(64, 3, 4, 4)
    y = labels(64, 4)
    out = Mixup(alpha=0.4)(x, y, torch.Generator().manual_seed(0))
    lam = out.meta["mixing_coefficient"]
    assert lam.unique().numel() > 10, "one coefficient per sample, not per batch"
    torch.testing.assert_close(out.labels.sum(1), torch.ones(64))
    # Recover each sample's partner from the image and check the label is mixed with the same lambda.
    for i in range(64):
        rest = (out.inputs[i] - lam[i] * x[i]) / (1 - lam[i])
        j = ((x - rest).flatten(1).abs().amax(1)).argmin()
        torch.testing.assert_close(out.labels[i], lam[i] * y[i] + (1 - lam[i]) * y[j], rtol=1e-4, atol=1e-4)


def test_mixup_partners_are_shuffled_not_neighbours():
    x = torch.arange(64.0).view(64, 1)
    out = Mixup(alpha=1.0)(x, labels(64, 4), torch.Generator().manual_seed(1))
    lam = out.meta["mixing_coefficient"]
    partner = ((out.inputs[:, 0] - lam * x[:, 0]) / (1 - lam)).round().long()
    neighbour = torch.arange(64).flip(0)
    assert (partner != neighbour).float().mean() > 0.8


def test_label_shift_corrupts_the_requested_share_by_one_class():
    y = labels(4000, 10)
    out = LabelShiftNoise(noise_std=0.1, shift_fraction=0.6)(torch.zeros(4000, 8), y, torch.Generator().manual_seed(0))
    corrupted, true = out.meta["corrupted"], out.meta["true_labels"]
    assert abs(corrupted.float().mean().item() - 0.6) < 0.03
    assert torch.equal(out.labels.argmax(1)[corrupted], (true[corrupted] + 1) % 10)
    assert torch.equal(out.labels.argmax(1)[~corrupted], true[~corrupted])
    assert 0.08 < out.inputs.std().item() < 0.12
