"""FLYP on iWildCam (paper Table 4): contrastive fine-tuning of CLIP ViT-B/16, SAflex optional.

Methods: zero-shot (no training: an epoch-0 evaluation), LP-FT (a logistic-regression head on
frozen features, then full cross-entropy fine-tuning from it) and FLYP (CLIP's contrastive loss
with the batch's captions as classes), with WILDS' RandAugment and SAflex (beta = 0, tau = 0.1,
Appendix C). Defaults are FLYP's iWildCam recipe: AdamW lr 1e-5, weight decay 0.2, batch 256,
20 epochs of ceil(129,809 / 256) = 508 steps, 500 warm-up steps then cosine to 0. SAflex's
validation batch, 256, is this project's choice (the training batch; the paper gives none).

Every epoch evaluates the zero-shot head rebuilt from the current text tower (LP-FT: its own
head) on id_val (selection), id_test (ID) and test (OOD) with WILDS' macro-F1 and accuracy, and
the WiSE-FT interpolation with the zero-shot weights, alpha chosen on id_val.
"""
from __future__ import annotations

import dataclasses
import math
from pathlib import Path

import numpy as np
import torch
from sklearn.linear_model import LogisticRegression

from ..augment.paired import ImagePart
from ..compute.runtime import autocast
from ..config import OptimConfig, RunConfig, SaflexConfig
from ..data.batches import CyclingBatches, LoaderBatches, StepsPerEpoch
from ..data.catalog import DataFile, register_catalog
from ..data.images import ImageFiles
from ..data.wilds import NUM_CLASSES, WILDS_SPLITS, CaptionedImages, eval_transform, load_iwildcam
from ..domains import PROBABILITY, each, integer, one_of, optional, positive, text
from ..errors import SaflexError
from ..method.objectives import Contrastive, CrossEntropy
from ..models.clip import (ClipModel, class_embeddings, image_classifier, image_size, load_clip, set_zero_shot_head,
                           tokenizer, weights_source)
from ..registry import AUGMENTERS, FAMILIES
from ..training import metrics
from ..training.ensembling import DEFAULT_ALPHAS, WeightEnsemble
from ..training.trainer import TrainSetup
from .base import Cell, Option, Recipe, require_plain_validation, upstream_method_label

METHODS = ("zeroshot", "lpft", "flyp")
UPSTREAM = {"randaug": "wilds-randaug"}  # iWildCam's RandAugment is WILDS' FixMatch version
AUG_NAMES = {"randaug": "RandAug"}
PAPER_MODEL = {"ViT-B-16-quickgelu": "CLIP ViT-B/16"}
METRICS = ("macro_f1", "acc")
LP_INVERSE_REGULARISATION = tuple(np.logspace(-1, 2, 7).round(4))  # C grid of the linear probe
COLUMNS = {"ID w/o ensembling": "id_macro_f1", "OOD w/o ensembling": "ood_macro_f1",
           "ID w/ ensembling": "ensembled_id_macro_f1", "OOD w/ ensembling": "ensembled_ood_macro_f1"}


def defaults(dataset: str = "iwildcam") -> RunConfig:
    return RunConfig(
        family="flyp", dataset=dataset, model="ViT-B-16-quickgelu", epochs=20, batch_size=256, eval_batch_size=512,
        optim=OptimConfig(name="adamw", lr=1e-5, weight_decay=0.2, schedule="cosine", warmup_steps=500),
        saflex=SaflexConfig(beta=0.0, tau=0.1, val_batch_size=256),
        options=(("method", "flyp"), ("pretrained", "openai"), ("loader_workers", 8), ("ensemble_alphas", DEFAULT_ALPHAS)),
    )


@register_catalog("clip")
def weights_catalog(data_root: Path) -> list[DataFile]:
    """The recipe's CLIP weights where `make reproduce-flyp` passes them: DATA/clip/<file>. open_clip
    publishes no checksum, so only presence and a whole archive count."""
    config = defaults()
    filename, url = weights_source(config.model, config.option("pretrained"))
    return [DataFile(f"clip/{config.model}.{config.option('pretrained')}", Path(data_root) / "clip" / filename, (url,))]


class Scorer:
    """Macro-F1 (WILDS) and accuracy of a model's class scores on fixed image splits.

    The images of `keep` (id_val, scored once per ensembling weight every epoch) are decoded
    once and kept in host memory as uint8 (7,314 x 3 x 224 x 224: 1.1 GB).
    """

    def __init__(self, splits: dict[str, ImageFiles], class_tokens, config: RunConfig, device: torch.device,
                 keep: str = "id_val"):
        self.splits, self.class_tokens, self.device, self.keep = splits, class_tokens, device, keep
        self.batch_size, self.workers = config.eval_batch_size, config.option("loader_workers", 0)
        self.precision = config.precision
        self.kept: list | None = None

    def batches(self, name: str):
        if name != self.keep:
            return LoaderBatches(self.splits[name], self.batch_size, self.device, shuffle=False, min_batch=1,
                                 num_workers=self.workers)
        if self.kept is None:
            self.kept = list(LoaderBatches(self.splits[name], self.batch_size, torch.device("cpu"), shuffle=False,
                                           min_batch=1, num_workers=self.workers))
        return ((images.to(self.device, non_blocking=True), labels) for images, labels in self.kept)

    def class_scores(self, model):
        """images -> (B, 182) scores: CLIP against its current zero-shot head; a classifier as is."""
        if isinstance(model, ClipModel):
            head = class_embeddings(model, self.class_tokens)
            return lambda images: model.encode_image(images) @ head.T
        return model

    @torch.no_grad()
    def __call__(self, model, names: tuple[str, ...]) -> dict[str, dict[str, float]]:
        was_training = model.training
        model.eval()
        scores, out = self.class_scores(model), {}
        for name in names:
            with autocast(self.device, self.precision):
                logits = torch.cat([scores(images).float().cpu() for images, _ in self.batches(name)])
            out[name] = metrics.compute(METRICS, logits.numpy(), self.splits[name].targets.numpy())
        model.train(was_training)
        return out


def evaluator(scorer: Scorer, ensemble: WeightEnsemble):
    def evaluate(model) -> dict[str, dict[str, float]]:
        plain = scorer(model, ("id_val", "id_test", "test"))
        alpha, mixed = ensemble(model, plain, ("id_test", "test"))
        test = {}
        for prefix, scores in (("", plain), ("ensembled_", mixed)):
            for part, split in (("id", "id_test"), ("ood", "test")):
                test.update({f"{prefix}{part}_{m}": v for m, v in scores[split].items()})
        return {"val": {**plain["id_val"], **{f"ensembled_{m}": v for m, v in mixed["id_val"].items()}},
                "test": {**test, "ensemble_alpha": alpha}}
    return evaluate


@torch.no_grad()
def image_features(model, split: ImageFiles, config: RunConfig, device: torch.device) -> np.ndarray:
    batches = LoaderBatches(split, config.eval_batch_size, device, shuffle=False, min_batch=1,
                            num_workers=config.option("loader_workers", 0))
    model.eval()
    return torch.cat([model.features(images).float().cpu() for images, _ in batches]).numpy()


def fit_linear_probe(classifier, train: ImageFiles, val: ImageFiles, config: RunConfig, device) -> dict:
    """LP of LP-FT: logistic regression on frozen normalised features, warm-started along a C grid
    (best C on id_val macro-F1), written into the classifier's head. Classes absent from train get
    a zero row and the lowest bias, so they are never predicted."""
    x_train, x_val = (image_features(classifier, s, config, device) for s in (train, val))
    y_train, y_val = train.targets.numpy(), val.targets.numpy()
    probe = LogisticRegression(warm_start=True, max_iter=1000)
    best = None
    for c in config.option("lp_c_grid", LP_INVERSE_REGULARISATION):
        probe.set_params(C=float(c)).fit(x_train, y_train)
        f1 = metrics.macro_f1_present(np.eye(NUM_CLASSES)[probe.predict(x_val)], y_val)
        if best is None or f1 > best[0]:
            best = (f1, float(c), probe.coef_.copy(), probe.intercept_.copy(), probe.classes_.copy())
    _, c, coef, intercept, classes = best
    if len(classes) == 2:  # sklearn keeps one row for two classes
        coef, intercept = np.concatenate([-coef, coef]) / 2, np.concatenate([-intercept, intercept]) / 2
    weight = torch.zeros_like(classifier.head.weight)
    bias = torch.full_like(classifier.head.bias, float(intercept.min()) - 1.0)
    weight[torch.as_tensor(classes)] = torch.as_tensor(coef, dtype=weight.dtype, device=weight.device)
    bias[torch.as_tensor(classes)] = torch.as_tensor(intercept, dtype=bias.dtype, device=bias.device)
    with torch.no_grad():
        classifier.head.weight.copy_(weight)
        classifier.head.bias.copy_(bias)
    return {"linear_probe_C": c, "linear_probe_val": best[0]}


def make_augmenter(config: RunConfig):
    if config.aug == "none":
        return None
    if config.aug not in UPSTREAM:
        raise SaflexError(f"unknown augmenter {config.aug!r} for flyp; choose from: none, {', '.join(UPSTREAM)}")
    return ImagePart(AUGMENTERS.get(UPSTREAM[config.aug])(**dict(config.option("aug_kwargs", {}))))


def build(config: RunConfig, device: torch.device) -> TrainSetup:
    require_plain_validation(config)
    method = config.option("method", "flyp")
    if method not in METHODS:
        raise SaflexError(f"unknown flyp method {method!r}; choose from: {', '.join(METHODS)}")
    size = image_size(config.model)
    data = load_iwildcam(Path(config.data_root), tokenizer(config.model), size)  # the data first: a quick refusal
    clip = load_clip(config.model, config.option("pretrained", "openai")).to(device)
    class_tokens = data.class_tokens.to(device)
    val_images = data.splits["id_val"]
    train_images = data.splits["train"]
    workers = config.option("loader_workers", 0)
    provenance = {**data.provenance, "method": method, "pretrained": config.option("pretrained", "openai")}

    def loader(dataset, batch_size, seed):
        return LoaderBatches(dataset, batch_size, device, seed=seed, num_workers=workers)

    scorer = Scorer(data.splits, class_tokens, config, device)
    alphas = config.option("ensemble_alphas", DEFAULT_ALPHAS)
    # The validation stream has its own seed: it must not follow the training order.
    if method == "lpft":
        model = image_classifier(clip, NUM_CLASSES).to(device)
        set_zero_shot_head(model, clip, class_tokens)
        ensemble = WeightEnsemble(model, scorer, "id_val", "macro_f1", alphas)  # zero-shot end: before the LP
        train_eval_crop = ImageFiles(train_images.paths, train_images.targets, eval_transform(size))
        provenance.update(fit_linear_probe(model, train_eval_crop, val_images, config, device))
        objective = CrossEntropy()
        train_batches = loader(train_images, config.batch_size, config.seed)
        val_batches = CyclingBatches(loader(val_images, config.saflex.val_batch_size, config.seed + 7919))
    else:
        model = clip
        ensemble = WeightEnsemble(model, scorer, "id_val", "macro_f1", alphas)
        objective = Contrastive()
        captions = data.class_tokens
        steps = math.ceil(len(train_images) / config.batch_size)
        train_batches = StepsPerEpoch(CyclingBatches(loader(CaptionedImages(train_images, captions),
                                                            config.batch_size, config.seed)), steps)
        val_batches = CyclingBatches(loader(CaptionedImages(val_images, captions), config.saflex.val_batch_size,
                                            config.seed + 7919))
    return TrainSetup(model=model, objective=objective, train_batches=train_batches, val_batches=val_batches,
                      augmenter=make_augmenter(config), evaluate=evaluator(scorer, ensemble),
                      num_classes=NUM_CLASSES, selection=METRICS, provenance=provenance)


def method_label(config: dict) -> str:
    method = dict(config["options"]).get("method", "flyp")
    if method == "zeroshot":
        return "Zero-Shot"
    if method == "lpft":
        return "LP-FT"
    upstream = upstream_method_label(config["aug"], config["refine"], AUG_NAMES)
    return "FLYP" if config["aug"] == "none" else f"FLYP+{upstream}"


def cells(record: dict, selection: str) -> list[Cell]:
    config = record["config"]
    test = record["selections"][selection]["test"]
    model = PAPER_MODEL.get(config["model"], config["model"])
    return [Cell(method_label(config), model, column, test[key] * 100) for column, key in COLUMNS.items()]


def data_files(config: RunConfig) -> list[tuple[str, object]]:
    """WILDS' metadata.csv (the images are identified by it) and a local CLIP weights file."""
    files: list[tuple[str, object]] = [("metadata.csv", Path(config.data_root) / "iwildcam_v2.0" / "metadata.csv")]
    pretrained = str(config.option("pretrained", "openai"))
    return files + ([(Path(pretrained).name, Path(pretrained))] if Path(pretrained).is_file() else [])


def baseline(config: RunConfig, provenance: dict) -> RunConfig:
    """The recipe of the run's method: zero-shot trains for 0 epochs."""
    base = defaults(config.dataset)
    method = config.option("method", "flyp")
    return dataclasses.replace(base, epochs=0 if method == "zeroshot" else base.epochs,
                               options=tuple({**dict(base.options), "method": method}.items()))


RECIPE = FAMILIES.register("flyp")(Recipe(
    name="flyp", datasets=("iwildcam",), augmenters=("none", "randaug"), table=4,
    methods=("Zero-Shot", "LP-FT", "FLYP", "FLYP+RandAug", "FLYP+SAflex (w/ RandAug)"),
    defaults=defaults, build=build, cells=cells, selection="best_val_macro_f1",
    caption="Macro-F1 (%) of CLIP ViT-B/16 on WILDS iWildCam (ID: id_test, OOD: test), "
            "without and with WiSE-FT weight ensembling",
    train_size=lambda config: WILDS_SPLITS["train"], data_files=data_files, baseline=baseline,
    options={"method": Option("zeroshot, lpft or flyp", one_of("zeroshot", "lpft", "flyp")),
             "pretrained": Option("CLIP weights: a local file, an open_clip tag, random", text()),
             "loader_workers": Option("image-decoding processes", integer(0)),
             "ensemble_alphas": Option("WiSE-FT weights tried on id_val", each(PROBABILITY, non_empty=True)),
             "lp_c_grid": Option("LP-FT's logistic-regression C grid", optional(each(positive(), non_empty=True)),
                                 tuple[float, ...])},
))
