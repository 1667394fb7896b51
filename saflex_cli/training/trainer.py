"""The one trainer every family uses: clean batch + upstream-augmented batch, refined or not.

A family's recipe builds a TrainSetup (model, objective, batches, augmenter, evaluator); the
loop below never asks which family it serves. Each step trains on the union of the clean batch
and its augmented twin (train_mode 'union', Eq. 3), or on the augmented batch alone ('replace');
the run's refiner (refiners.py: upstream labels with uniform weights, SAflex, its ablations,
learning-to-reweight) gives the augmented samples their weights and labels, so the refiner is
the only difference between a method and its upstream row.
"""
from __future__ import annotations

import contextlib
import copy
import math
import time
import warnings
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Callable

import torch
import torch.distributed as dist
from torch import Tensor, nn
from torch.nn.parallel import DistributedDataParallel

from ..compute.compiled import compile_errors, compile_model
from ..compute.distributed import RankShare, Ranks, share
from ..compute.runtime import autocast, full_precision, loss_scaler, on_device
from ..config import RunConfig
from ..errors import SaflexError
from ..method.objectives import Objective
from ..method.refiners import make_refiner
from .checkpoint import rng_state, set_rng_state


class TrainingDiverged(SaflexError):
    def __init__(self, epoch: int, step: int):
        super().__init__(f"the training loss became NaN/inf at epoch {epoch}, step {step}: lower the "
                         f"learning rate, or check the inputs for NaN values")
        self.epoch, self.step = epoch, step


@dataclass
class TrainSetup:
    """Everything a recipe hands the trainer."""

    model: nn.Module
    objective: Objective
    train_batches: object  # iterable of (inputs, targets) on the device, with len()
    val_batches: object  # endless iterator of validation batches, for SAflex
    augmenter: Callable | None  # (inputs, soft labels, generator) -> AugBatch; None = no augmentation
    evaluate: Callable[[nn.Module], dict[str, dict[str, float]]]  # split -> metric -> value
    num_classes: int
    selection: tuple[str, ...] = ("acc",)  # validation metrics that pick a checkpoint
    provenance: dict = field(default_factory=dict)


def build_optimizer(params, config: RunConfig) -> torch.optim.Optimizer:
    optim = config.optim
    if optim.name == "adam":
        return torch.optim.Adam(params, lr=optim.lr, weight_decay=optim.weight_decay)
    if optim.name == "adamw":
        return torch.optim.AdamW(params, lr=optim.lr, weight_decay=optim.weight_decay)
    if optim.name == "sgd":
        return torch.optim.SGD(params, lr=optim.lr, momentum=optim.momentum, weight_decay=optim.weight_decay)
    raise SaflexError(f"unknown optimizer {optim.name!r}; choose adam, adamw or sgd")


def lr_factor(config: RunConfig, steps_per_epoch: int) -> Callable[[int], float]:
    """LR multiplier per step. Multistep milestones fall on epoch boundaries, as in MedMNIST's script."""
    optim, total = config.optim, max(1, config.epochs * steps_per_epoch)
    if optim.schedule == "constant":
        return lambda step: 1.0
    if optim.schedule == "multistep":
        boundaries = [int(f * config.epochs) * steps_per_epoch for f in optim.milestones]
        return lambda step: optim.gamma ** sum(step >= b for b in boundaries)
    if optim.schedule == "cosine":
        warmup = optim.warmup_steps

        def cosine(step: int) -> float:
            if step < warmup:
                return (step + 1) / warmup
            progress = (step - warmup) / max(1, total - warmup)
            return 0.5 * (1 + math.cos(math.pi * min(1.0, progress)))
        return cosine
    raise SaflexError(f"unknown schedule {optim.schedule!r}; choose multistep, cosine or constant")


def _to(value, device: torch.device):
    return value.to(device) if isinstance(value, Tensor) else value


class EpochStats:
    """Per-epoch sums kept on the device, read once at the end (no sync per step)."""

    def __init__(self):
        self.sums: dict[str, Tensor | float] = defaultdict(float)
        self.groups: dict[tuple[int, int], Tensor] = {}
        self.losses: list[Tensor] = []

    def add(self, name: str, value) -> None:
        self.sums[name] = self.sums[name] + value

    def add_group_counts(self, source: Tensor, upstream: Tensor, kept: Tensor, changed: Tensor) -> None:
        """Count, per (source, upstream class), samples seen, kept and relabelled (trust report)."""
        for key in torch.unique(torch.stack([source, upstream], 1), dim=0).tolist():
            mask = (source == key[0]) & (upstream == key[1])
            counts = torch.stack([mask.sum(), (mask & kept).sum(), (mask & changed).sum()]).float()
            self.groups[tuple(key)] = self.groups.get(tuple(key), 0) + counts

    def reduce(self, group) -> None:
        """Across ranks: losses and per-batch stats averaged, counts summed (trust counts stay per rank)."""
        world = dist.get_world_size(group)
        losses = torch.stack(self.losses).float()
        dist.all_reduce(losses, group=group)
        self.losses = list(losses / world)
        for name in sorted(self.sums):
            total = torch.as_tensor(self.sums[name], dtype=torch.float32, device=losses.device).clone()
            dist.all_reduce(total, group=group)
            self.sums[name] = total if name.endswith("_count") else total / world

    def state_dict(self) -> dict:
        return {"sums": dict(self.sums), "groups": self.groups, "losses": self.losses}

    @classmethod
    def from_state_dict(cls, state: dict, device: torch.device) -> "EpochStats":
        stats = cls()
        stats.sums.update({k: _to(v, device) for k, v in state["sums"].items()})
        stats.groups = {k: _to(v, device) for k, v in state["groups"].items()}
        stats.losses = [_to(v, device) for v in state["losses"]]
        return stats

    def summary(self, steps: int) -> dict:
        out = {}
        for name, value in self.sums.items():
            value = float(value)
            out[name] = value if name.endswith("_count") else value / max(1, steps)
        for pair in (("recovered_count", "corrupted_count", "label_recovery"),
                     ("correct_relabelled_count", "correct_count", "relabelled_among_correct"),
                     ("true_agree_count", "true_count", "agree_true_fraction"),
                     ("corrupted_kept_count", "corrupted_count", "corrupted_kept_fraction"),
                     ("clean_kept_count", "uncorrupted_count", "uncorrupted_kept_fraction")):
            if pair[0] in out and out.get(pair[1]):
                out[pair[2]] = out[pair[0]] / out[pair[1]]
        return out


class Trainer:
    def __init__(self, setup: TrainSetup, config: RunConfig, device: torch.device, ranks: Ranks | None = None):
        self.setup, self.config, self.device = setup, config, device
        self.model = on_device(setup.model, device, config.memory_format)
        if config.compile:
            compile_model(self.model)
        # Under torchrun every rank draws the global batches and trains on its share; the loss
        # goes through DDP (gradient mean), the SAflex passes through the plain module.
        self.ranks = ranks
        self.process_group = ranks.group if ranks else None
        self.world_size = ranks.world if ranks else 1
        self.train_model = DistributedDataParallel(
            self.model, device_ids=[device.index] if device.type == "cuda" else None) if ranks else self.model
        self.optimizer = build_optimizer([p for p in self.model.parameters() if p.requires_grad], config)
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(self.optimizer, lr_factor(config, len(setup.train_batches)))
        self.scaler = loss_scaler(device, config.precision)  # fp16 only; a pass-through otherwise
        # Augmentation and Gumbel draws come from this generator alone: same seed, same run.
        self.generator = torch.Generator(device=device).manual_seed(config.seed)
        self.refiner = make_refiner(config, setup.objective, optimizer=self.optimizer,
                                    autocast=lambda: autocast(device, config.precision),
                                    full_precision=full_precision(device, config.precision),
                                    process_group=self.process_group, world_size=self.world_size)
        self.val_stream = RankShare(setup.val_batches, ranks)
        self.history: list[dict] = []
        self.trust: dict[tuple[int, int], list[float]] = {}
        self.best: dict[str, dict] = {}
        self.epoch, self.step = 0, 0  # epochs completed; steps taken in the current epoch
        self.partial: EpochStats | None = None  # the current epoch's sums, while it runs

    def fit(self, on_epoch: Callable[[dict], None] | None = None,
            save: Callable[["Trainer"], None] | None = None, save_every: int = 0,
            on_step: Callable[[int], None] | None = None) -> dict:
        """Train the remaining epochs (all of them, unless a checkpoint was loaded).

        `save(trainer)` is called at every epoch end and every `save_every` steps within an epoch;
        `on_step(steps into the epoch)` after every step (a progress bar).
        With `epochs == 0` (a zero-shot model) the model is evaluated once, as epoch 0.
        """
        if self.config.epochs == 0 and not self.history:
            entry = self._evaluate_epoch(0, time.perf_counter(), {"train_loss": float("nan"), "steps": 0})
            if on_epoch:
                on_epoch(entry)
        while self.epoch < self.config.epochs:
            epoch = self.epoch + 1
            start = time.perf_counter()
            entry = self._evaluate_epoch(epoch, start, self.train_epoch(epoch, save, save_every, on_step))
            self.epoch, self.step = epoch, 0
            if save:
                save(self)
            if on_epoch:
                on_epoch(entry)
        return self.summary()

    def _evaluate_epoch(self, epoch: int, start: float, train_stats: dict) -> dict:
        train_time = time.perf_counter() - start
        evaluation = self.setup.evaluate(self.model)
        entry = {"epoch": epoch, "train_time_s": train_time, "eval_time_s": time.perf_counter() - start - train_time,
                 "lr": self.optimizer.param_groups[0]["lr"], **train_stats, **evaluation}
        self.history.append(entry)
        self._update_selection(entry)
        return entry

    def train_epoch(self, epoch: int, save: Callable[["Trainer"], None] | None = None, save_every: int = 0,
                    on_step: Callable[[int], None] | None = None) -> dict:
        self.model.train()
        stats = self.partial = self.partial or EpochStats()  # a checkpoint taken mid-epoch restores it
        with compile_errors(self.model) if self.config.compile else contextlib.nullcontext():
            for inputs, targets in self.setup.train_batches:
                loss = self.train_step(inputs, targets, stats)
                stats.losses.append(loss.detach())
                self.step += 1
                if on_step:
                    on_step(self.step)
                if save and save_every and self.step % save_every == 0 and self.step < len(self.setup.train_batches):
                    save(self)
        steps, self.partial = self.step, None
        if self.ranks:  # every rank must see the same loss, or one stops while the others wait
            stats.reduce(self.process_group)
        # Only a non-finite loss is a divergence: an fp16 step whose gradients overflowed was skipped
        # by the scaler, which lowered its scale (the epoch's last scale is in the entry).
        losses = torch.stack(stats.losses).float()
        finite = torch.isfinite(losses)
        if not bool(finite.all()):
            raise TrainingDiverged(epoch, int((~finite).nonzero()[0]) + 1)
        scale = {"loss_scale": self.scaler.get_scale()} if self.scaler.is_enabled() else {}
        return {"train_loss": float(losses.mean()), "steps": steps, **scale, **self._saflex_summary(stats, steps)}

    def state_dict(self) -> dict:
        """Everything that decides the rest of the run, so that a resumed run ends bit-identical."""
        return {"model": self.model.state_dict(), "optimizer": self.optimizer.state_dict(),
                "scheduler": self.scheduler.state_dict(), "scaler": self.scaler.state_dict(),
                "generator": self.generator.get_state(),
                "epoch": self.epoch, "step": self.step,
                "train_batches": self.setup.train_batches.state_dict(),
                "val_batches": self.setup.val_batches.state_dict(),
                "partial_epoch": self.partial.state_dict() if self.partial is not None else None,
                "refiner": self.refiner.state_dict(),
                "history": self.history, "trust": self.trust, "best": self.best, "rng": rng_state()}

    def load_state_dict(self, state: dict) -> None:
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        if state.get("scaler"):  # empty when the scaler is off; absent in checkpoints of older versions
            self.scaler.load_state_dict(state["scaler"])
        self.generator.set_state(state["generator"])
        self.epoch, self.step = state["epoch"], state["step"]
        self.setup.train_batches.load_state_dict(state["train_batches"])
        self.setup.val_batches.load_state_dict(state["val_batches"])
        self.partial = EpochStats.from_state_dict(state["partial_epoch"], self.device) if state["partial_epoch"] else None
        self.refiner.load_state_dict(state["refiner"])
        self.history, self.trust, self.best = state["history"], state["trust"], state["best"]
        set_rng_state(state["rng"])

    def train_step(self, inputs, targets: Tensor, stats: EpochStats) -> Tensor:
        setup = self.setup
        if setup.augmenter is None:
            inputs, targets = share((inputs, targets), self.ranks)
            with autocast(self.device, self.config.precision):
                loss = setup.objective.training_loss(self.train_model, inputs, targets)
        else:
            upstream = setup.objective.soft_targets(targets, setup.num_classes)
            aug = share(setup.augmenter(inputs, upstream, self.generator), self.ranks)
            if self.ranks:
                aug.labels = setup.objective.rank_labels(aug.labels, self.ranks)
            inputs, targets = share((inputs, targets), self.ranks)
            if self.config.train_mode == "replace":
                inputs, targets = None, None
            loss, refined = self.refiner.loss(self.model, inputs, targets, aug, self.val_stream, self.generator,
                                              self.train_model)
            if refined is not None:
                self._accumulate(stats, refined, aug)
        self.optimizer.zero_grad(set_to_none=True)
        # fp16: backward of the scaled loss; step() unscales the gradients and skips the step if
        # any is inf/NaN; update() then lowers (or, after a run of good steps, raises) the scale.
        self.scaler.scale(loss).backward()
        self.scaler.step(self.optimizer)
        self.scaler.update()
        with warnings.catch_warnings():  # a skipped step still counts in the schedule; torch warns if it is the first
            warnings.filterwarnings("ignore", "Detected call of `lr_scheduler")
            self.scheduler.step()
        return loss

    def _accumulate(self, stats: EpochStats, refined, aug) -> None:
        for name, value in refined.stats.items():
            stats.add(name, value)
        kept = refined.weights > 0
        new_label = refined.labels.argmax(1)
        if "true_labels" in aug.meta:
            stats.add("true_count", float(len(new_label)))
            stats.add("true_agree_count", (new_label == aug.meta["true_labels"]).sum())
        if "corrupted" in aug.meta:
            corrupted = aug.meta["corrupted"]
            stats.add("corrupted_count", corrupted.sum())
            stats.add("uncorrupted_count", (~corrupted).sum())
            stats.add("recovered_count", (corrupted & (new_label == aug.meta["true_labels"])).sum())
            stats.add("corrupted_kept_count", (corrupted & kept).sum())
            stats.add("clean_kept_count", (~corrupted & kept).sum())
        if "source" in aug.meta:
            upstream = aug.labels.argmax(1)
            stats.add_group_counts(aug.meta["source"], upstream, kept, new_label != upstream)

    def _saflex_summary(self, stats: EpochStats, steps: int) -> dict:
        for key, counts in stats.groups.items():
            total = self.trust.setdefault(key, [0.0, 0.0, 0.0])
            for i, value in enumerate(counts.tolist()):
                total[i] += value
        summary = stats.summary(steps)
        return {"saflex": summary} if summary else {}

    def _update_selection(self, entry: dict) -> None:
        """Keep the best epoch (and a copy of its weights, not an alias) per selection metric."""
        for metric in self.setup.selection:
            value = entry.get("val", {}).get(metric)
            if value is None or math.isnan(value):
                continue
            best = self.best.get(metric)
            if best is None or value > best["val"][metric]:
                self.best[metric] = {"epoch": entry["epoch"], "val": entry["val"], "test": entry.get("test", {}),
                                     "state": copy.deepcopy(self.model.state_dict())}

    def weights(self, selection: str) -> dict[str, Tensor] | None:
        """The model's weights at a selection of `summary()` ('last', 'best_val_acc', ...); None if absent."""
        if selection == "last":
            return self.model.state_dict()
        best = self.best.get(selection.removeprefix("best_val_"))
        return best["state"] if best is not None and selection.startswith("best_val_") else None

    def summary(self) -> dict:
        last = self.history[-1]
        selections = {"last": {"epoch": last["epoch"], "val": last.get("val", {}), "test": last.get("test", {})}}
        for metric, best in self.best.items():
            selections[f"best_val_{metric}"] = {k: v for k, v in best.items() if k != "state"}
        trust = [{"source": s, "class": c, "seen": n, "kept": k, "relabelled": r}
                 for (s, c), (n, k, r) in sorted(self.trust.items())]
        return {"epochs": self.history, "selections": selections, **({"trust": trust} if trust else {})}
