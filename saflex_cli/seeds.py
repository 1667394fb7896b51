"""Seed lists as a user types them: `0,1,2`, a range `0-9` (both ends included), or both
(`0-4,10`). A decisive comparison wants ten or more seeds; nobody should have to type them out.
Refused, in one line: a negative seed (numpy's seeds are unsigned), a seed given twice (two
identical runs), an empty range (`5-2`), anything else.
"""
from __future__ import annotations

import re

from .errors import SaflexError

_SEED, _RANGE, _NEGATIVE = re.compile(r"\d+"), re.compile(r"(\d+)\s*-\s*(\d+)"), re.compile(r"-\s*\d+")


def parse_seeds(text: str, what: str = "--seeds") -> list[int]:
    """The seeds of `text` in the order given, each range expanded; `what` names where they came from."""
    seeds: list[int] = []
    for item in (part.strip() for part in str(text).split(",")):
        if _SEED.fullmatch(item):
            seeds.append(int(item))
        elif _RANGE.fullmatch(item):
            first, last = map(int, _RANGE.fullmatch(item).groups())
            if last < first:
                raise SaflexError(f"{what}: the range {item!r} is empty (it counts up: write {last}-{first})")
            seeds.extend(range(first, last + 1))
        elif _NEGATIVE.fullmatch(item):
            raise SaflexError(f"{what} must be integers >= 0 (numpy seeds are unsigned), got {text!r}")
        else:
            raise SaflexError(f"{what} must be integers >= 0 or ranges A-B, comma separated (0,1,2 or 0-9 or "
                              f"0-4,10), got {text!r}")
    repeated = sorted({s for s in seeds if seeds.count(s) > 1})
    if repeated:
        raise SaflexError(f"{what} lists {', '.join(map(str, repeated))} more than once ({text!r}): give each seed once")
    return seeds
