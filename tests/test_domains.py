"""Every settable key of every family has a domain, and a value outside it is refused in one line
naming the key, the value and the range, before anything is written (domains.py)."""
from __future__ import annotations

import dataclasses
import os
import subprocess
import sys
from pathlib import Path

import pytest

from saflex_cli.cli import app
from saflex_cli.errors import SaflexError
from saflex_cli.registry import FAMILIES
from saflex_cli.settings import check_run, domain_of, settable_keys

REPO = Path(__file__).resolve().parents[1]
# Values tried, in order, until one parses as the key's type and lies outside its domain: by --set,
# then (an empty text cannot be written there) by a --config TOML file.
OUTSIDE = ("-1", "nan", "-inf", "inf", "0", "2", "99", "1.5", "[0.9,0.1]", "[]", "[-1]", "bogus")
OUTSIDE_IN_A_FILE = ('""', '[[""]]')
FAMILY_NAMES = tuple(FAMILIES.names())


def family_runs(family: str):
    """The family's recipe under each of its augmenters that takes arguments (and without one)."""
    recipe = FAMILIES.get(family)
    augs = [a for a in recipe.augmenters + recipe.extra_augmenters if a != "pool"]
    return [(aug, dataclasses.replace(recipe.defaults(recipe.datasets[0]), aug=aug)) for aug in augs]


def small_image_folder(folder: Path) -> Path:
    """A two-class ImageFolder tree of tiny PNGs for the images command (it reads its classes first)."""
    from PIL import Image
    root = folder / "images"
    for name in ("a", "b"):
        (root / "train" / name).mkdir(parents=True, exist_ok=True)
        for i in range(10):
            Image.new("L", (4, 4), color=25 * i).save(root / "train" / name / f"{i}.png")
    return root


def small_table(folder: Path) -> list[str]:
    """--csv flags for a tiny table, so the tabular command (which reads its width first) has one."""
    path = folder / "tiny.csv"
    path.write_text("a,b,y\n" + "".join(f"{i},{i % 3},{i % 2}\n" for i in range(40)))
    return ["--csv", str(path), "--target", "y"]


def refusal(family: str, aug: str, key: str, raw: str, out: Path, in_file: bool = False) -> str | None:
    """The one-line message the command gives for `--set key=raw`, or `key = raw` in a --config file
    (None: it was accepted)."""
    given = ["--set", f"{key}={raw}"]
    if in_file:
        head, _, rest = key.partition(".")
        path = out.parent / "settings.toml"
        path.write_text(f"[{head}]\n{rest} = {raw}\n" if rest else f"{key} = {raw}\n")
        given = ["--config", str(path)]
    args = [family, "--aug", aug, "--seeds", "0", *given, "--out", str(out), "--dry-run"]
    if family == "tabular":
        args += small_table(out.parent)
    if family == "images":
        args += ["--root", str(small_image_folder(out.parent))]
    if aug != "none":
        args += ["--refine", "none"]
    try:
        app(args=args, standalone_mode=False)
    except SaflexError as error:
        return str(error)
    return None


@pytest.mark.parametrize("family", FAMILY_NAMES)
def test_every_key_of_every_family_refuses_a_value_outside_its_domain(family, tmp_path):
    out = tmp_path / "out"
    walked = set()
    for aug, config in family_runs(family):
        for key in settable_keys(config):
            if key in walked:
                continue
            walked.add(key)
            domain = domain_of(config, key)
            assert domain is not None, f"{family}: {key} has no declared domain"
            if domain.words.startswith("true or false"):  # a boolean: anything else does not parse as one
                assert "is not a valid bool" in refusal(family, aug, key, "maybe", out), key
                continue
            tries = [(raw, False) for raw in OUTSIDE] + [(raw, True) for raw in OUTSIDE_IN_A_FILE]
            messages = (refusal(family, aug, key, raw, out, in_file) for raw, in_file in tries)
            message = next((m for m in messages if m and " is out of range: give " in m), None)
            assert message, f"{family}: no value outside {key}'s domain is refused"
            assert message.startswith(f"{key} = ") and message.endswith(domain.words) and "\n" not in message
            assert not out.exists() or not any(out.rglob("*")), f"{key}: something was written"
    assert {"optim.lr", "saflex.beta", "batch_size"} <= walked


@pytest.mark.parametrize("family", FAMILY_NAMES)
def test_every_recipe_default_is_within_its_domains(family):
    recipe = FAMILIES.get(family)
    for dataset in recipe.datasets:
        for aug, _ in family_runs(family):
            check_run(dataclasses.replace(recipe.defaults(dataset), aug=aug))  # raises if one is outside


def saflex(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "SAFLEX_OFFLINE": "1", "OMP_NUM_THREADS": "1", "PYTHONPATH": str(REPO)}
    return subprocess.run([sys.executable, "-m", "saflex_cli", *args], capture_output=True, text=True, env=env,
                          timeout=300, cwd=cwd)


# The inputs of issue 22 that ended in a traceback, were accepted, or started a run that failed.
ISSUE_INPUTS = [
    (("--lr", "nan"), "optim.lr = nan is out of range: give a finite number > 0"),
    (("--lr", "-1"), "optim.lr = -1.0 is out of range"),
    (("--batch-size", "0"), "batch_size = 0 is out of range: give an integer >= 1"),
    (("--batch-size", "-5"), "batch_size = -5 is out of range"),
    (("--set", "optim.weight_decay=-1"), "optim.weight_decay = -1.0 is out of range: give a finite number >= 0"),
    (("--aug", "cutmix", "--set", "aug.prob=2"), "aug.prob = 2.0 is out of range: give a number in [0, 1]"),
    (("--aug", "mixup", "--set", "aug.alpha=-1"), "aug.alpha = -1.0 is out of range: give a finite number > 0"),
    (("--aug", "randaug", "--set", "aug.magnitude=99"), "aug.magnitude = 99 is out of range: give an integer in [0, 30]"),
    (("--beta", "-inf", "--saflex"), "saflex.beta = -inf is out of range: give a number >= 0, or inf"),
]


def test_the_issues_inputs_exit_2_in_one_line_and_leave_records_as_they_were(tmp_path):
    out = tmp_path / "results"
    record = out / "runs" / "digits" / "a_record.json"
    record.parent.mkdir(parents=True)
    record.write_bytes(b'{"status": "completed"}\n')
    before = sorted(p for p in out.rglob("*"))
    for args, message in ISSUE_INPUTS:
        family = "medmnist" if {"randaug", "mixup"} & set(args) else "tabular" if "cutmix" in args else "demo"
        aug = () if "--aug" in args else ("--aug", "label-shift")
        aug += tuple(small_table(tmp_path)) if family == "tabular" else ()
        result = saflex(family, *aug, *args, "--seeds", "0", "--epochs", "1", "--out", str(out), cwd=tmp_path)
        lines = result.stderr.strip().splitlines()
        assert result.returncode == 2 and len(lines) == 1 and message in lines[0], (args, result.stderr)
        assert sorted(p for p in out.rglob("*")) == before and record.read_bytes() == b'{"status": "completed"}\n'


def test_the_pi_mode_domain_names_every_pi_estimator():
    from saflex_cli.config import SaflexConfig
    from saflex_cli.domains import field_domains
    from saflex_cli.method.pi import PI_ESTIMATORS
    assert field_domains(SaflexConfig)["pi_mode"].words == "one of: " + ", ".join(PI_ESTIMATORS)
