"""Upstream augmenters: per-sample randomness, soft labels, and the seed as the only source."""
from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
import torchvision.transforms.v2.functional as TF
from torch import Tensor

from saflex_cli.augment.corrupt import LabelShiftNoise
from saflex_cli.augment.mixup import Mixup
from saflex_cli.augment.randaug import NUM_BINS, OPS, SIGNED, RandAugment
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


def torchvision_op(op: str, sign: int, image: Tensor, magnitude: int = 9) -> Tensor:
    """The oracle: torchvision's own function for one (op, sign) on one image, as its RandAugment calls it."""
    height, width = image.shape[-2:]

    def level(high):
        return float(torch.linspace(0.0, high, NUM_BINS)[magnitude])

    def affine(**kw):
        return TF.affine(image, angle=0.0, translate=kw.get("translate", [0, 0]), scale=1.0,
                         shear=kw.get("shear", [0.0, 0.0]), interpolation=TF.InterpolationMode.NEAREST,
                         fill=0, center=[0, 0])

    shear = math.degrees(math.atan(sign * level(0.3)))
    factor = 1.0 + sign * level(0.9)
    return {
        "identity": lambda: image,
        "shear_x": lambda: affine(shear=[shear, 0.0]),
        "shear_y": lambda: affine(shear=[0.0, shear]),
        "translate_x": lambda: affine(translate=[sign * int(level(150.0 / 331.0 * width)), 0]),
        "translate_y": lambda: affine(translate=[0, sign * int(level(150.0 / 331.0 * height))]),
        "rotate": lambda: TF.rotate(image, sign * level(30.0), fill=0),
        "brightness": lambda: TF.adjust_brightness(image, factor),
        "color": lambda: TF.adjust_saturation(image, factor),
        "contrast": lambda: TF.adjust_contrast(image, factor),
        "sharpness": lambda: TF.adjust_sharpness(image, factor),
        "posterize": lambda: TF.posterize(image, int(8 - round(magnitude / ((NUM_BINS - 1) / 4)))),
        "solarize": lambda: TF.solarize(image, float(torch.linspace(255.0, 0.0, NUM_BINS)[magnitude])),
        "autocontrast": lambda: TF.autocontrast(image),
        "equalize": lambda: TF.equalize(image),
    }[op]()


def varied_images(batch=12, channels=3, size=28, seed=0):
    g = torch.Generator().manual_seed(seed)
    smooth = F.interpolate(torch.rand(batch, channels, 7, 7, generator=g), size=size, mode="bilinear")
    noise = torch.rand(batch, channels, size, size, generator=g) * 0.3
    low = torch.rand(batch, 1, 1, 1, generator=g) * 0.5  # each image its own range, for the per-image ops
    return ((low + (smooth + noise) * (1 - low)).clamp(0, 1) * 255).to(torch.uint8)


def assert_same_up_to_rounding(got: Tensor, want: Tensor) -> None:
    """Equal but for float32 rounding that can move a pixel by one level, rarely."""
    diff = (got.int() - want.int()).abs()
    assert diff.max() <= 1 and (diff > 0).float().mean() < 1e-3, (diff.max(), (diff > 0).float().mean())


@pytest.mark.parametrize("channels", [1, 3])
def test_randaugment_every_op_matches_torchvision(channels):
    batch = varied_images(channels=channels)
    augment = RandAugment()
    for index, op in enumerate(OPS):
        for sign in ((1, -1) if op in SIGNED else (1,)):
            got = augment.apply(batch, torch.full((len(batch),), index), torch.full((len(batch),), sign))
            want = torch.stack([torch_op[0] for torch_op in (torchvision_op(op, sign, img[None]) for img in batch)])
            assert_same_up_to_rounding(got, want)
            if op != "identity" and not (op == "color" and channels == 1):
                assert not torch.equal(got, batch), f"{op} {sign:+d} changed nothing"


def test_randaugment_gives_each_sample_its_own_draws():
    batch, generator = varied_images(batch=64), torch.Generator().manual_seed(3)
    out = RandAugment()(batch, labels(64), generator).inputs
    generator.manual_seed(3)
    augment, want, chosen = RandAugment(), batch, set()
    for _ in range(augment.num_ops):
        choice, sign = augment.draw(64, generator)
        want = torch.stack([torchvision_op(OPS[c], s, img[None])[0] for img, c, s in zip(want, choice, sign)])
        chosen |= set(choice.tolist())
    assert len(chosen) > 8 and (sign < 0).any()  # samples really drew different ops and signs
    assert_same_up_to_rounding(out, want)


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
