"""The flags every family command shares, added to each command by one decorator.

A family command declares only its own flags and receives the shared ones as one `run: RunFlags`
argument; the decorator extends the signature Typer reads, so `--help` lists them all. The
training and SAflex settings among them, `--set KEY=VALUES` and `--config FILE` are settings
(settings.py): each may be a comma list, and the command's runs are the cross product of every
swept setting. --epochs stays with each command (FLYP's zero-shot runs fix it at 0).
"""
from __future__ import annotations

import dataclasses
import functools
import inspect
import json
from pathlib import Path

from ..config import RunConfig
from ..settings import Setting, check_run, expand, parse_assignment, read_config_file, split_top_level
from . import options as opt
from .common import console, execute

# Flag -> the setting it sets, in the order `--help` shows them (after the command's own flags).
SETTING_FLAGS = (
    ("batch_size", opt.BatchSize, "batch_size"), ("lr", opt.Lr, "optim.lr"),
    ("train_mode", opt.TrainMode, "train_mode"), ("selection_holdout", opt.SelectionHoldout, "selection_holdout"),
    ("precision", opt.Precision, "precision"), ("memory_format", opt.MemoryFormat, "memory_format"),
    ("beta", opt.Beta, "saflex.beta"), ("tau", opt.Tau, "saflex.tau"),
    ("val_batch_size", opt.ValBatchSize, "saflex.val_batch_size"), ("val_data", opt.ValData, "saflex.val_data"),
    ("pi_mode", opt.PiMode, "saflex.pi_mode"), ("pi_refresh", opt.PiRefresh, "saflex.pi_refresh"),
    ("pi_forward", opt.PiForward, "saflex.pi_forward"), ("network_mode", opt.NetworkMode, "saflex.network_mode"),
    ("pi_scale", opt.PiScale, "saflex.pi_scale"), ("pi_params", opt.PiParams, "saflex.pi_params"),
    ("direction", opt.Direction, "saflex.direction"),
)
OTHER_FLAGS = (
    ("deterministic", opt.Deterministic, False), ("compile", opt.Compile, False), ("set", opt.Set, None),
    ("config", opt.ConfigFile, None),
    ("out", opt.Out, Path("results")), ("device", opt.Device, None), ("quiet", opt.Quiet, False),
    ("dry_run", opt.DryRun, False), ("throughput", opt.Throughput, None),
    ("retry_failed", opt.RetryFailed, False), ("force", opt.Force, False), ("workers", opt.Workers, 1),
    ("checkpoint_every", opt.CheckpointEvery, 0), ("save_model", opt.SaveModel, "best"),
    ("tensorboard", opt.TensorBoard, False), ("executor", opt.Executor, "local"),
    ("show_config", opt.ShowConfig, False),
)


@dataclasses.dataclass(frozen=True)
class RunFlags:
    settings: dict  # flag name -> its text (None: not given)
    deterministic: bool
    compile: bool
    set: list | None
    config: Path | None
    out: Path
    device: str | None
    quiet: bool
    dry_run: bool
    throughput: Path | None
    retry_failed: bool
    force: bool
    workers: int
    checkpoint_every: int
    save_model: str
    tensorboard: bool
    executor: str
    show_config: bool

    def setting_list(self) -> list[Setting]:
        """--config's settings, then the flags' and --set's (a key in both a flag and --set is refused;
        a flag or --set overrides --config)."""
        given = [Setting(key, tuple(split_top_level(self.settings[name])), f"--{name.replace('_', '-')}")
                 for name, _, key in SETTING_FLAGS if self.settings.get(name) is not None]
        given += [parse_assignment(text) for text in self.set or ()]
        given += [Setting(name, (True,), f"--{name}") for name in ("deterministic", "compile") if getattr(self, name)]
        from_file = read_config_file(self.config) if self.config else []
        overridden = {s.key for s in given}
        return [s for s in from_file if s.key not in overridden] + given

    def execute(self, configs: list[RunConfig]) -> list[RunConfig] | None:
        """Apply every setting (sweeps expand), then run the grid (the configs run: see common.execute),
        or print the configs (--show-config)."""
        configs = expand(configs, self.setting_list())
        for config in configs:  # every setting within its domain, before any claim, record or download
            check_run(config)
        if self.tensorboard:
            from ..training.live import require_tensorboard
            require_tensorboard()  # before any download or run
        if self.show_config:
            show(configs)
            return None
        from ..runs.grid import GridOptions
        options = GridOptions(retry_failed=self.retry_failed, force=self.force, checkpoint_every=self.checkpoint_every,
                              workers=self.workers, save_model=self.save_model, tensorboard=self.tensorboard)
        return execute(configs, self.out, self.device, self.quiet, self.dry_run, options, self.executor,
                       self.throughput)


def show(configs: list[RunConfig]) -> None:
    """The resolved configs as one JSON list, with their run names: what would run, without running."""
    print(json.dumps([{"run_name": c.run_name, "config": c.to_dict()} for c in configs], indent=1))
    console.print(f"{len(configs)} run(s)", highlight=False)


def family_command(command):
    """Give `command(..., run: RunFlags)` the shared flags of every family command."""
    signature = inspect.signature(command, eval_str=True)  # Typer reads a __signature__ as it stands
    own = [p for p in signature.parameters.values() if p.name != "run"]
    shared = [inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, default=None, annotation=annotation)
              for name, annotation, _ in SETTING_FLAGS]
    shared += [inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, default=default, annotation=annotation)
               for name, annotation, default in OTHER_FLAGS]

    @functools.wraps(command)
    def with_shared_flags(**kwargs):
        settings = {name: kwargs.pop(name) for name, _, _ in SETTING_FLAGS}
        run = RunFlags(settings, **{name: kwargs.pop(name) for name, _, _ in OTHER_FLAGS})
        return command(**kwargs, run=run)

    with_shared_flags.__signature__ = signature.replace(parameters=own + shared)
    with_shared_flags.__annotations__ = {p.name: p.annotation for p in own + shared}
    return with_shared_flags
