"""Paired-by-seed differences between two settings, with a 95% interval (readings.py reads it).

Two runs with the same seed share their initial weights, data order and split; their difference
removes that shared noise, so a gain is read from the per-seed differences (a t interval over
them), not from two independent means.
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


def half_width(spread: float, n: int) -> float:
    """The half width of the 95% t interval of the mean of n differences of std `spread`."""
    return float(stats.t.ppf(0.5 + LEVEL / 2, n - 1)) * spread / math.sqrt(n)


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
    half = half_width(std, len(seeds))
    return PairedGain(seeds, mean, std, mean - half, mean + half)


def interval_text(gain: PairedGain) -> str:
    if gain.n < 2:
        return "—"
    return f"[{gain.low:+.2f}, {gain.high:+.2f}]"
