"""What a paired gain decides about the paper's gain G for the same comparison (issue 24).

"Not distinguishable from zero" does not say whether the paper's gain is excluded too. A 95%
interval [lo, hi] of the per-seed differences (comparison.py) reads, for G > 0:

- reproduced: lo > 0 (and G lies inside, above or below the interval);
- below zero: hi < 0 (G is then excluded as well);
- ruled out: hi < G while the interval still holds zero;
- undecided: the interval holds both 0 and G. The reading then says how many seeds would decide
  at the observed paired spread s: the n at which t(n-1, 0.975) * s / sqrt(n) < |G| / 2, so that
  an interval that wide cannot hold both.

Where G < 0 (the upstream pattern: an upstream below No Aug) the same readings mirror: reproduced
when hi < 0, ruled out when lo > G, above zero when lo > 0. Where the paper has no value for a
dataset, G is the paper's smallest gain for the same comparison in the family's table
(`reference_gain`), and the reading says so.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

from .comparison import half_width
from .paper import paper_tables, paper_value


@dataclass(frozen=True)
class Reference:
    """The gain a paired gain is read against, and where it comes from."""

    gain: float
    source: str  # "" for the paper's own value for this dataset; else how it was chosen


@dataclass(frozen=True)
class Reading:
    decision: str  # reproduced | ruled out | below zero | above zero | undecided | not distinguishable from zero | one seed
    text: str  # the sentence the report prints
    seeds_to_decide: int | None = None  # for an undecided reading: the seeds that would decide it


def seeds_to_decide(spread: float, gain: float) -> int:
    """The least n >= 2 whose interval at this spread is narrower than |gain| (half width < |gain|/2).

    The half width falls as n grows, so a doubling search and a bisection find it."""
    target = abs(gain) / 2
    decides = lambda n: half_width(spread, n) < target  # noqa: E731
    low, high = 1, 2  # decides(low) is false by convention (one seed has no interval)
    while not decides(high):
        low, high = high, 2 * high
    while high - low > 1:
        middle = (low + high) // 2
        low, high = (low, middle) if decides(middle) else (middle, high)
    return high


def read_gain(low: float, high: float, reference: Reference | None, spread: float, n: int) -> Reading:
    """The reading of a 95% interval [low, high] of n paired differences of std `spread` against G."""
    if n < 2:
        return Reading("one seed", "one seed: no interval")
    if reference is None or reference.gain == 0:
        decision = "above zero" if low > 0 else "below zero" if high < 0 else "not distinguishable from zero"
        return Reading(decision, decision)
    gain = reference.gain
    # Mirror a negative G onto a positive one: the sign of the paper's effect is "toward".
    sign = 1.0 if gain > 0 else -1.0
    bottom, top, target = sign * low, sign * high, sign * gain
    bottom, top = min(bottom, top), max(bottom, top)
    toward, away = ("above", "below") if sign > 0 else ("below", "above")
    paper = f"the paper's {gain:+.2f}" + (f" ({reference.source})" if reference.source else "")
    if bottom > 0:
        where = "inside" if bottom <= target <= top else (toward if target > top else away)
        return Reading("reproduced", f"reproduced: {toward} zero; {paper} lies {where} the interval")
    if top < 0:
        return Reading(f"{away} zero", f"{away} zero: {paper} is ruled out")
    if top < target:
        return Reading("ruled out", f"ruled out: {paper} lies {toward} the interval, which holds zero "
                                    f"(not distinguishable from zero)")
    needed = seeds_to_decide(spread, gain)
    return Reading("undecided", f"undecided: the interval holds 0 and {paper}; {needed} seeds would decide it "
                                f"at the observed spread {spread:.2f}", needed)


def reference_gain(tables: tuple[int, ...], method: str, versus: str, model: str, column: str) -> Reference | None:
    """The paper's gain of `method` over `versus` on `column`; where the paper has no value for the
    column, the smallest (in size) of its gains for that comparison on the other columns of
    `tables`, provided they share a sign (mixed signs make no claim to test); else None."""
    ours, theirs = paper_value(tables, method, model, column), paper_value(tables, versus, model, column)
    if ours and theirs:
        return Reference(ours[0] - theirs[0], "")
    frame = paper_tables()
    rows = frame[frame.table.isin(tables) & (frame.model == model) & (frame.method == method)]
    gains = {}
    for other in dict.fromkeys(rows.column):
        ours, theirs = paper_value(tables, method, model, other), paper_value(tables, versus, model, other)
        if ours and theirs:
            gains[other] = ours[0] - theirs[0]
    signs = {math.copysign(1.0, g) for g in gains.values()}
    if not gains or len(signs) > 1:
        return None
    smallest = min(gains, key=lambda name: abs(gains[name]))
    return Reference(gains[smallest], f"no paper value here; its smallest of {len(gains)} in Table "
                                      f"{rows.table.iloc[0]}, {smallest}")
