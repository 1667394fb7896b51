"""Paired-by-seed differences between two settings, with a 95% interval, and their verdict.

Two runs with the same seed share their initial weights, data order and split; their difference
removes that shared noise, so a gain is read from the per-seed differences (a t interval over
them), not from two independent means. The sign test of the paper's gain stays beside it.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy import stats

LEVEL = 0.95


@dataclass(frozen=True)
class PairedGain:
    seeds: tuple[int, ...]
    mean: float
    std: float
    low: float  # the 95% t interval of the mean difference (nan with one seed)
    high: float

    @property
    def n(self) -> int:
        return len(self.seeds)

    @property
    def covers_zero(self) -> bool:
        return not (self.low > 0 or self.high < 0)


def paired_gain(ours: dict[int, float], base: dict[int, float]) -> PairedGain | None:
    """ours[s] - base[s] over the seeds both have; None when they share none."""
    seeds = tuple(sorted(set(ours) & set(base)))
    if not seeds:
        return None
    differences = np.array([ours[s] - base[s] for s in seeds])
    mean = float(differences.mean())
    if len(seeds) < 2:
        return PairedGain(seeds, mean, math.nan, math.nan, math.nan)
    std = float(differences.std(ddof=1))
    half = float(stats.t.ppf(0.5 + LEVEL / 2, len(seeds) - 1)) * std / math.sqrt(len(seeds))
    return PairedGain(seeds, mean, std, mean - half, mean + half)


def verdict(gain: PairedGain, paper_gain: float | None) -> str:
    """The interval's reading, then the sign test against the paper's gain where it has one."""
    if gain.n < 2:
        reading = "one seed: no interval"
    elif gain.covers_zero:
        reading = "not distinguishable from zero"
    else:
        reading = "above zero" if gain.low > 0 else "below zero"
    if paper_gain is None:
        return reading
    same_sign = np.sign(gain.mean) == np.sign(paper_gain)
    return f"{reading}; sign {'agrees ✓' if same_sign else 'differs ✗'} with the paper's"


def interval_text(gain: PairedGain) -> str:
    if gain.n < 2:
        return "—"
    return f"[{gain.low:+.2f}, {gain.high:+.2f}]"
