"""Diffusion-generated augmentations (paper Table 3): SAflex in place of ALIA's hand-made filter.

Real train images (from disk, via LoaderBatches) are trained beside an equal-size batch drawn
from a pool of generated images (augment/pool.py), or beside their RandAugment twins; SAflex
decides per generated image whether to trust it and which label it deserves. Recipe of ALIA /
paper Appendix C: ResNet-50 from torchvision's ImageNet weights, new head, full fine-tuning;
class-weighted CE with weights (1/count)/max(1/count) over the combined training set; SGD
momentum 0.9, weight decay 1e-4, lr 0.01 (CUB) / 0.001 (iWildCam), cosine over 100 epochs,
batch 128; SAflex beta = 0, tau = 0.01; its validation batch, 128, is this project's choice (the
training batch; the paper gives none).
"""
from __future__ import annotations

import dataclasses
from pathlib import Path

import torch

from ..config import OptimConfig, RunConfig, SaflexConfig
from ..data import cub, iwildcam  # noqa: F401  (registers the datasets)
from ..data.batches import CyclingBatches, LoaderBatches, TensorBatches
from ..data.images import GenerationData, preload
from ..data.pools import ensure_manifest, read_pool_images, select_pool
from ..domains import BOOLEAN, each, integer, interval, optional, text
from ..errors import SaflexError
from ..method.objectives import CrossEntropy
from ..registry import AUGMENTERS, BACKBONES, DATASETS, FAMILIES
from ..training.evaluation import ClassifierEvaluator
from ..training.trainer import TrainSetup
from .base import REFINE_LABELS, Cell, Option, Recipe, make_augmenter, require_plain_validation, upstream_method_label

COLUMNS = {"cub": "cub (fine-grained)", "iwildcam": "iwildcam (OOD)"}
LEARNING_RATES = {"cub": 0.01, "iwildcam": 0.001}  # ALIA configs/*/base.yaml
POOL_LABELS = {"txt2img": "Text2Img", "instructpix2pix": "InstructPix2Pix", "img2img": "Img2Img (w/o finetune)"}
REAL_EXTRA = "Real extra (reference)"
METRICS = ("acc", "balanced_acc", "macro_f1")
METRIC_NAMES = {"balanced_acc": "balanced acc", "macro_f1": "macro-F1"}
PAPER_MODEL = {"resnet50": "ResNet-50"}


def defaults(dataset: str) -> RunConfig:
    if dataset not in COLUMNS:
        raise SaflexError(f"unknown diffusion dataset {dataset!r}; choose from: {', '.join(COLUMNS)}")
    return RunConfig(
        family="diffusion", dataset=dataset, model="resnet50", epochs=100, batch_size=128, eval_batch_size=256,
        optim=OptimConfig(name="sgd", lr=LEARNING_RATES[dataset], momentum=0.9, weight_decay=1e-4, schedule="cosine"),
        saflex=SaflexConfig(beta=0.0, tau=0.01, val_batch_size=128),
        options=(("image_size", 224), ("pretrained", "imagenet"), ("val_fraction", 0.1), ("split_seed", 0),
                 ("loader_workers", 4), ("real_extra", False)),
    )


def pool_options(pool: Path, prompts: tuple[str, ...] | None, label: str | None) -> dict:
    """What a run records about its pool: where, which prompts, its label, and the manifest's checksum
    (part of the run's identity, so changed images make a new run rather than a skipped one)."""
    manifest = ensure_manifest(pool)
    method = manifest.images[0].method
    return {"pool": str(Path(pool).resolve()), "pool_prompts": tuple(prompts) if prompts else None,
            "pool_label": label or POOL_LABELS[method], "pool_manifest": manifest.checksum}


def scope_pool_options(configs: list[RunConfig]) -> list[RunConfig]:
    """Pool settings belong to pool runs only: a No Aug run must not change identity with the pool."""
    return [c if c.aug == "pool" else dataclasses.replace(c, options=tuple((k, v) for k, v in c.options
                                                                         if not k.startswith("pool")))
            for c in configs]


def class_balance_weights(labels: torch.Tensor, num_classes: int) -> torch.Tensor:
    """ALIA's get_counts: (1 / count) / max(1 / count) over the combined training set."""
    inverse = 1.0 / torch.bincount(labels, minlength=num_classes).clamp_min(1).float()
    return inverse / inverse.max()


def load_generated_pool(config: RunConfig, data: GenerationData):
    folder = Path(config.option("pool") or "")
    if not config.option("pool"):
        raise SaflexError("--aug pool needs --pool DIR: a folder {root}/{method}/{dataset} of generated images")
    manifest = ensure_manifest(folder)
    expected = config.option("pool_manifest")
    if expected and manifest.checksum != expected:
        raise SaflexError(f"pool {folder} is not the one this run was configured with (manifest checksum "
                          f"{manifest.checksum[:12]} != {expected[:12]}): run the command again to configure it anew")
    extra_counts = torch.bincount(data.extra.targets, minlength=data.splits.num_classes).tolist()
    prompts = config.option("pool_prompts")
    selection = select_pool(manifest, data.class_folders, dict(enumerate(extra_counts)), seed=config.seed,
                            prompts=tuple(prompts) if prompts else None, held_out=data.held_out)
    images = read_pool_images(folder, selection.images, data.splits.train.inputs.transform)
    return selection, images


def build(config: RunConfig, device: torch.device) -> TrainSetup:
    require_plain_validation(config)
    data: GenerationData = DATASETS.get(config.dataset)(
        Path(config.data_root), image_size=config.option("image_size", 224),
        val_fraction=config.option("val_fraction", 0.1), split_seed=config.option("split_seed", 0))
    splits, workers = data.splits, config.option("loader_workers", 0)
    train_set, train_labels = splits.train.inputs, splits.train.targets
    provenance = {**splits.provenance, "class_names": data.class_names}
    augmenter = None
    if config.option("real_extra"):
        if config.aug != "none" or config.refine != "none":
            raise SaflexError("the real-extra reference trains on real + real extra images only: use it with --aug none --no-saflex")
        train_set = torch.utils.data.ConcatDataset([train_set, data.extra.inputs])
        train_labels = torch.cat([train_labels, data.extra.targets])
    elif config.aug == "pool":
        selection, images = load_generated_pool(config, data)
        augmenter = AUGMENTERS.get("pool")(images.to(device), torch.tensor(selection.labels).to(device),
                                           torch.tensor(selection.source_ids).to(device))
        train_labels = torch.cat([train_labels, torch.tensor(selection.labels)])
        provenance["pool"] = selection.provenance
    else:
        augmenter = make_augmenter(config)
    weights = class_balance_weights(train_labels, splits.num_classes).to(device)
    model = BACKBONES.get(config.model)(num_classes=splits.num_classes, normalize=data.normalize,
                                        pretrained=config.option("pretrained", "imagenet"))
    val, test = preload(splits.val.inputs, workers), preload(splits.test.inputs, workers)
    train_batches = LoaderBatches(train_set, config.batch_size, device, seed=config.seed, num_workers=workers)
    # Separate seed: the validation stream must not follow the training order.
    val_batches = CyclingBatches(TensorBatches(val.inputs.to(device), val.targets.to(device),
                                               config.saflex.val_batch_size, seed=config.seed + 7919, min_batch=1))
    evaluator = ClassifierEvaluator({"val": val, "test": test}, METRICS, config.eval_batch_size, device,
                                    config.precision)
    return TrainSetup(model=model, objective=CrossEntropy(class_weights=weights), train_batches=train_batches,
                      val_batches=val_batches, augmenter=augmenter, evaluate=evaluator,
                      num_classes=splits.num_classes, selection=("acc",), provenance=provenance)


def method_label(config: dict) -> str:
    options, refine = dict(config["options"]), config["refine"]
    if options.get("real_extra"):
        return REAL_EXTRA
    if config["aug"] == "pool":
        label = options["pool_label"]
        return f"{REFINE_LABELS[refine]} (w/ {label.replace('(', '').replace(')', '')})" if refine != "none" else label
    return upstream_method_label(config["aug"], refine, {"randaug": "RandAug"})


def cells(record: dict, selection: str) -> list[Cell]:
    """Test accuracy (the paper's metric) in the paper's column; balanced accuracy and macro-F1 beside it."""
    config = record["config"]
    method, test = method_label(config), record["selections"][selection]["test"]
    model, column = PAPER_MODEL.get(config["model"], config["model"]), COLUMNS[config["dataset"]]
    return [Cell(method, model, column if metric == "acc" else f"{column} · {METRIC_NAMES[metric]}", test[metric] * 100)
            for metric in METRICS]


# Real training images: CUB's train subset before its validation carve-out (data/cub.py) and
# ALIA's iWildCam train list; the real extra sets are added by --real-extra.
TRAIN_IMAGES = {"cub": 4_994, "iwildcam": 6_052}
EXTRA_IMAGES = {"cub": 1_000, "iwildcam": 2_224}


def train_size(config: RunConfig) -> int:
    held_out = config.option("val_fraction", 0.1) if config.dataset == "cub" else 0.0
    return round(TRAIN_IMAGES[config.dataset] * (1 - held_out)) + \
        (EXTRA_IMAGES[config.dataset] if config.option("real_extra") else 0)


def data_files(config: RunConfig) -> list[tuple[str, object]]:
    """CUB's metadata files (the images are identified by them; iWildCam's lists ship with the
    package, the pool by its manifest checksum in the options) and a local weights file."""
    files: list[tuple[str, object]] = []
    if config.dataset == "cub":
        files = [(name, Path(config.data_root) / "CUB_200_2011" / name) for name in cub.METADATA]
    pretrained = str(config.option("pretrained", "imagenet"))
    return files + ([(Path(pretrained).name, Path(pretrained))] if Path(pretrained).is_file() else [])


RECIPE = FAMILIES.register("diffusion")(Recipe(
    name="diffusion", datasets=tuple(COLUMNS), augmenters=("none", "randaug", "pool"), table=3,
    methods=("No Aug", "RandAug", "SAflex (w/ RandAug)", "Text2Img", "SAflex (w/ Text2Img)", "InstructPix2Pix",
             "SAflex (w/ InstructPix2Pix)", "Img2Img (w/o finetune)", "SAflex (w/ Img2Img w/o finetune)",
             "Img2Img (w/ finetune)", "SAflex (w/ Img2Img w/ finetune)", REAL_EXTRA),
    defaults=defaults, build=build, cells=cells, selection="best_val_acc",
    caption="Test accuracy (%) of ResNet-50 fine-tuned on the CUB and iWildCam subsets of ALIA, real images "
            "plus diffusion-generated ones, without and with SAflex (balanced accuracy and macro-F1 beside)",
    train_size=train_size, data_files=data_files,
    options={"image_size": Option("image side in pixels", integer(1)),
             "pretrained": Option("imagenet, none or a local weights file", text()),
             "val_fraction": Option("CUB: share of train held out for validation", interval(0.0, 1.0, low_open=True,
                                                                                             high_open=True)),
             "split_seed": Option("CUB's validation split", integer(0)),
             "loader_workers": Option("image-decoding processes", integer(0)),
             "real_extra": Option("the real-extra reference row", BOOLEAN),
             "pool": Option("generated pool folder", optional(text("a folder path")), str),
             "pool_prompts": Option("prompt folders used", optional(each(text())), tuple[str, ...]),
             "pool_label": Option("the pool's row", optional(text()), str)},
))
