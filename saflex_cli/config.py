"""Run configuration as dataclasses: printed at the start of a run and saved in its record.

A run's identity (its record's name and whether a record counts as done) is a hash of every
setting that can change its numbers, and of the checksums of the data files it reads: the data
root is where, the checksums are what. Settings a method does not read (SAflex's beta for an
upstream-only run) are left out, so a sweep over them shares its upstream rows.
"""
from __future__ import annotations

import hashlib
import json
import math
from dataclasses import asdict, dataclass, field, fields, replace
from typing import Annotated

from .domains import BOOLEAN, check_fields, increasing, integer, interval, non_negative, one_of, positive
from .errors import SaflexError

RECORD_SCHEMA = 2  # bump when the meaning of a record field changes: old records no longer count

# Which SaflexConfig fields each refinement method reads (the rest are not part of its identity).
# The methods themselves are the REFINERS registry (refiners.py); a test keeps the two in step.
VALIDATION_FIELDS = ("val_batch_size", "val_data", "network_mode")
SAFLEX_FIELDS = ("beta", "tau", "gumbel", "pi_mode", "pi_refresh", "pi_forward", "pi_scale", "pi_params",
                 "direction") + VALIDATION_FIELDS
REFINE_READS = {
    "none": (),  # upstream labels, uniform weights
    "soft-aug": (),  # Soft-Augmentation's targets from the upstream's visible fraction
    "l2rw": VALIDATION_FIELDS,  # learning-to-reweight (Ren et al. 2018)
    "saflex": SAFLEX_FIELDS,
    "saflex-weights": SAFLEX_FIELDS,  # ablation: SAflex's weights, upstream labels
    "saflex-labels": SAFLEX_FIELDS,  # ablation: SAflex's labels, uniform weights
}
# What a method reads from its augmenter's AugBatch.meta. An augmenter class lists what it gives
# in `provides` (augment/crop.py); the CLI refuses a pair that does not fit before any run starts.
REFINE_NEEDS = {"soft-aug": ("visible_fraction",)}

# The open choices of the method (docs/method.md, "Open choices"); the first value is the default.
CHOICES = {
    "pi_forward": ("union", "augmented"),
    "network_mode": ("train", "eval"),
    "val_data": ("batch", "full"),
    "pi_scale": ("raw", "rms"),
    "pi_params": ("all", "no-output-bias"),
    "direction": ("sgd", "optimizer"),
    "train_mode": ("union", "replace"),
    "precision": ("auto", "fp32", "bf16", "fp16"),
    "memory_format": ("auto", "contiguous", "channels-last"),
    "name": ("adam", "adamw", "sgd"),
    "schedule": ("multistep", "cosine", "constant"),
}

# --save-model, an execution setting (not part of a run's identity): whose weights stay beside the
# record; best is the family's default selection (Recipe.selection).
SAVE_MODEL = ("best", "last", "all", "none")



def choice(name: str):
    """The domain of an open choice: CHOICES' values (domains.py)."""
    return one_of(*CHOICES[name])


def _check_compilable(config: "RunConfig") -> None:
    """What --compile cannot compile, refused in one line before any run starts (compiled.py)."""
    if config.refine == "l2rw":
        raise SaflexError("--compile: learning-to-reweight differentiates the step's backward again, and a compiled "
                          "backward cannot be differentiated (torch.compile has no double backward): run l2rw "
                          "without --compile")
    if config.uses_saflex and config.saflex.pi_mode == "last-layer":
        raise SaflexError("--compile compiles the model's forward and the exact Pi's JVP; pi_mode 'last-layer' calls "
                          "the model's features and head apart: use --pi-mode exact, or run without --compile")


@dataclass(frozen=True)
class SaflexConfig:
    # Appendix C: 0, except tabular (1); inf keeps the upstream label (sign rule)
    beta: Annotated[float, non_negative(inf="keeps the upstream label")] = 0.0
    tau: Annotated[float, positive()] = 0.01  # Appendix C: 0.01, except CLIP (0.1)
    val_batch_size: Annotated[int, integer(1)] = 128  # not given by the paper: this project's choice (docs/method.md)
    gumbel: Annotated[bool, BOOLEAN] = True
    pi_mode: Annotated[str, one_of("exact", "last-layer")] = "exact"  # exact | last-layer (Pi for the final linear layer only; core.py)
    pi_refresh: Annotated[int, integer(1)] = 1  # steps between recomputations of the validation gradient g
    pi_forward: Annotated[str, choice("pi_forward")] = "union"  # exact Pi through the clean + augmented forward the step takes, or the augmented alone
    network_mode: Annotated[str, choice("network_mode")] = "train"  # mode of the validation pass and the JVP (eval: dropout off, BN running stats)
    val_data: Annotated[str, choice("val_data")] = "batch"  # g from a fresh validation batch each step, or the whole validation split
    pi_scale: Annotated[str, choice("pi_scale")] = "raw"  # raw Pi, or divided per batch by its RMS (an ablation, not the paper's)
    pi_params: Annotated[str, choice("pi_params")] = "all"  # parameters Pi is taken over: all, or all but the output layer's bias
    direction: Annotated[str, choice("direction")] = "sgd"  # -g (Theorem 1), or the optimiser's preconditioned step (an extension)

    def __post_init__(self):
        check_fields(self, "saflex.")

    @property
    def frozen_labels(self) -> bool:
        return math.isinf(self.beta) and self.beta > 0


@dataclass(frozen=True)
class OptimConfig:
    name: Annotated[str, choice("name")] = "adam"  # adam | adamw | sgd
    lr: Annotated[float, positive()] = 1e-3
    weight_decay: Annotated[float, non_negative()] = 0.0
    momentum: Annotated[float, interval(0.0, 1.0, high_open=True)] = 0.9  # sgd only
    schedule: Annotated[str, choice("schedule")] = "multistep"  # multistep | cosine | constant
    milestones: Annotated[tuple[float, ...], increasing(0.0, 1.0)] = (0.5, 0.75)  # multistep: fractions of all epochs
    gamma: Annotated[float, interval(0.0, 1.0, low_open=True)] = 0.1  # multistep: LR factor at each milestone
    warmup_steps: Annotated[int, integer(0)] = 0  # cosine: linear warm-up steps

    def __post_init__(self):
        check_fields(self, "optim.")


@dataclass(frozen=True)
class RunConfig:
    family: str
    dataset: str
    model: str
    aug: str = "none"
    refine: str = "none"  # what happens to the augmented batch: REFINE_READS's keys
    seed: Annotated[int, integer(0)] = 0
    epochs: Annotated[int, integer(0, note="0: evaluation only, as FLYP's zero-shot")] = 100
    batch_size: Annotated[int, integer(1)] = 128
    eval_batch_size: Annotated[int, integer(1)] = 512
    train_mode: Annotated[str, choice("train_mode")] = "union"  # union: clean + augmented batch each step (Eq. 3); replace: augmented alone
    selection_holdout: Annotated[float, interval(0.0, 1.0, high_open=True)] = 0.0  # share of the validation split kept for checkpoint selection only
    precision: Annotated[str, choice("precision")] = "auto"  # auto: bf16 autocast on CUDA, fp32 on the CPU
    deterministic: Annotated[bool, BOOLEAN] = False  # torch's deterministic algorithms and cuDNN settings
    # Both change rounding, so a non-default value is part of the identity (identity_payload):
    # auto: BatchNorm CNNs channels-last on CUDA, contiguous on the CPU (compute/runtime.py)
    memory_format: Annotated[str, choice("memory_format")] = "auto"
    compile: Annotated[bool, BOOLEAN] = False  # torch.compile the step's passes (compute/compiled.py)
    data_root: str = "data"
    data_checksums: tuple[tuple[str, str], ...] = ()  # (file, checksum) of every data file the run reads
    optim: OptimConfig = field(default_factory=OptimConfig)
    saflex: SaflexConfig = field(default_factory=SaflexConfig)
    options: tuple[tuple[str, object], ...] = ()  # family-specific settings, (name, value) pairs

    def __post_init__(self):
        check_fields(self)
        if self.refine not in REFINE_READS:
            raise SaflexError(f"unknown refinement {self.refine!r}; choose one of: {', '.join(REFINE_READS)}")
        if self.compile:
            _check_compilable(self)

    def option(self, name: str, default=None):
        return dict(self.options).get(name, default)

    @property
    def uses_saflex(self) -> bool:
        """Whether the run computes SAflex's Pi (SAflex and its two ablations)."""
        return self.refine.startswith("saflex")

    @property
    def uses_validation(self) -> bool:
        """Whether the training step reads the validation stream."""
        return bool(REFINE_READS[self.refine])

    def to_dict(self) -> dict:
        return json.loads(json.dumps(asdict(self)))

    @classmethod
    def from_dict(cls, data: dict) -> "RunConfig":
        data = dict(data)
        data["optim"] = OptimConfig(**{**data["optim"], "milestones": tuple(data["optim"]["milestones"])})
        data["saflex"] = SaflexConfig(**data["saflex"])
        data["options"] = tuple((k, _frozen(v)) for k, v in data["options"])
        data["data_checksums"] = tuple(tuple(pair) for pair in data.get("data_checksums", ()))
        return cls(**data)

    def identity_payload(self, with_seed: bool = True) -> dict:
        """The settings that can change this run's numbers (module docstring)."""
        payload = {k: v for k, v in self.to_dict().items() if k != "data_root"}
        payload["saflex"] = {k: v for k, v in payload["saflex"].items() if k in REFINE_READS[self.refine]}
        if self.aug == "none":
            payload.pop("train_mode")  # nothing to replace
        # Added after records existed: their defaults leave those records' identities as they were.
        if self.memory_format == "auto":
            payload.pop("memory_format")
        if not self.compile:
            payload.pop("compile")
        if self.train_mode == "replace":
            payload["saflex"].pop("pi_forward", None)  # the step's forward is the augmented batch
        if not with_seed:
            payload.pop("seed")
        payload["schema"] = RECORD_SCHEMA
        return payload

    def identity(self) -> str:
        """Short hash of everything that defines the run."""
        return _hash(self.identity_payload())

    def setting_key(self) -> str:
        """The identity without the seed: runs that differ only in it are seeds of one setting."""
        return _hash(self.identity_payload(with_seed=False))

    @property
    def run_name(self) -> str:
        method = self.aug if self.refine == "none" else f"{self.aug}+{self.refine}"
        if self.option("method"):  # families with several methods per augmenter (FLYP: zeroshot, lpft, flyp)
            method = f"{self.option('method')}-{method}"
        model = self.model.replace("/", "-")  # a file name: timm/<name> holds a path separator
        return f"{self.dataset}_{model}_{method}_seed{self.seed}_{self.identity()}"


def _hash(payload: dict) -> str:
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()[:10]


def _frozen(value):
    """JSON lists back to tuples, so a config read from a record equals the one that made it."""
    if isinstance(value, list):
        return tuple(_frozen(v) for v in value)
    if isinstance(value, dict):
        return {k: _frozen(v) for k, v in value.items()}
    return value


def override(config, **changes):
    """dataclasses.replace that ignores None: unset CLI flags keep the recipe's defaults."""
    known = {f.name for f in fields(config)}
    unknown = set(changes) - known
    if unknown:
        raise TypeError(f"unknown settings {sorted(unknown)} for {type(config).__name__}")
    return replace(config, **{k: v for k, v in changes.items() if v is not None})
