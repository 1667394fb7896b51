"""The allowed values of every setting, declared once beside what they constrain.

A config field says its domain in its annotation, `lr: Annotated[float, POSITIVE] = 1e-3`; an
augmenter's argument says it in its constructor's signature the same way; a family's option in
its Recipe.options entry (families/base.Option). The dataclasses check their own fields when
built (so any RunConfig holds only allowed values) and `check_run` checks a resolved config's
options and augmenter arguments, before any claim, record or download.

Hand-written, not pydantic or attrs validators: the configs stay the stdlib frozen dataclasses
their identities are hashed from (a library's dataclass would change what `asdict` and equality
see, and import time, which `saflex --help` avoids), the rules are a dozen small predicates (with
`inf` allowed for β and increasing tuples), and the message must be one line naming the key, its
value and the range, which a library's multi-line validation report is not.
"""
from __future__ import annotations

import functools
import math
import typing
from dataclasses import dataclass
from typing import Callable

from .errors import SaflexError


@dataclass(frozen=True)
class Domain:
    """A set of allowed values: a predicate, and the words that name the set in a message."""

    allows: Callable[[object], bool]
    words: str

    def check(self, key: str, value) -> None:
        if not self.allows(value):
            raise SaflexError(f"{key} = {value!r} is out of range: give {self.words}")


def _number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and not math.isnan(value)


def _integer(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def positive() -> Domain:
    return Domain(lambda v: _number(v) and math.isfinite(v) and v > 0, "a finite number > 0")


def non_negative(inf: str | None = None) -> Domain:
    """>= 0 and finite; with `inf` (what inf means), inf too."""
    if inf:
        return Domain(lambda v: _number(v) and v >= 0, f"a number >= 0, or inf ({inf})")
    return Domain(lambda v: _number(v) and math.isfinite(v) and v >= 0, "a finite number >= 0")


def interval(low: float, high: float, *, low_open: bool = False, high_open: bool = False) -> Domain:
    """Numbers between low and high; an open end excludes it ([0, 1] for a probability)."""
    def allows(v) -> bool:
        return _number(v) and (v > low if low_open else v >= low) and (v < high if high_open else v <= high)
    return Domain(allows, f"a number in {'(' if low_open else '['}{low:g}, {high:g}{')' if high_open else ']'}")


PROBABILITY = interval(0.0, 1.0)


def integer(at_least: int, at_most: int | None = None, note: str = "") -> Domain:
    words = f"an integer in [{at_least}, {at_most}]" if at_most is not None else f"an integer >= {at_least}"
    return Domain(lambda v: _integer(v) and v >= at_least and (at_most is None or v <= at_most),
                  words + (f" ({note})" if note else ""))


def one_of(*values) -> Domain:
    return Domain(lambda v: any(type(v) is type(c) and v == c for c in values), "one of: " + ", ".join(map(str, values)))


def text(what: str = "a non-empty text") -> Domain:
    return Domain(lambda v: isinstance(v, str) and v.strip() != "", what)


BOOLEAN = Domain(lambda v: isinstance(v, bool), "true or false")
COLUMN = Domain(lambda v: isinstance(v, str) and v.strip() != "" or _integer(v) and v >= 0,
                "a column name or index")


def increasing(low: float, high: float) -> Domain:
    """A strictly increasing tuple of numbers in the open interval (low, high), e.g. LR milestones."""
    def allows(v) -> bool:
        return (isinstance(v, tuple) and all(_number(x) and low < x < high for x in v)
                and all(a < b for a, b in zip(v, v[1:])))
    return Domain(allows, f"increasing numbers in ({low:g}, {high:g}), in brackets: [0.5,0.75]")


def each(inner: Domain, *, non_empty: bool = False) -> Domain:
    """A tuple (a list, read from a record) whose every item is in `inner`."""
    def allows(v) -> bool:
        return isinstance(v, (tuple, list)) and (len(v) > 0 or not non_empty) and all(inner.allows(x) for x in v)
    return Domain(allows, f"a{' non-empty' if non_empty else ''} list in brackets of {inner.words}")


def optional(inner: Domain) -> Domain:
    """None (unset) or a value of `inner`."""
    return Domain(lambda v: v is None or inner.allows(v), f"{inner.words} (or leave it unset)")


def declared(annotation) -> Domain | None:
    """The Domain in an `Annotated[type, Domain]` annotation, if any."""
    return next((m for m in getattr(annotation, "__metadata__", ()) if isinstance(m, Domain)), None)


@functools.cache
def field_domains(cls) -> dict[str, Domain]:
    """A dataclass's (or a constructor's) declared domains, by field (argument) name."""
    hints = typing.get_type_hints(cls, include_extras=True)
    return {name: domain for name, hint in hints.items() if (domain := declared(hint)) is not None}


def check_fields(config, prefix: str = "") -> None:
    """Every declared field of a config dataclass within its domain; called by its __post_init__."""
    for name, domain in field_domains(type(config)).items():
        domain.check(f"{prefix}{name}", getattr(config, name))


def check_arguments(constructor, arguments: dict) -> None:
    """An augmenter's arguments within the domains its constructor declares (keys as `aug.NAME`)."""
    for name, domain in field_domains(constructor).items():
        if name in arguments:
            domain.check(f"aug.{name}", arguments[name])
