"""Run configuration as dataclasses: printed at the start of a run and saved in its record."""
from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field, fields, replace

RECORD_SCHEMA = 1  # bump when the meaning of a record field changes: old records no longer count


@dataclass(frozen=True)
class SaflexConfig:
    enabled: bool = False
    beta: float = 0.0  # Appendix C: 0, except tabular (1)
    tau: float = 0.01  # Appendix C: 0.01, except CLIP (0.1)
    val_batch_size: int = 128
    gumbel: bool = True
    pi_mode: str = "exact"  # exact | last-layer (Pi for the final linear layer only; core.py)
    pi_refresh: int = 1  # steps between recomputations of the validation gradient g


@dataclass(frozen=True)
class OptimConfig:
    name: str = "adam"  # adam | adamw | sgd
    lr: float = 1e-3
    weight_decay: float = 0.0
    momentum: float = 0.9  # sgd only
    schedule: str = "multistep"  # multistep | cosine | constant
    milestones: tuple[float, ...] = (0.5, 0.75)  # multistep: fractions of all steps
    gamma: float = 0.1  # multistep: LR factor at each milestone
    warmup_steps: int = 0  # cosine: linear warm-up steps


@dataclass(frozen=True)
class RunConfig:
    family: str
    dataset: str
    model: str
    aug: str = "none"
    seed: int = 0
    epochs: int = 100
    batch_size: int = 128
    eval_batch_size: int = 512
    data_root: str = "data"
    optim: OptimConfig = field(default_factory=OptimConfig)
    saflex: SaflexConfig = field(default_factory=SaflexConfig)
    options: tuple[tuple[str, object], ...] = ()  # family-specific settings, (name, value) pairs

    def option(self, name: str, default=None):
        return dict(self.options).get(name, default)

    def to_dict(self) -> dict:
        return json.loads(json.dumps(asdict(self)))

    @classmethod
    def from_dict(cls, data: dict) -> "RunConfig":
        data = dict(data)
        data["optim"] = OptimConfig(**{**data["optim"], "milestones": tuple(data["optim"]["milestones"])})
        data["saflex"] = SaflexConfig(**data["saflex"])
        data["options"] = tuple((k, v) for k, v in data["options"])
        return cls(**data)

    def identity(self) -> str:
        """Short hash of everything that defines the run; the data root is where, not what."""
        payload = {k: v for k, v in self.to_dict().items() if k != "data_root"}
        payload["schema"] = RECORD_SCHEMA
        return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()[:10]

    @property
    def run_name(self) -> str:
        method = f"{self.aug}{'+saflex' if self.saflex.enabled else ''}"
        if self.option("method"):  # families with several methods per augmenter (FLYP: zeroshot, lpft, flyp)
            method = f"{self.option('method')}-{method}"
        model = self.model.replace("/", "-")  # a file name: timm/<name> holds a path separator
        return f"{self.dataset}_{model}_{method}_seed{self.seed}_{self.identity()}"


def override(config, **changes):
    """dataclasses.replace that ignores None: unset CLI flags keep the recipe's defaults."""
    known = {f.name for f in fields(config)}
    unknown = set(changes) - known
    if unknown:
        raise TypeError(f"unknown settings {sorted(unknown)} for {type(config).__name__}")
    return replace(config, **{k: v for k, v in changes.items() if v is not None})
