"""Options shared by the commands, as Annotated aliases, grouped into help panels.

None means 'recipe default'. The training and SAflex settings are text so that each takes a comma
list (a sweep: the runs are the cross product of every swept setting); settings.py parses them
against the config dataclasses, which hold the allowed values of every enumerated one.
"""
from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from ..config import CHOICES, REFINE_READS, SAVE_MODEL

DATA, METHOD, TRAINING, SAFLEX, SETTINGS, EXECUTION = "Data", "Method", "Training", "SAflex", "Settings", "Execution"


def _choices(name: str) -> str:
    values = CHOICES[name]
    return f"{values[0]} (default) | " + " | ".join(values[1:])


def _sweep(flag: str, help_text: str, panel: str):
    return Annotated[Optional[str], typer.Option(flag, help=f"{help_text} Comma list to sweep.", rich_help_panel=panel)]


Datasets = Annotated[str, typer.Option("--dataset", help="A dataset name, a comma list, or 'all' (the paper's table columns).", rich_help_panel=DATA)]
DataRoot = Annotated[Path, typer.Option("--data-root", help="Folder holding every dataset, a subfolder per family (medmnist/, tabular/, iwildcam_v2.0/, CUB_200_2011/, pools/, clip/); a folder named after the family is used as it is.", rich_help_panel=DATA)]
LoaderWorkers = Annotated[Optional[int], typer.Option("--loader-workers", min=0, help="Image-decoding worker processes of the data loader.", rich_help_panel=DATA)]

Augs = Annotated[str, typer.Option("--aug", help="Upstream augmenter(s), comma list; 'all' runs every row of the paper's table.", rich_help_panel=METHOD)]
Saflex = Annotated[bool, typer.Option("--saflex/--no-saflex", help="Refine the augmented samples with SAflex (same as --refine saflex).", rich_help_panel=METHOD)]
Refine = Annotated[Optional[str], typer.Option(
    "--refine", help=f"What the step does with the augmented batch, comma list: {' | '.join(REFINE_READS)} "
                     f"(none: upstream labels, uniform weights; with --aug all: each upstream under each).",
    rich_help_panel=METHOD)]
Seeds = Annotated[str, typer.Option("--seeds", help="Seeds (integers >= 0, each once): a comma list, ranges included, e.g. 0,1,2 or 0-9 or 0-4,10.", rich_help_panel=METHOD)]

Epochs = Annotated[Optional[int], typer.Option(min=1, help="Training epochs (recipe default if unset).", rich_help_panel=TRAINING)]
BatchSize = _sweep("--batch-size", "Training batch size.", TRAINING)
Lr = _sweep("--lr", "Learning rate.", TRAINING)
TrainMode = _sweep("--train-mode", f"Each step trains on {_choices('train_mode')}: the clean + augmented batch (Eq. 3), or the augmented batch alone.", TRAINING)
SelectionHoldout = _sweep("--selection-holdout", "Share of the validation split kept for checkpoint selection only (SAflex never sees it; default 0).", TRAINING)
Precision = _sweep("--precision", f"Numerics: {_choices('precision')} (auto: bf16 autocast on CUDA, fp32 on the CPU; fp16 with a grad scaler).", TRAINING)
Deterministic = Annotated[bool, typer.Option("--deterministic", help="torch's deterministic algorithms and cuDNN settings (recorded).", rich_help_panel=TRAINING)]
MemoryFormat = _sweep("--memory-format", f"BatchNorm CNNs' memory: {_choices('memory_format')} (auto: channels-last on CUDA, contiguous on the CPU; changes rounding, so part of the run's identity when given).", TRAINING)
Compile = Annotated[bool, typer.Option("--compile", help="torch.compile the training step: the model's forward and backward and the exact Pi's JVP (recorded; part of the run's identity: compiled runs never pool with eager ones).", rich_help_panel=TRAINING)]

Beta = _sweep("--beta", "SAflex beta: bonus for keeping the upstream label; inf keeps it (learning-to-reweight's sign rule).", SAFLEX)
Tau = _sweep("--tau", "SAflex Gumbel-softmax temperature (> 0).", SAFLEX)
ValBatchSize = _sweep("--val-batch-size", "Validation batch of SAflex's gradient g.", SAFLEX)
ValData = _sweep("--val-data", f"g from {_choices('val_data')}: a fresh validation batch each step, or the whole (small) validation split.", SAFLEX)
PiMode = _sweep("--pi-mode", "Pi over: exact (default; every parameter, one JVP) | last-layer (final linear layer, closed form).", SAFLEX)
PiRefresh = _sweep("--pi-refresh", "Recompute g every K steps, reuse it in between (default 1).", SAFLEX)
PiForward = _sweep("--pi-forward", f"Exact Pi through {_choices('pi_forward')}: the forward the step differentiates, or the augmented batch alone.", SAFLEX)
NetworkMode = _sweep("--network-mode", f"Network mode of the validation pass and the JVP: {_choices('network_mode')}.", SAFLEX)
PiScale = _sweep("--pi-scale", f"Pi {_choices('pi_scale')}: raw, or divided per batch by its RMS (an ablation, not the paper's).", SAFLEX)
PiParams = _sweep("--pi-params", f"Parameters Pi is taken over: {_choices('pi_params')}.", SAFLEX)
Direction = _sweep("--direction", f"Step Pi describes: {_choices('direction')} (-g as Theorem 1, or the optimiser's preconditioned step; an extension).", SAFLEX)

Set = Annotated[Optional[list[str]], typer.Option(
    "--set", help="KEY=VALUE over any setting (repeatable; dotted: optim.weight_decay=5e-4, aug.alpha=0.4, "
                  "options.dropout=0.2); KEY=V1,V2 sweeps; tuples in brackets: optim.milestones=[0.5,0.75].",
    rich_help_panel=SETTINGS)]
ConfigFile = Annotated[Optional[Path], typer.Option("--config", help="TOML or YAML file of settings (tables are dotted keys; a list sweeps); flags override it.", rich_help_panel=SETTINGS)]

Out = Annotated[Path, typer.Option("--out", help="Results folder: run records go to OUT/runs/, tables to OUT/.", rich_help_panel=EXECUTION)]
Device = Annotated[Optional[str], typer.Option(help="Torch device: cpu, cuda, cuda:N (default: cuda if present, else cpu).", rich_help_panel=EXECUTION)]
Quiet = Annotated[bool, typer.Option("--quiet", help="No progress bars or per-epoch lines (without a terminal, or in --workers processes, each epoch prints one line).", rich_help_panel=EXECUTION)]
SaveModel = Annotated[str, typer.Option("--save-model", help=f"Weights kept beside each new record as <run>.<selection>.safetensors: {' | '.join(SAVE_MODEL)} (best, the default: the family's selection, e.g. best_val_acc; all: every selection). Not part of the run's identity.", rich_help_panel=EXECUTION)]
TensorBoard = Annotated[bool, typer.Option("--tensorboard", help="Also write each epoch's scalars under OUT/tensorboard/<run>/ (pip install 'saflex[tensorboard]').", rich_help_panel=EXECUTION)]
DryRun = Annotated[bool, typer.Option("--dry-run", help="List the runs (which are recorded) and their estimated device-hours, without training.", rich_help_panel=EXECUTION)]
RetryFailed = Annotated[bool, typer.Option("--retry-failed", help="Rerun runs whose record says failed (NaN, out of memory).", rich_help_panel=EXECUTION)]
Force = Annotated[bool, typer.Option("--force", help="Move stale records (same settings, other data or record schema) to OUT/superseded/.", rich_help_panel=EXECUTION)]
Workers = Annotated[int, typer.Option("--workers", min=1, help="Worker processes sharing the grid on this machine (one per GPU when there are several).", rich_help_panel=EXECUTION)]
CheckpointEvery = Annotated[int, typer.Option("--checkpoint-every", min=0, help="Also checkpoint every N steps (0: at epoch ends only).", rich_help_panel=EXECUTION)]
Executor = Annotated[str, typer.Option("--executor", help="local (default; this machine) | slurm | submitit-local: one array job through submitit.", rich_help_panel=EXECUTION)]
Throughput = Annotated[Optional[Path], typer.Option("--throughput", help="Benchmark JSON (benchmarks/overhead.py) for the --dry-run estimate; default: this machine's calibration (benchmarks/overhead.py --quick, in ~/.cache/saflex/benchmarks/) if written, else the package's saflex_cli/resources/benchmarks/overhead-<device>.json.", rich_help_panel=EXECUTION)]
ShowConfig = Annotated[bool, typer.Option("--show-config", hidden=True, help="Print the resolved configs and stop (saflex config show).")]
