"""`saflex tabular`: the paper's Table 2, or the same pipeline on a CSV the user brings."""
from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from ..errors import SaflexError
from . import options as opt
from .common import build_configs, parse_list
from .shared import RunFlags, family_command


@family_command
def tabular(
    model: Annotated[str, typer.Option("--model", help="mlp, saint, a comma list, or 'all'.", rich_help_panel=opt.TRAINING)] = "saint",
    dataset: opt.Datasets = "qsar",
    aug: opt.Augs = "cutmix",
    saflex: opt.Saflex = False,
    refine: opt.Refine = None,
    seeds: opt.Seeds = "0,1,2",
    csv: Annotated[Optional[Path], typer.Option("--csv", help="Your own table (CSV); replaces --dataset.", rich_help_panel=opt.DATA)] = None,
    target: Annotated[Optional[str], typer.Option("--target", help="With --csv: the column to predict.", rich_help_panel=opt.DATA)] = None,
    categorical: Annotated[Optional[str], typer.Option("--categorical", help="With --csv: the categorical columns, the whole comma list (default: the text ones, and integers beyond 2**53).", rich_help_panel=opt.DATA)] = None,
    na_values: Annotated[Optional[str], typer.Option("--na-values", help="With --csv: more markers of a missing cell, comma list (e.g. '?'), besides pandas' own (empty, NA, nan, ...).", rich_help_panel=opt.DATA)] = None,
    no_header: Annotated[bool, typer.Option("--no-header", help="With --csv: the file has no header row; columns are named by position 0..n-1 (for --target, --categorical, --drop).", rich_help_panel=opt.DATA)] = False,
    drop: Annotated[Optional[str], typer.Option("--drop", help="With --csv: columns to leave out (ids), comma list.", rich_help_panel=opt.DATA)] = None,
    positive: Annotated[Optional[str], typer.Option("--positive", help="With --csv: the target values that make the positive class, comma list; the rest are negative (a binary task from a multi-class column, e.g. 3,4,5,7,8,9,14,15 for UCI Arrhythmia as ODDS).", rich_help_panel=opt.DATA)] = None,
    openml_id: Annotated[Optional[int], typer.Option("--openml-id", help="Load this OpenML dataset id instead of the registry's.", rich_help_panel=opt.DATA)] = None,
    split_seed: Annotated[Optional[int], typer.Option("--split-seed", help="One train/val/test split for every seed (SAINT's --dset_seed); default: the run's seed.", rich_help_panel=opt.DATA)] = None,
    constant_columns: Annotated[Optional[str], typer.Option("--constant-columns", help="A column constant in the training rows: unscaled (default; scale 1, as scikit-learn's StandardScaler) | floor (SAINT's 1e-6 std floor: a val/test value of 1 becomes 1e6). Recorded only in the runs it touches.", rich_help_panel=opt.DATA)] = None,
    cutmix_prob: Annotated[Optional[float], typer.Option("--cutmix-prob", min=0.0, max=1.0, help="CutMix: probability that a cell is replaced (default 0.3).", rich_help_panel=opt.METHOD)] = None,
    batchnorm: Annotated[Optional[bool], typer.Option("--batchnorm/--no-batchnorm", help="MLP: BatchNorm after each hidden layer (default off).", rich_help_panel=opt.TRAINING)] = None,
    epochs: opt.Epochs = None,
    eval_batch_size: Annotated[Optional[int], typer.Option("--eval-batch-size", min=1, help="Evaluation batch size (fixed; SAINT's rows attend to their batch).", rich_help_panel=opt.TRAINING)] = None,
    data_root: opt.DataRoot = Path("data"),
    run: RunFlags = None,
) -> None:
    """MLP / SAINT with CutMix, with and without SAflex (Table 2), or on --csv FILE --target COLUMN.

    Example: saflex tabular --model mlp --dataset qsar --aug all --beta 0,1,inf --seeds 0,1,2
    """
    from ..data.tabular import TABLE2_DATASETS
    from ..families.tabular import BACKBONE, fit_batch_to_width
    models = list(BACKBONE) if model == "all" else parse_list(model, "--model")
    unknown = [m for m in models if m not in BACKBONE]
    if unknown:
        raise SaflexError(f"unknown tabular model(s) {', '.join(unknown)}; choose from: {', '.join(BACKBONE)}, all")
    if csv is None and (target or categorical or na_values or no_header or drop or positive):
        raise SaflexError("--target, --categorical, --na-values, --no-header, --drop and --positive describe a --csv "
                          "table: give --csv FILE too")
    if csv is not None and openml_id is not None:
        raise SaflexError("give either --csv or --openml-id, not both")
    datasets, known = (f"csv-{csv.stem}", None) if csv is not None else (dataset, TABLE2_DATASETS)
    if openml_id is not None and (dataset == "all" or len(parse_list(dataset, "--dataset")) > 1):
        raise SaflexError("--openml-id replaces the source of one dataset: give a single --dataset")
    options = {"csv": str(csv) if csv else None, "target": target, "openml_id": openml_id, "split_seed": split_seed,
               "categorical": tuple(parse_list(categorical, "--categorical")) if categorical else None,
               "na_values": tuple(parse_list(na_values, "--na-values")) if na_values else None,
               "no_header": True if no_header else None, "drop": tuple(parse_list(drop, "--drop")) if drop else None,
               "positive": tuple(parse_list(positive, "--positive")) if positive else None,
               "constant_columns": constant_columns,
               "aug_kwargs": {"prob": cutmix_prob} if cutmix_prob is not None else None, "batchnorm": batchnorm}
    configs = [config for name in models for config in build_configs(
        "tabular", datasets, aug, saflex, seeds, refine=refine, known_datasets=known,
        train={"model": name, "epochs": epochs, "eval_batch_size": eval_batch_size,
               "data_root": str(data_root)},
        options=options)]
    if run.settings["batch_size"] is None or run.settings["val_batch_size"] is None:  # given flags win over the width rule
        configs = fit_batch_to_width(configs, dry_run=run.dry_run)
    run.execute(configs)
