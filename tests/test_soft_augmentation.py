"""Crop and Soft-Augmentation (paper Table 7): offsets, the shifted canvas, the visible fraction,
the targets and weights against Liu et al.'s formula, and the refusals."""
from __future__ import annotations

import contextlib
import math

import pytest
import torch
import torch.nn.functional as F
from conftest import tiny_mlp

from saflex_cli.augment.base import AugBatch
from saflex_cli.augment.crop import Crop, draw_offsets, translate
from saflex_cli.cli.common import build_configs
from saflex_cli.config import RunConfig
from saflex_cli.errors import SaflexError
from saflex_cli.method.objectives import CrossEntropy
from saflex_cli.method.refiners import SoftAugmentation, make_refiner

OFFSETS = [(3, -5), (0, 0), (-28, 2), (10, 27), (-1, 1)]  # (dy, dx) per sample


def images(batch=len(OFFSETS), channels=3, size=28, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.randint(0, 256, (batch, channels, size, size), generator=g, dtype=torch.uint8)


def hand_shifted(image: torch.Tensor, dy: int, dx: int, fill: torch.Tensor) -> torch.Tensor:
    """The canvas built pixel by pixel: out[i, j] = image[i + dy, j + dx] inside the image, else the fill."""
    _, height, width = image.shape
    out = fill.view(-1, 1, 1).expand_as(image).clone()
    for i in range(height):
        for j in range(width):
            if 0 <= i + dy < height and 0 <= j + dx < width:
                out[:, i, j] = image[:, i + dy, j + dx]
    return out


def test_crop_output_is_the_hand_built_shifted_canvas_and_its_visible_fraction():
    batch = images()
    dy, dx = (torch.tensor(column) for column in zip(*OFFSETS))
    out, visible = translate(batch, dy, dx)
    fill = batch.float().mean(dim=(0, 2, 3)).round().to(torch.uint8)  # the batch's mean pixel per channel
    for index, (y, x) in enumerate(OFFSETS):
        assert torch.equal(out[index], hand_shifted(batch[index], y, x, fill)), (y, x)
    expected = [(28 - abs(y)) * (28 - abs(x)) / 28**2 for y, x in OFFSETS]
    torch.testing.assert_close(visible, torch.tensor(expected))
    assert visible[1] == 1.0 and visible[2] == 0.0  # unmoved, and shifted a whole side


def offset_distribution(side: int, sigma: float) -> dict[int, float]:
    """P(|d| = k) for x ~ N(0, sigma) redrawn while |x| > side, then truncated toward zero."""
    phi = lambda t: 0.5 * (1 + math.erf(t / (sigma * math.sqrt(2))))  # noqa: E731
    kept = 2 * phi(side) - 1
    return {k: (2 * phi(min(k + 1, side)) - 2 * phi(k) if k else 2 * phi(1) - 1) / kept for k in range(side + 1)}


def test_offsets_are_normal_draws_redrawn_beyond_the_side_and_truncated_toward_zero():
    offsets = draw_offsets(40000, 28, 10.5, torch.Generator().manual_seed(0))
    assert offsets.dtype == torch.long and offsets.abs().max() <= 28 and abs(offsets.float().mean()) < 0.2
    law = offset_distribution(28, 10.5)
    assert offsets.float().std() == pytest.approx(math.sqrt(sum(k * k * p for k, p in law.items())), rel=0.02)
    # int() truncates toward zero: P(d = 0) = P(|x| < 1) = 7.6%; rounding would give 3.8%.
    assert (offsets == 0).float().mean() == pytest.approx(law[0], abs=0.006)
    # A sigma far beyond the side: redrawn, not clamped (clamping would pile ~70% on +-4).
    wide = draw_offsets(4000, 4, 10.0, torch.Generator().manual_seed(1))
    assert wide.abs().max() <= 4 and (wide.abs() == 4).float().mean() < 0.01 and len(wide.unique()) == 7


def test_crop_draws_its_offsets_from_the_generator_and_keeps_the_labels():
    batch, labels = images(batch=64), F.one_hot(torch.arange(64) % 3, 3).float()
    out = Crop()(batch, labels, torch.Generator().manual_seed(4))
    generator = torch.Generator().manual_seed(4)
    dy, dx = draw_offsets(64, 28, 10.5, generator), draw_offsets(64, 28, 10.5, generator)
    expected, visible = translate(batch, dy, dx)
    assert torch.equal(out.inputs, expected) and torch.equal(out.meta["visible_fraction"], visible)
    assert torch.equal(out.labels, labels) and len(visible.unique()) > 20  # every sample its own offset
    with pytest.raises(SaflexError, match="aug.sigma = 0.0 is out of range: give a finite number > 0"):
        Crop(sigma=0.0)


def soft_aug_config(**changes) -> RunConfig:
    return RunConfig(family="demo", dataset="x", model="mlp", aug="crop", refine="soft-aug", **changes)


def test_soft_augmentation_targets_weights_and_loss_follow_liu_et_al_for_known_offsets():
    dy, dx = (torch.tensor(column) for column in zip(*OFFSETS))
    _, visible = translate(images(), dy, dx)
    classes, upstream = 4, torch.tensor([0, 3, 1, 2, 0])
    aug = AugBatch(torch.randn(5, 6), F.one_hot(upstream, classes).float(), {"visible_fraction": visible})
    refiner = make_refiner(soft_aug_config(), CrossEntropy(), autocast=contextlib.nullcontext, optimizer=None, full_precision=True,
                           process_group=None, world_size=1)
    assert isinstance(refiner, SoftAugmentation)
    targets, weights, refined = refiner.decide(None, None, aug, None)
    for i, (y, x) in enumerate(OFFSETS):
        v = (28 - abs(y)) * (28 - abs(x)) / 28**2
        p = 1 - (1 - 1 / classes) * (1 - v) ** 2  # k = 2, the published recipe
        row = torch.full((classes,), (1 - p) / (classes - 1))
        row[upstream[i]] = p
        torch.testing.assert_close(targets[i], row)
        assert weights[i].item() == pytest.approx(p / 5)  # the batch mean of p_i * loss_i, not renormalised
    assert weights[2].item() == pytest.approx(1 / classes / 5)  # nothing visible: chance confidence
    torch.testing.assert_close(refined.stats["target_confidence"], 5 * weights.mean())

    torch.manual_seed(0)
    model, x_clean, y_clean = tiny_mlp(6, classes), torch.randn(3, 6), torch.tensor([1, 2, 0])
    loss, _ = refiner.loss(model, x_clean, y_clean, aug, None, None, model)
    logits = model(torch.cat([x_clean, aug.inputs]))
    per_sample = -(targets * F.log_softmax(logits[3:], 1)).sum(1)
    torch.testing.assert_close(loss, F.cross_entropy(logits[:3], y_clean) + (5 * weights * per_sample).mean())


def test_a_soft_upstream_row_gets_the_mixture_of_its_classes_targets():
    upstream = torch.tensor([[0.7, 0.3, 0.0], [0.0, 0.0, 1.0]])
    aug = AugBatch(None, upstream, {"visible_fraction": torch.tensor([0.5, 0.5])})
    targets, weights, _ = SoftAugmentation(CrossEntropy()).decide(None, None, aug, None)
    p = 1 - (2 / 3) * 0.25
    per_class = torch.tensor([[p, (1 - p) / 2, (1 - p) / 2], [(1 - p) / 2, p, (1 - p) / 2],
                              [(1 - p) / 2, (1 - p) / 2, p]])
    torch.testing.assert_close(targets, upstream @ per_class)
    torch.testing.assert_close(targets.sum(1), torch.ones(2))


def test_soft_augmentation_refuses_an_upstream_without_a_visible_fraction():
    aug = AugBatch(torch.randn(2, 6), torch.eye(3)[:2])
    with pytest.raises(SaflexError, match="gives no visible fraction: use it with --aug crop"):
        SoftAugmentation(CrossEntropy()).decide(None, None, aug, None)


def test_the_cli_refuses_soft_augmentation_without_crop_before_any_run():
    with pytest.raises(SaflexError, match=r"which --aug randaug does not give: use --aug crop"):
        build_configs("medmnist", "dermamnist", "randaug", False, "0", refine="soft-aug", train={})


@pytest.mark.parametrize("aug, kept, left_out", [("crop,mixup", [("crop", "soft-aug")], ["mixup"]),
                                                 ("all", [("none", "none")], ["randaug", "mixup"])])
def test_a_list_with_upstreams_soft_augmentation_cannot_read_runs_the_rest_and_names_them(aug, kept, left_out, capsys):
    configs = build_configs("medmnist", "dermamnist", aug, False, "0", refine="soft-aug", train={})
    assert [(c.aug, c.refine) for c in configs] == kept
    said = capsys.readouterr().err
    assert said.count("\n") == 1 and all(f"{name}+soft-aug (--refine soft-aug reads" in said for name in left_out)


def test_crop_is_a_medmnist_upstream_outside_table_1():
    configs = build_configs("medmnist", "dermamnist", "crop", False, "0", refine="none,soft-aug,saflex", train={})
    assert [(c.aug, c.refine) for c in configs] == [("crop", "none"), ("crop", "soft-aug"), ("crop", "saflex")]
    table_1 = build_configs("medmnist", "dermamnist", "all", False, "0", train={})
    assert "crop" not in {c.aug for c in table_1} and len(table_1) == 5
