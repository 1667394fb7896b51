"""Tabular CutMix: the share of replaced cells, where their values come from, and untouched labels."""
from __future__ import annotations

import pytest
import torch

from saflex_cli.errors import SaflexError
from saflex_cli.registry import AUGMENTERS


def batch(rows: int = 512, cols: int = 12) -> tuple[torch.Tensor, torch.Tensor]:
    x = torch.arange(rows * cols, dtype=torch.float32).view(rows, cols)  # every cell distinct
    labels = torch.nn.functional.one_hot(torch.arange(rows) % 3, 3).float()
    return x, labels


@pytest.mark.parametrize("prob", [0.1, 0.3, 0.7])
def test_fraction_of_replaced_cells_matches_the_probability(prob):
    x, labels = batch()
    out = AUGMENTERS.get("cutmix")(prob=prob)(x, labels, torch.Generator().manual_seed(0))
    changed = (out.inputs != x).float().mean().item()
    # A cell is replaced with prob p, by its partner's value, which is its own when the row drew itself (1/B).
    assert changed == pytest.approx(prob * (1 - 1 / len(x)), abs=0.02)
    assert torch.equal(out.labels, labels)


def test_replaced_cells_come_from_one_partner_row_same_column():
    x, labels = batch(64, 6)
    out = AUGMENTERS.get("cutmix")(prob=0.5)(x, labels, torch.Generator().manual_seed(1))
    for row in range(len(x)):
        moved = (out.inputs[row] != x[row]).nonzero().flatten()
        if len(moved) == 0:
            continue
        source_rows = {int((x[:, c] == out.inputs[row, c]).nonzero()) for c in moved}
        assert len(source_rows) == 1  # one partner per row, as in SAINT's cutmix
        partner = source_rows.pop()
        assert torch.equal(out.inputs[row, moved], x[partner, moved])


def test_same_generator_state_same_batch_and_edge_probabilities():
    x, labels = batch()
    cutmix = AUGMENTERS.get("cutmix")(prob=0.3)
    a = cutmix(x, labels, torch.Generator().manual_seed(5)).inputs
    b = cutmix(x, labels, torch.Generator().manual_seed(5)).inputs
    assert torch.equal(a, b)
    assert torch.equal(AUGMENTERS.get("cutmix")(prob=0.0)(x, labels, torch.Generator()).inputs, x)
    with pytest.raises(SaflexError, match=r"aug.prob = 1.5 is out of range: give a number in \[0, 1\]"):
        AUGMENTERS.get("cutmix")(prob=1.5)
