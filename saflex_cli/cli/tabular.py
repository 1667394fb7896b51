"""`saflex tabular`: the paper's Table 2, or the same pipeline on a CSV the user brings."""
from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from ..data.tabular import TABLE2_DATASETS
from ..errors import SaflexError
from ..families.tabular import BACKBONE
from . import options as opt
from .common import build_configs, parse_list
from .shared import RunFlags, family_command


@family_command
def tabular(
    model: Annotated[str, typer.Option("--model", help="mlp, saint, a comma list, or 'all'.")] = "saint",
    dataset: opt.Datasets = "qsar",
    aug: opt.Augs = "cutmix",
    saflex: opt.Saflex = False,
    seeds: opt.Seeds = "0,1,2",
    csv: Annotated[Optional[Path], typer.Option("--csv", help="Your own table (CSV); replaces --dataset.")] = None,
    target: Annotated[Optional[str], typer.Option("--target", help="With --csv: the column to predict.")] = None,
    categorical: Annotated[Optional[str], typer.Option("--categorical", help="With --csv: categorical columns, comma list (default: the non-numeric ones).")] = None,
    openml_id: Annotated[Optional[int], typer.Option("--openml-id", help="Load this OpenML dataset id instead of the registry's.")] = None,
    split_seed: Annotated[Optional[int], typer.Option("--split-seed", help="One train/val/test split for every seed (SAINT's --dset_seed); default: the run's seed.")] = None,
    cutmix_prob: Annotated[Optional[float], typer.Option("--cutmix-prob", min=0.0, max=1.0, help="CutMix: probability that a cell is replaced (default 0.3).")] = None,
    batchnorm: Annotated[Optional[bool], typer.Option("--batchnorm/--no-batchnorm", help="MLP: BatchNorm after each hidden layer (default off).")] = None,
    epochs: opt.Epochs = None,
    eval_batch_size: Annotated[Optional[int], typer.Option("--eval-batch-size", min=1, help="Evaluation batch size (fixed; SAINT's rows attend to their batch).")] = None,
    data_root: opt.DataRoot = Path("data"),
    run: RunFlags = None,
) -> None:
    """MLP / SAINT with CutMix, with and without SAflex (Table 2), or on --csv FILE --target COLUMN."""
    models = list(BACKBONE) if model == "all" else parse_list(model, "--model")
    unknown = [m for m in models if m not in BACKBONE]
    if unknown:
        raise SaflexError(f"unknown tabular model(s) {', '.join(unknown)}; choose from: {', '.join(BACKBONE)}, all")
    if csv is None and (target or categorical):
        raise SaflexError("--target and --categorical describe a --csv table: give --csv FILE too")
    if csv is not None and openml_id is not None:
        raise SaflexError("give either --csv or --openml-id, not both")
    datasets, known = (f"csv-{csv.stem}", None) if csv is not None else (dataset, TABLE2_DATASETS)
    if openml_id is not None and (dataset == "all" or len(parse_list(dataset, "--dataset")) > 1):
        raise SaflexError("--openml-id replaces the source of one dataset: give a single --dataset")
    options = {"csv": str(csv) if csv else None, "target": target, "openml_id": openml_id, "split_seed": split_seed,
               "categorical": tuple(parse_list(categorical, "--categorical")) if categorical else None,
               "aug_kwargs": {"prob": cutmix_prob} if cutmix_prob is not None else None, "batchnorm": batchnorm}
    configs = [config for name in models for config in build_configs(
        "tabular", datasets, aug, saflex, seeds, known_datasets=known,
        train={"model": name, "epochs": epochs, "eval_batch_size": eval_batch_size,
               "data_root": str(data_root)},
        options=options)]
    run.execute(configs)
