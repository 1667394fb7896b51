"""--seeds: each seed once. `--seeds 0,0` made two identical runs, and the second was reported as
"held by other workers" once the first had recorded it (issue #11.8)."""
from __future__ import annotations

import pytest

from saflex_cli.cli.common import parse_seeds
from saflex_cli.errors import SaflexError


def test_a_seed_given_twice_is_refused_in_one_line():
    with pytest.raises(SaflexError, match=r"^--seeds lists 0 more than once \('0,1,0'\): give each seed once$"):
        parse_seeds("0,1,0")


def test_distinct_seeds_keep_their_order():
    assert parse_seeds("2, 0,1") == [2, 0, 1]
