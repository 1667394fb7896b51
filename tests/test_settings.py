"""Settings and sweeps: every key reachable, checked against the dataclasses, expanded as a cross
product into runs whose identities cover exactly what changes their numbers."""
from __future__ import annotations

import dataclasses
import json
import typing

import pytest
from typer.testing import CliRunner

from saflex_cli.cli import app
from saflex_cli.config import CHOICES, OptimConfig, RunConfig, SaflexConfig
from saflex_cli.errors import SaflexError
from saflex_cli.registry import FAMILIES
from saflex_cli.settings import Setting, apply_setting, expand, parse_assignment, read_config_file, settable_keys


def base(aug="label-shift", refine="none", seed=0) -> RunConfig:
    return dataclasses.replace(FAMILIES.get("demo").defaults("digits"), aug=aug, refine=refine, seed=seed)


def test_a_sweep_is_the_cross_product_and_upstream_rows_are_shared():
    configs = [base(refine=r, seed=s) for r in ("none", "saflex") for s in (0, 1)]
    runs = expand(configs, [parse_assignment("saflex.beta=0,0.1,inf"), parse_assignment("saflex.tau=0.01,0.1")])
    saflex = [c for c in runs if c.refine == "saflex"]
    assert len(saflex) == 2 * 3 * 2 and len({c.identity() for c in saflex}) == 12
    assert {(c.saflex.beta, c.saflex.tau) for c in saflex} == {(b, t) for b in (0.0, 0.1, float("inf")) for t in (0.01, 0.1)}
    upstream = [c for c in runs if c.refine == "none"]
    assert len(upstream) == 2  # beta and tau are not read by an upstream row: one run per seed
    assert base().identity() == dataclasses.replace(base(), saflex=SaflexConfig(beta=5.0)).identity()


def test_identity_covers_the_data_and_every_setting_the_method_reads():
    run = base(refine="saflex")
    assert run.identity() != dataclasses.replace(run, data_checksums=(("a.npz", "md5:1"),)).identity()
    assert run.identity() != dataclasses.replace(run, saflex=dataclasses.replace(run.saflex, pi_forward="augmented")).identity()
    assert run.identity() == dataclasses.replace(run, data_root="elsewhere").identity()  # where, not what
    l2rw = base(refine="l2rw")  # reads the validation settings only
    assert l2rw.identity() == dataclasses.replace(l2rw, saflex=dataclasses.replace(l2rw.saflex, beta=3.0)).identity()
    assert l2rw.identity() != dataclasses.replace(l2rw, saflex=dataclasses.replace(l2rw.saflex, val_batch_size=7)).identity()
    no_aug = base(aug="none")
    assert no_aug.identity() == dataclasses.replace(no_aug, train_mode="replace").identity()
    assert run.setting_key() == dataclasses.replace(run, seed=9).setting_key() != run.identity()


def example_value(config: RunConfig, key: str):
    """A valid value for `key` that differs from the config's own."""
    head, _, rest = key.partition(".")
    if head == "aug":
        return "3" if rest in ("num_ops", "magnitude", "cutout") else "0.123"
    if head == "options":
        current = config.option(rest)
        if rest in ("method", "size"):  # enumerated: another allowed value
            return {"method": "lpft", "size": "64"}[rest]
        kind = FAMILIES.get(config.family).options[rest].kind
        kind = type(current) if current is not None or kind is object else typing.get_origin(kind) or kind
        return {bool: str(not current).lower(), float: "0.123", int: "7", type(None): "9", tuple: "[0.5]"}.get(kind, "x")
    owner, name = ({"optim": OptimConfig, "saflex": SaflexConfig}[head], rest) if rest and head != "aug" else (RunConfig, key)
    choices = CHOICES.get(name) or {"pi_mode": ("exact", "last-layer")}.get(name)
    if choices:
        current = getattr(getattr(config, head) if owner is not RunConfig else config, name)
        return next(c for c in choices if c != current)
    kind = typing.get_type_hints(owner)[name]
    if kind is bool:
        return str(not getattr(getattr(config, head) if owner is not RunConfig else config, name)).lower()
    return {int: "3", float: "0.4321", str: "x"}.get(kind, "[0.2,0.4]")


@pytest.mark.parametrize("family", ["demo", "medmnist", "tabular", "flyp", "diffusion"])
def test_every_setting_of_every_family_is_reachable(family):
    recipe = FAMILIES.get(family)
    config = dataclasses.replace(recipe.defaults(recipe.datasets[0]), aug=recipe.augmenters[-1])
    keys = settable_keys(config)
    assert {"epochs", "optim.weight_decay", "optim.milestones", "saflex.beta", "saflex.gumbel", "train_mode"} <= set(keys)
    for key in keys:
        value = example_value(config, key)
        changed = apply_setting(config, key, value)
        assert changed is not None and changed.to_dict() != config.to_dict(), key


def test_augmenter_arguments_apply_to_their_augmenter_only():
    mixup, randaug = (dataclasses.replace(FAMILIES.get("medmnist").defaults("dermamnist"), aug=a) for a in ("mixup", "randaug"))
    runs = expand([mixup, randaug], [parse_assignment("aug.alpha=0.2,0.4")])
    assert [dict(c.option("aug_kwargs") or {}).get("alpha") for c in runs] == [0.2, 0.4, None]
    with pytest.raises(SaflexError, match="apply to none of these runs"):
        expand([randaug], [parse_assignment("aug.alpha=0.2")])
    assert expand([randaug], [parse_assignment("aug.magnitude=5")])[0].option("aug_kwargs") == {"magnitude": 5}


@pytest.mark.parametrize("text, message", [
    ("optim.wd=1", "unknown setting 'optim.wd' for demo; settable keys: seed, epochs, batch_size"),
    ("optim.lr=fast", "optim.lr = 'fast' is not a valid float"),
    ("epochs=2.5", "epochs = '2.5' is not a valid int"),
    ("saflex.pi_forward=sideways", "saflex.pi_forward = 'sideways' is out of range: give one of: union, augmented"),
    ("seed=5-2", "seed (--set): the range '5-2' is empty (it counts up: write 2-5)"),
    ("seed=0,-1", "seed = -1 is out of range: give an integer >= 0"),
    ("seed=0-2,1", "seed (--set) lists 1 more than once"),
    ("family=x", "'family' is not a setting: it is set by the command"),
    ("optim.milestones=0.5", "is not a valid tuple"),
    ("saflex.tau=0", "saflex.tau = 0.0 is out of range: give a finite number > 0"),
    ("optim", "write KEY=VALUE"),
])
def test_a_bad_setting_is_one_line_naming_what_to_do(text, message):
    with pytest.raises(SaflexError, match=message.replace("(", r"\(").replace(")", r"\)").replace("[", r"\[")):
        expand([base()], [parse_assignment(text)])


def test_a_key_given_twice_is_refused_and_tuples_take_brackets():
    with pytest.raises(SaflexError, match=r"given twice: saflex.beta \(--beta, --set\)"):
        expand([base()], [Setting("saflex.beta", ("1",), "--beta"), Setting("saflex.beta", ("2",), "--set")])
    (run,) = expand([base()], [parse_assignment("optim.milestones=[0.3,0.6]")])
    assert run.optim.milestones == (0.3, 0.6)
    assert len(expand([base()], [parse_assignment("optim.milestones=[0.3,0.6],[0.9]")])) == 2


@pytest.mark.parametrize("suffix, text", [
    (".toml", 'epochs = 3\n[optim]\nweight_decay = 5e-4\nmilestones = [0.3, 0.6]\n[saflex]\nbeta = [0.0, 1.0]\n'),
    (".yaml", "epochs: 3\noptim:\n  weight_decay: 5.0e-4\n  milestones: [0.3, 0.6]\nsaflex:\n  beta: [0.0, 1.0]\n"),
])
def test_config_files_are_dotted_settings_and_lists_sweep(tmp_path, suffix, text):
    path = tmp_path / f"settings{suffix}"
    path.write_text(text)
    runs = expand([base(refine="saflex")], read_config_file(path))
    assert [(r.epochs, r.optim.weight_decay, r.optim.milestones, r.saflex.beta) for r in runs] == \
        [(3, 5e-4, (0.3, 0.6), 0.0), (3, 5e-4, (0.3, 0.6), 1.0)]


def show(*args):
    result = CliRunner().invoke(app, ["config", "show", "demo", "--seeds", "0", *map(str, args)])
    return result, json.loads(result.stdout) if result.exit_code == 0 else []


def test_flags_sweep_and_config_show_prints_the_runs_without_running(tmp_path):
    settings = tmp_path / "s.toml"
    settings.write_text("[saflex]\ntau = 0.5\nbeta = 7.0\n")
    result, runs = show("--aug", "label-shift", "--refine", "none,saflex", "--beta", "0,1", "--config", settings,
                        "--set", "optim.weight_decay=0.01", "--out", tmp_path / "out")
    assert result.exit_code == 0, result.output
    saflex = [r["config"] for r in runs if r["config"]["refine"] == "saflex"]
    assert len(runs) == 3 and sorted(c["saflex"]["beta"] for c in saflex) == [0.0, 1.0]  # the flag beats the file
    assert all(c["saflex"]["tau"] == 0.5 and c["optim"]["weight_decay"] == 0.01 for c in saflex)
    assert not (tmp_path / "out").exists()


def test_a_bad_setting_on_the_command_line_exits_2_with_one_line(tmp_path):
    result = CliRunner().invoke(app, ["demo", "--seeds", "0", "--set", "optim.nope=1", "--out", str(tmp_path)])
    assert result.exit_code != 0 and "unknown setting 'optim.nope'" in str(result.exception or result.output)
