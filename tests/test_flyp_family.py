"""The FLYP family: iWildCam in WILDS' layout, WILDS RandAugment, WiSE-FT, metrics, CLI and report."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from sklearn.metrics import f1_score
from typer.testing import CliRunner

from flyp_helpers import TINY_CLIP, register_tiny_clip, tiny_clip, tiny_tokens, write_iwildcam
from saflex_cli.augment.paired import ImagePart
from saflex_cli.augment.wilds_randaug import GREY, WildsRandAugment
from saflex_cli.cli import app
from saflex_cli.data.wilds import NUM_CLASSES, CaptionedImages, class_names, load_iwildcam
from saflex_cli.errors import SaflexError
from saflex_cli.families.flyp import COLUMNS, LP_INVERSE_REGULARISATION, RECIPE
from saflex_cli.models.clip import class_embeddings, image_classifier, load_clip, set_zero_shot_head, tokenizer
from saflex_cli.reporting.paper import paper_value
from saflex_cli.training import metrics
from saflex_cli.training.ensembling import WeightEnsemble, interpolate_state

runner = CliRunner()


@pytest.fixture(scope="module")
def iwildcam_root(tmp_path_factory):
    return write_iwildcam(tmp_path_factory.mktemp("wilds"))


def test_iwildcam_reads_wilds_layout_and_builds_flyp_captions(iwildcam_root):
    data = load_iwildcam(iwildcam_root, tokenizer(register_tiny_clip()), image_size=32)
    assert {name: len(split) for name, split in data.splits.items()} == {"train": 16, "id_val": 8, "id_test": 8, "test": 8}
    assert data.class_tokens.shape == (NUM_CLASSES, 2, 16)
    names = class_names()
    assert len(names) == NUM_CLASSES and names[1] == "White-lipped peccary"
    pairs = CaptionedImages(data.splits["train"], data.class_tokens)
    assert len(pairs) == 32  # one row per (image, template)
    (image, caption), label = pairs[3]  # image 1, second template
    assert image.dtype == torch.uint8 and image.shape == (3, 32, 32)
    expected = tiny_tokens([f"{names[int(label)]} in the wild."])[0]
    assert torch.equal(caption, expected) and label == data.splits["train"].targets[1]


def test_missing_dataset_root_is_one_clear_error(tmp_path):
    with pytest.raises(SaflexError, match=r"iwildcam_v2.0/metadata.csv is missing.*--data-root"):
        load_iwildcam(tmp_path, tokenizer(register_tiny_clip()), image_size=32)


def test_missing_weights_file_and_offline_tag_are_clear_errors(tmp_path, monkeypatch):
    with pytest.raises(SaflexError, match="ViT-B-16.pt' not found.*--pretrained"):
        load_clip("ViT-B-16-quickgelu", str(tmp_path / "ViT-B-16.pt"))
    with pytest.raises(SaflexError, match="need quick_gelu=True.*-quickgelu variant"):
        load_clip("ViT-B-16", "openai")
    monkeypatch.setenv("SAFLEX_OFFLINE", "1")
    with pytest.raises(SaflexError, match=r"open_clip_pytorch_model.bin from https://huggingface.co/timm/"
                                          r"vit_base_patch16_clip_224.openai.*--pretrained"):
        load_clip("ViT-B-16-quickgelu", "openai")


def test_weights_file_is_loaded(tmp_path):
    source = tiny_clip(seed=3)
    path = tmp_path / "tiny.pt"
    torch.save(source.clip.state_dict(), path)
    loaded = load_clip(TINY_CLIP, str(path))
    assert all(torch.equal(a, b) for a, b in zip(source.state_dict().values(), loaded.state_dict().values()))


def test_wilds_randaug_is_seeded_keeps_labels_and_cuts_a_grey_square():
    images = torch.zeros(6, 3, 32, 32, dtype=torch.uint8)
    labels = torch.eye(6)
    aug = WildsRandAugment()
    first = aug(images, labels, torch.Generator().manual_seed(0))
    again = aug(images, labels, torch.Generator().manual_seed(0))
    assert torch.equal(first.inputs, again.inputs) and first.inputs.dtype == torch.uint8
    assert torch.equal(first.labels, labels)
    grey = (first.inputs == GREY).all(dim=1).flatten(1).sum(1)
    assert (grey >= 9 * 9).all() and (grey <= 17 * 17).all()  # 16 px square, PIL-inclusive, clipped


def test_wilds_randaug_changes_some_images_and_not_others():
    gen = torch.Generator().manual_seed(1)
    images = torch.randint(0, 256, (64, 3, 32, 32), generator=gen, dtype=torch.uint8)
    out = WildsRandAugment(cutout=0)(images, torch.eye(64), gen).inputs  # cutout off: see the ops alone
    changed = (out != images).flatten(1).any(1).float().mean()
    # Each of 2 ops is applied with probability 0.5 and may be the identity: about 1 - (1/2 + 1/28)^2.
    assert 0.55 < changed < 0.9


def test_image_part_augments_images_and_passes_captions_on_unchanged():
    images, tokens = torch.zeros(4, 3, 32, 32, dtype=torch.uint8), tiny_tokens(["a cat."] * 4)
    out = ImagePart(WildsRandAugment())((images, tokens), torch.eye(4), torch.Generator().manual_seed(0))
    assert out.inputs[1] is tokens
    assert not torch.equal(out.inputs[0], images)


def test_macro_f1_counts_only_classes_present_in_the_split():
    targets = np.array([0, 0, 1, 1])
    predictions = np.array([0, 0, 1, 2])  # class 2 is predicted but absent: WILDS leaves it out
    probs = np.eye(3)[predictions]
    assert metrics.macro_f1_present(probs, targets) == pytest.approx((1 + 2 / 3) / 2)
    assert f1_score(targets, predictions, average="macro") == pytest.approx((1 + 2 / 3 + 0) / 3)


def test_wise_ft_endpoints_reproduce_both_models_exactly():
    zero_shot = tiny_clip(seed=5)
    fine_tuned = tiny_clip(seed=6)
    z, f = zero_shot.state_dict(), fine_tuned.state_dict()
    for alpha, expected in ((0.0, z), (1.0, f)):
        mixed = interpolate_state(z, f, alpha)
        assert all(torch.equal(mixed[name], expected[name]) for name in z)
    middle = interpolate_state(z, f, 0.5)
    assert not torch.equal(middle["clip.logit_scale"], z["clip.logit_scale"]) or \
        not torch.equal(middle["clip.visual.conv1.weight"], z["clip.visual.conv1.weight"])

    ensemble = WeightEnsemble(zero_shot, score=None, select_split="val", select_metric="macro_f1")
    inputs = (torch.randint(0, 256, (3, 3, 32, 32), dtype=torch.uint8), tiny_tokens(["a", "b", "c"]))
    with torch.no_grad():
        for alpha, model in ((0.0, zero_shot), (1.0, fine_tuned)):
            ours = ensemble.interpolated(fine_tuned, alpha)(inputs)
            assert all(torch.equal(a, b) for a, b in zip(ours, model.eval()(inputs)))


def test_lp_ft_zero_shot_head_scores_like_clip_zero_shot():
    """The classifier's zero-shot end (WiSE-FT for LP-FT) is CLIP's zero-shot classifier, scaled by s."""
    clip = tiny_clip(seed=8).eval()
    class_tokens = tiny_tokens([f"a photo of a {c}." for c in ("cat", "dog", "zebra")]).reshape(3, 1, -1)
    classifier = image_classifier(clip, 3)
    set_zero_shot_head(classifier, clip, class_tokens)
    images = torch.randint(0, 256, (5, 3, 32, 32), dtype=torch.uint8)
    with torch.no_grad():
        expected = clip.clip.logit_scale.exp() * clip.encode_image(images) @ class_embeddings(clip, class_tokens).T
        torch.testing.assert_close(classifier.eval()(images), expected)


def test_table4_labels_and_columns_match_the_paper():
    for method in RECIPE.methods:
        for column in COLUMNS:
            assert paper_value((4,), method, "CLIP ViT-B/16", column) is not None, (method, column)


def flyp_command(root, out, *extra):
    return ["flyp", *extra, "--model", TINY_CLIP, "--pretrained", "random", "--loader-workers", "0", "--batch-size", "8",
            "--val-batch-size", "8", "--data-root", str(root), "--out", str(out), "--quiet", "--device", "cpu"]


def test_saflex_flyp_end_to_end_renders_table4(iwildcam_root, tmp_path):
    register_tiny_clip()
    out = tmp_path / "results"
    runs = [("--method", "flyp", "--aug", "randaug", "--saflex", "--seeds", "0,1", "--epochs", "2"),
            ("--method", "zeroshot", "--seeds", "0"),
            ("--method", "lpft", "--seeds", "0", "--epochs", "1")]
    for args in runs:
        result = runner.invoke(app, flyp_command(iwildcam_root, out, *args))
        assert result.exit_code == 0, result.output + repr(result.exception)

    records = {p.name: json.loads(p.read_text()) for p in (out / "runs" / "flyp").glob("*.json")}
    assert len(records) == 4
    flyp_runs = [r for r in records.values() if dict(r["config"]["options"])["method"] == "flyp"]
    assert sorted(r["config"]["seed"] for r in flyp_runs) == [0, 1]
    for record in flyp_runs:
        assert [e["epoch"] for e in record["epochs"]] == [1, 2]
        assert record["epochs"][0]["steps"] == 2  # ceil(16 images / 8), over 32 (image, caption) rows
        assert 0 < record["epochs"][0]["saflex"]["kept_fraction"] <= 1
        chosen = record["selections"]["best_val_macro_f1"]["test"]
        assert 0 <= chosen["ensemble_alpha"] <= 1
        assert {"id_macro_f1", "ood_macro_f1", "ensembled_id_macro_f1", "ensembled_ood_macro_f1"} <= set(chosen)
    (zero_shot,) = [r for r in records.values() if dict(r["config"]["options"])["method"] == "zeroshot"]
    assert [e["epoch"] for e in zero_shot["epochs"]] == [0] and zero_shot["epochs"][0]["steps"] == 0
    test = zero_shot["selections"]["best_val_macro_f1"]["test"]
    assert test["ensembled_id_macro_f1"] == test["id_macro_f1"]  # nothing trained: every alpha is the same model

    (lp_ft,) = [r for r in records.values() if dict(r["config"]["options"])["method"] == "lpft"]
    assert lp_ft["data"]["linear_probe_C"] in LP_INVERSE_REGULARISATION

    result = runner.invoke(app, ["report", "--out", str(out), "--family", "flyp"])
    assert result.exit_code == 0, result.output
    table = (out / "flyp.md").read_text()
    rows = [line.split(" | ")[0] for line in table.splitlines() if line.startswith("| ")]
    assert "| Zero-Shot" in rows  # its 0 epochs are the method's, not a setting
    assert "| LP-FT [epochs=1]" in rows and "| FLYP+SAflex (w/ RandAug) [epochs=2, val_batch_size=8]" in rows
    assert "ID w/o ensembling | OOD w/o ensembling | ID w/ ensembling | OOD w/ ensembling" in table

    again = runner.invoke(app, flyp_command(iwildcam_root, out, *runs[1]))
    assert "1 skipped" in again.output


def test_cli_refuses_missing_dataset_root_and_augmenting_baselines(tmp_path):
    register_tiny_clip()
    result = runner.invoke(app, flyp_command(tmp_path / "nowhere", tmp_path / "out", "--method", "zeroshot", "--seeds", "0"))
    assert isinstance(result.exception, SaflexError) and "metadata.csv is missing" in str(result.exception)
    result = runner.invoke(app, flyp_command(tmp_path, tmp_path / "out", "--method", "lpft", "--aug", "randaug"))
    assert isinstance(result.exception, SaflexError) and "without augmentation" in str(result.exception)
