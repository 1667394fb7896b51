"""Settings from the sweep flags, `--set KEY=VALUES` and `--config FILE`, applied to a command's runs.

A key is a dotted path into RunConfig: `epochs`, `optim.weight_decay`, `saflex.beta`,
`options.dropout` (the family's own settings, Recipe.options), or `aug.<argument>` for the
upstream augmenter's constructor (Mixup's alpha, RandAugment's num_ops and magnitude, CutMix's
prob). A comma list is a sweep: a command's runs are the cross product of every swept key. A
tuple value is written in brackets: `optim.milestones=[0.5,0.75]`. Values are read as the
dataclasses' types; every resolved run is then checked against the domains (domains.py) declared
beside each field, option and augmenter argument, before any claim, record or download. An
unknown key names the valid ones.
"""
from __future__ import annotations

import dataclasses
import inspect
import itertools
import math
import re
import typing
from dataclasses import dataclass
from pathlib import Path

from .config import OptimConfig, RunConfig, SaflexConfig
from .domains import Domain, check_arguments, field_domains
from .errors import SaflexError
from .registry import AUGMENTERS, FAMILIES
from .seeds import parse_seeds

# Fields a setting may not change, and the flag that does.
FIXED = {"family": "the command", "dataset": "--dataset", "model": "--model", "aug": "--aug",
         "refine": "--refine / --saflex", "data_root": "--data-root",
         "data_checksums": "nothing: they are the checksums of the data files read", "options": "options.NAME"}
SECTIONS = {"optim": OptimConfig, "saflex": SaflexConfig}


@dataclass(frozen=True)
class Setting:
    """One key and the values it takes (several: a sweep)."""

    key: str
    values: tuple
    source: str  # where it was given, for messages: '--set', '--beta', 'config.toml'


def split_top_level(text: str) -> list[str]:
    """'0,0.1,[0.5,0.75]' -> ['0', '0.1', '[0.5,0.75]']: commas inside brackets do not split."""
    parts, depth, current = [], 0, ""
    for char in text:
        depth += {"[": 1, "]": -1}.get(char, 0)
        if char == "," and depth == 0:
            parts.append(current.strip())
            current = ""
        else:
            current += char
    parts.append(current.strip())
    if depth != 0 or any(not p for p in parts):
        raise SaflexError(f"cannot read the value list {text!r}: give values separated by commas, tuples in brackets")
    return parts


def parse_assignment(text: str, source: str = "--set") -> Setting:
    key, sep, values = text.partition("=")
    if not sep or not key.strip():
        raise SaflexError(f"{source} {text!r}: write KEY=VALUE (or KEY=V1,V2 to sweep), e.g. optim.weight_decay=5e-4")
    return Setting(key.strip(), tuple(split_top_level(values)), source)


def settable_keys(config: RunConfig) -> list[str]:
    recipe = FAMILIES.get(config.family)
    keys = [f.name for f in dataclasses.fields(RunConfig) if f.name not in FIXED and f.name not in SECTIONS]
    keys += [f"{section}.{f.name}" for section, cls in SECTIONS.items() for f in dataclasses.fields(cls)]
    keys += [f"options.{name}" for name in recipe.options]
    keys += [f"aug.{name}" for name in augmenter_arguments(config.aug)]
    return keys


def augmenter_arguments(aug: str) -> dict[str, inspect.Parameter]:
    if aug == "none" or aug not in AUGMENTERS:
        return {}
    parameters = inspect.signature(AUGMENTERS.get(aug)).parameters
    return {name: p for name, p in parameters.items() if p.default is not inspect.Parameter.empty}


def _type_of(config: RunConfig, key: str):
    """The expected Python type of a key's value for this config; None: the key does not apply to it."""
    head, _, rest = key.partition(".")
    if head in SECTIONS and rest:
        hints = typing.get_type_hints(SECTIONS[head])
        return hints.get(rest, KeyError)
    if head == "options" and rest:
        if rest not in FAMILIES.get(config.family).options:
            return KeyError
        current = config.option(rest)
        return type(current) if current is not None else FAMILIES.get(config.family).options[rest].kind
    if head == "aug" and rest:
        arguments = augmenter_arguments(config.aug)
        return type(arguments[rest].default) if rest in arguments else None
    if key in FIXED:
        raise SaflexError(f"{key!r} is not a setting: it is set by {FIXED[key]}")
    if key in SECTIONS:
        return KeyError
    return typing.get_type_hints(RunConfig).get(key, KeyError)


def domain_of(config: RunConfig, key: str) -> Domain | None:
    """The allowed values of a settable key, where they are declared (domains.py)."""
    head, _, rest = key.partition(".")
    if head in SECTIONS and rest:
        return field_domains(SECTIONS[head]).get(rest)
    if head == "options" and rest:
        return FAMILIES.get(config.family).options[rest].domain
    if head == "aug" and rest:
        return field_domains(AUGMENTERS.get(config.aug).__init__).get(rest)
    return field_domains(RunConfig).get(key)


def check_run(config: RunConfig) -> None:
    """A resolved run's options and augmenter arguments within their domains (its dataclass fields
    were checked when it was built), so an impossible run is refused before it is claimed."""
    options = FAMILIES.get(config.family).options
    for name, value in config.options:
        if name in options:
            options[name].domain.check(f"options.{name}", value)
    if augmenter_arguments(config.aug):
        check_arguments(AUGMENTERS.get(config.aug).__init__, dict(config.option("aug_kwargs") or {}))


def parse_value(raw, expected, key: str):
    """A raw string (or a value read from a config file) as the key's type."""
    what = getattr(expected, "__name__", str(expected))
    try:
        if expected is tuple or typing.get_origin(expected) is tuple:
            items = _bracketed(raw) if isinstance(raw, str) else raw
            if not isinstance(items, (list, tuple)):
                raise ValueError
            inner = typing.get_args(expected)[0] if typing.get_args(expected) else object
            return tuple(parse_value(item, inner, key) for item in items)
        if expected is bool:
            if isinstance(raw, bool):
                return raw
            return {"true": True, "1": True, "yes": True, "false": False, "0": False, "no": False}[str(raw).lower()]
        if expected is int:
            if isinstance(raw, float) and raw != int(raw) or isinstance(raw, bool):
                raise ValueError
            return int(raw)
        if expected is float:
            return float(raw)
        if expected is str:
            return str(raw)
        return _literal(raw)
    except (ValueError, KeyError, TypeError):
        raise SaflexError(f"{key} = {raw!r} is not a valid {what}"
                          + (" (a tuple is written in brackets: [0.5,0.75])" if tuple in (expected, typing.get_origin(expected)) else ""))


def _bracketed(text: str) -> list[str]:
    """'[0.5,0.75]' -> ['0.5', '0.75']; '[]' -> []."""
    text = text.strip()
    if not (text.startswith("[") and text.endswith("]")):
        raise ValueError(text)
    inner = text[1:-1].strip()
    return split_top_level(inner) if inner else []


def _literal(raw):
    """A value of unknown type: a number or boolean if it reads as one, else the text."""
    if not isinstance(raw, str):
        return raw
    for convert in (int, float):
        try:
            value = convert(raw)
            return value if not (isinstance(value, float) and math.isnan(value)) else raw
        except ValueError:
            pass
    return {"true": True, "false": False}.get(raw.lower(), raw)


def apply_setting(config: RunConfig, key: str, raw) -> RunConfig | None:
    """`config` with `key` set to `raw`; None when the key does not apply to this run (an
    augmenter argument of another augmenter)."""
    expected = _type_of(config, key)
    if expected is KeyError:
        raise SaflexError(f"unknown setting {key!r} for {config.family}; settable keys: {', '.join(settable_keys(config))}")
    if expected is None:
        return None
    value = parse_value(raw, expected, key)
    head, _, rest = key.partition(".")
    if head in SECTIONS and rest:
        return dataclasses.replace(config, **{head: dataclasses.replace(getattr(config, head), **{rest: value})})
    if head == "options":
        return dataclasses.replace(config, options=_with_option(config.options, rest, value))
    if head == "aug":
        kwargs = {**dict(config.option("aug_kwargs") or {}), rest: value}
        return dataclasses.replace(config, options=_with_option(config.options, "aug_kwargs", kwargs))
    return dataclasses.replace(config, **{key: value})


def _with_option(options: tuple, name: str, value) -> tuple:
    return tuple({**dict(options), name: value}.items())


def seed_values(setting: Setting) -> tuple[int, ...]:
    """`seed` takes seed lists and ranges, as --seeds does (and replaces --seeds' list); a negative seed
    is refused as every setting outside its domain is."""
    for raw in setting.values:
        if re.fullmatch(r"-\d+", str(raw).strip()):
            field_domains(RunConfig)["seed"].check("seed", int(raw))
    return tuple(parse_seeds(",".join(map(str, setting.values)), f"seed ({setting.source})"))


def expand(configs: list[RunConfig], settings: list[Setting]) -> list[RunConfig]:
    """Every config under every combination of the settings' values, once per identity, in order.

    A key given twice is refused; a key that applies to none of the runs (aug.alpha without Mixup)
    is refused, so a typo never passes as a sweep of one.
    """
    settings = [dataclasses.replace(s, values=seed_values(s)) if s.key == "seed" else s for s in settings]
    keys = [s.key for s in settings]
    twice = sorted({k for k in keys if keys.count(k) > 1})
    if twice:
        sources = {s.key: [t.source for t in settings if t.key == s.key] for s in settings if s.key in twice}
        raise SaflexError("setting(s) given twice: " + "; ".join(f"{k} ({', '.join(sources[k])})" for k in twice))
    out, seen, applied = [], set(), {s.key: False for s in settings}
    for config in configs:
        for combination in itertools.product(*(s.values for s in settings)):
            current = config
            for setting, raw in zip(settings, combination):
                changed = apply_setting(current, setting.key, raw)
                if changed is not None:
                    current, applied[setting.key] = changed, True
            if current.identity() not in seen:
                seen.add(current.identity())
                out.append(current)
    unused = [k for k, used in applied.items() if not used]
    if unused and configs:
        raise SaflexError(f"setting(s) {', '.join(unused)} apply to none of these runs (an augmenter argument needs "
                          f"that augmenter in --aug); settable keys of the first: {', '.join(settable_keys(configs[0]))}")
    return out


def flatten(table: dict, prefix: str = "") -> dict:
    out = {}
    for key, value in table.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict) and name not in ("options.aug_kwargs",):
            out.update(flatten(value, f"{name}."))
        else:
            out[name] = value
    return out


def read_config_file(path: Path) -> list[Setting]:
    """Settings from a TOML or YAML file: nested tables are dotted keys; a list is a sweep, except
    for a tuple field, whose value is a list (a sweep of tuples is a list of lists)."""
    path = Path(path)
    if path.suffix not in (".toml", ".yaml", ".yml"):
        raise SaflexError(f"--config {path}: give a .toml, .yaml or .yml file")
    try:
        text = path.read_text()
    except OSError as error:
        raise SaflexError(f"cannot read --config {path}: {error.strerror or error}") from None
    try:
        if path.suffix == ".toml":
            try:
                import tomllib
            except ModuleNotFoundError:  # Python 3.10
                import tomli as tomllib
            table = tomllib.loads(text)
        else:
            import yaml
            table = yaml.safe_load(text) or {}
    except Exception as error:  # tomllib's and yaml's decode errors: the file is the user's to fix
        raise SaflexError(f"--config {path} does not parse ({type(error).__name__}: {str(error).splitlines()[0]})") from None
    if not isinstance(table, dict):
        raise SaflexError(f"--config {path} must hold a table of settings (key = value)")
    settings = []
    for key, value in flatten(table).items():
        is_tuple = _is_tuple_field(key)
        sweep = isinstance(value, list) and (not is_tuple or (value and isinstance(value[0], list)))
        settings.append(Setting(key, tuple(value) if sweep else (value,), path.name))
    return settings


def _is_tuple_field(key: str) -> bool:
    head, _, rest = key.partition(".")
    hints = typing.get_type_hints(SECTIONS[head]) if head in SECTIONS else typing.get_type_hints(RunConfig)
    return typing.get_origin(hints.get(rest if head in SECTIONS else key)) is tuple
