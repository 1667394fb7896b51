"""The one trainer every family uses: clean batch + upstream-augmented batch, SAflex optional.

A family's recipe builds a TrainSetup (model, objective, batches, augmenter, evaluator); the
loop below never asks which family it serves. Each step trains on the union of the clean batch
and its augmented twin; with SAflex the augmented samples get the weights and soft labels of
`core.SaflexStep` (exact or fast Pi), without it uniform weights and the upstream labels, so
SAflex is the only difference between a method and its SAflex row.
"""
from __future__ import annotations

import copy
import math
import time
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Callable

import torch
from torch import Tensor, nn

from .config import RunConfig
from .core import SaflexStep
from .errors import SaflexError
from .objectives import Objective
from .runtime import autocast


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

    def summary(self, steps: int) -> dict:
        out = {}
        for name, value in self.sums.items():
            value = float(value)
            out[name] = value if name.endswith("_count") else value / max(1, steps)
        for pair in (("recovered_count", "corrupted_count", "label_recovery"),
                     ("corrupted_kept_count", "corrupted_count", "corrupted_kept_fraction"),
                     ("clean_kept_count", "uncorrupted_count", "uncorrupted_kept_fraction")):
            if pair[0] in out and out.get(pair[1]):
                out[pair[2]] = out[pair[0]] / out[pair[1]]
        return out


class Trainer:
    def __init__(self, setup: TrainSetup, config: RunConfig, device: torch.device):
        self.setup, self.config, self.device = setup, config, device
        self.model = setup.model.to(device)
        self.optimizer = build_optimizer([p for p in self.model.parameters() if p.requires_grad], config)
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(self.optimizer, lr_factor(config, len(setup.train_batches)))
        # Augmentation and Gumbel draws come from this generator alone: same seed, same run.
        self.generator = torch.Generator(device=device).manual_seed(config.seed)
        self.saflex_step = SaflexStep.from_config(config.saflex, setup.objective, autocast=lambda: autocast(device))
        self.history: list[dict] = []
        self.trust: dict[tuple[int, int], list[float]] = {}
        self.best: dict[str, dict] = {}

    def fit(self, on_epoch: Callable[[dict], None] | None = None) -> dict:
        for epoch in range(1, self.config.epochs + 1):
            start = time.perf_counter()
            train_stats = self.train_epoch(epoch)
            train_time = time.perf_counter() - start
            evaluation = self.setup.evaluate(self.model)
            entry = {"epoch": epoch, "train_time_s": train_time, "eval_time_s": time.perf_counter() - start - train_time,
                     "lr": self.optimizer.param_groups[0]["lr"], **train_stats, **evaluation}
            self.history.append(entry)
            self._update_selection(entry)
            if on_epoch:
                on_epoch(entry)
        return self.summary()

    def train_epoch(self, epoch: int) -> dict:
        self.model.train()
        stats, steps = EpochStats(), 0
        for step, (inputs, targets) in enumerate(self.setup.train_batches, start=1):
            loss = self.train_step(inputs, targets, stats)
            stats.losses.append(loss.detach())
            steps = step
        losses = torch.stack(stats.losses).float()
        finite = torch.isfinite(losses)
        if not bool(finite.all()):
            raise TrainingDiverged(epoch, int((~finite).nonzero()[0]) + 1)
        return {"train_loss": float(losses.mean()), "steps": steps, **self._saflex_summary(stats, steps)}

    def train_step(self, inputs, targets: Tensor, stats: EpochStats) -> Tensor:
        setup = self.setup
        if setup.augmenter is None:
            with autocast(self.device):
                loss = setup.objective.training_loss(self.model, inputs, targets)
        else:
            aug = setup.augmenter(inputs, setup.objective.soft_targets(targets, setup.num_classes), self.generator)
            if self.config.saflex.enabled:
                loss, refined = self.saflex_step.training_loss(self.model, inputs, targets, aug.inputs, aug.labels,
                                                          setup.val_batches, self.generator)
                self._accumulate(stats, refined, aug)
            else:
                uniform = torch.full((len(aug.labels),), 1.0 / len(aug.labels), device=aug.labels.device)
                with autocast(self.device):
                    loss = setup.objective.training_loss(self.model, inputs, targets, aug.inputs, aug.labels, uniform)
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self.optimizer.step()
        self.scheduler.step()
        return loss

    def _accumulate(self, stats: EpochStats, refined, aug) -> None:
        for name, value in refined.stats.items():
            stats.add(name, value)
        kept = refined.weights > 0
        new_label = refined.labels.argmax(1)
        if "true_labels" in aug.meta:
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

    def summary(self) -> dict:
        last = self.history[-1]
        selections = {"last": {"epoch": last["epoch"], "val": last.get("val", {}), "test": last.get("test", {})}}
        for metric, best in self.best.items():
            selections[f"best_val_{metric}"] = {k: v for k, v in best.items() if k != "state"}
        trust = [{"source": s, "class": c, "seen": n, "kept": k, "relabelled": r}
                 for (s, c), (n, k, r) in sorted(self.trust.items())]
        return {"epochs": self.history, "selections": selections, **({"trust": trust} if trust else {})}
