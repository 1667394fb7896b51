"""Options shared by the family commands, as Annotated aliases. None means 'recipe default'."""
from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

Datasets = Annotated[str, typer.Option("--dataset", help="A dataset name, a comma list, or 'all' (the paper's table columns).")]
Augs = Annotated[str, typer.Option("--aug", help="Upstream augmenter(s), comma list; 'all' runs every row of the paper's table.")]
Saflex = Annotated[bool, typer.Option("--saflex/--no-saflex", help="Refine the augmented samples with SAflex.")]
Seeds = Annotated[str, typer.Option("--seeds", help="Comma list of seeds, e.g. 0,1,2.")]
Epochs = Annotated[Optional[int], typer.Option(min=1, help="Training epochs (recipe default if unset).")]
BatchSize = Annotated[Optional[int], typer.Option("--batch-size", min=2, help="Training batch size.")]
Lr = Annotated[Optional[float], typer.Option("--lr", min=0.0, help="Learning rate.")]
Beta = Annotated[Optional[float], typer.Option(help="SAflex beta: bonus for keeping the upstream label.")]
Tau = Annotated[Optional[float], typer.Option(min=1e-8, help="SAflex Gumbel-softmax temperature (> 0).")]
ValBatchSize = Annotated[Optional[int], typer.Option("--val-batch-size", min=1, help="SAflex validation batch size.")]
PiMode = Annotated[Optional[str], typer.Option("--pi-mode", help="SAflex Pi: 'exact' (every parameter, one JVP) or 'last-layer' (final linear layer, closed form; cheaper).")]
PiRefresh = Annotated[Optional[int], typer.Option("--pi-refresh", min=1, help="Recompute SAflex's validation gradient every K steps, reuse it in between (default 1).")]
DataRoot = Annotated[Path, typer.Option("--data-root", help="Folder holding (or receiving) the dataset files.")]
Out = Annotated[Path, typer.Option("--out", help="Results folder: run records go to OUT/runs/, tables to OUT/.")]
Device = Annotated[Optional[str], typer.Option(help="Torch device (default: cuda if present, else cpu).")]
Quiet = Annotated[bool, typer.Option("--quiet", help="No progress bars.")]
DryRun = Annotated[bool, typer.Option("--dry-run", help="List the runs (which are recorded) and their estimated device-hours, without training.")]
RetryFailed = Annotated[bool, typer.Option("--retry-failed", help="Rerun runs whose record says failed (NaN, out of memory).")]
Force = Annotated[bool, typer.Option("--force", help="Move records of the same cells made with another config to OUT/superseded/.")]
Workers = Annotated[int, typer.Option("--workers", min=1, help="Worker processes sharing the grid on this machine (one per GPU when there are several).")]
CheckpointEvery = Annotated[int, typer.Option("--checkpoint-every", min=0, help="Also checkpoint every N steps (0: at epoch ends only).")]
Executor = Annotated[str, typer.Option("--executor", help="local (this machine), or slurm / submitit-local: one array job through submitit.")]
LoaderWorkers = Annotated[Optional[int], typer.Option("--loader-workers", min=0, help="Image-decoding worker processes of the data loader.")]
Throughput = Annotated[Optional[Path], typer.Option("--throughput", help="Benchmark JSON (benchmarks/overhead.py) for the --dry-run estimate; default: the package's saflex_cli/resources/benchmarks/overhead-<device>.json.")]
