"""`saflex images`: ImageFolder trees on disk (PNG and JPEG, RGB and grayscale, with and without
val/test), the decode cache, each bad input as one line, and equality with `saflex medmnist`."""
from __future__ import annotations

import dataclasses
import json
import shutil
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import write_medmnist_npz
from PIL import Image
from typer.testing import CliRunner

from saflex_cli.cli import app, main
from saflex_cli.compute.runtime import seed_everything
from saflex_cli.data import image_folder
from saflex_cli.data.image_folder import load_image_folder
from saflex_cli.errors import SaflexError
from saflex_cli.registry import FAMILIES
from saflex_cli.training.trainer import Trainer

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "studies"))
from images_vs_medmnist import export_medmnist, same_numbers  # noqa: E402

CPU = torch.device("cpu")


@pytest.fixture(autouse=True)
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("SAFLEX_CACHE", str(tmp_path / "cache"))
    return tmp_path / "cache" / "images"


def pixels(seed: int, size: int, mode: str) -> np.ndarray:
    shape = (size, size) if mode == "L" else (size, size, 3)
    return np.random.default_rng(seed).integers(0, 256, shape, dtype=np.uint8)


def write_tree(root: Path, counts: dict[str, dict[str, int]], mode="L", suffix=".png", size=12) -> dict:
    """root/<split>/<class>/<i>.<suffix> ('' split: root/<class>/...); returns path -> pixels written."""
    written = {}
    for split, classes in counts.items():
        for c, (name, count) in enumerate(classes.items()):
            for i in range(count):
                path = root / split / name / f"{i:03d}{suffix}"
                path.parent.mkdir(parents=True, exist_ok=True)
                array = pixels(len(written), size, mode)
                Image.fromarray(array).save(path)
                written[path] = array
    return written


def test_png_grayscale_tree_with_every_split_reads_exactly_in_file_name_order(tmp_path):
    written = write_tree(tmp_path / "d", {"train": {"cat": 3, "dog": 2}, "val": {"cat": 1, "dog": 1},
                                          "test": {"cat": 1, "dog": 2}})
    splits = load_image_folder(tmp_path / "d", size=12)
    assert splits.class_names == ["cat", "dog"] and splits.num_classes == 2 and splits.task == "binary"
    assert splits.train.inputs.shape == (5, 1, 12, 12) and splits.train.inputs.dtype == torch.uint8
    # by file name, then class: 000 cat, 000 dog, 001 cat, 001 dog, 002 cat
    order = [("cat", 0), ("dog", 0), ("cat", 1), ("dog", 1), ("cat", 2)]
    assert splits.train.targets.tolist() == [0, 1, 0, 1, 0]
    for row, (name, i) in enumerate(order):
        assert np.array_equal(splits.train.inputs[row, 0].numpy(), written[tmp_path / "d" / "train" / name / f"{i:03d}.png"])
    assert splits.provenance["splits"] == {"train": "train/", "val": "val/", "test": "test/"}
    assert splits.provenance["channels"] == 1 and splits.provenance["counts"] == {"train": 5, "val": 2, "test": 3}


def test_jpeg_rgb_class_tree_is_carved_stratified_by_the_split_seed(tmp_path):
    write_tree(tmp_path / "d", {"": {"a": 10, "b": 20, "c": 5}}, mode="RGB", suffix=".jpg", size=16)
    splits = load_image_folder(tmp_path / "d", size=8, val_fraction=0.2, test_fraction=0.2)
    assert splits.train.inputs.shape[1:] == (3, 8, 8) and splits.num_classes == 3 and splits.task == "multi-class"
    counts = {name: torch.bincount(s.targets, minlength=3).tolist()
              for name, s in (("train", splits.train), ("val", splits.val), ("test", splits.test))}
    # per class: test round(0.2 n), then val round(0.25 x the rest) (0.2 of the whole)
    assert counts == {"test": [2, 4, 1], "val": [2, 4, 1], "train": [6, 12, 3]}
    assert "carved" in splits.provenance["splits"]["val"] and "carved" in splits.provenance["splits"]["test"]
    again = load_image_folder(tmp_path / "d", size=8, val_fraction=0.2, test_fraction=0.2)
    other = load_image_folder(tmp_path / "d", size=8, val_fraction=0.2, test_fraction=0.2, split_seed=1)
    assert torch.equal(again.test.inputs, splits.test.inputs) and not torch.equal(other.test.inputs, splits.test.inputs)
    everything = torch.cat([splits.train.inputs, splits.val.inputs, splits.test.inputs]).flatten(1)
    assert len(torch.unique(everything, dim=0)) == 35  # disjoint, and together every image


def test_train_and_test_folders_get_val_carved_from_train(tmp_path):
    write_tree(tmp_path / "d", {"train": {"x": 10, "y": 10}, "test": {"x": 2, "y": 2}})
    splits = load_image_folder(tmp_path / "d", size=12, val_fraction=0.3)
    assert [len(s.targets) for s in (splits.train, splits.val, splits.test)] == [14, 6, 4]
    assert splits.provenance["splits"]["test"] == "test/" and "carved" in splits.provenance["splits"]["val"]


def test_channels_follow_the_files_unless_set(tmp_path):
    write_tree(tmp_path / "g", {"": {"a": 5, "b": 5}}, mode="L")
    wide = load_image_folder(tmp_path / "g", size=12, channels=3)
    assert wide.train.inputs.shape[1] == 3 and torch.equal(wide.train.inputs[:, 0], wide.train.inputs[:, 2])
    write_tree(tmp_path / "m", {"": {"a": 5, "b": 5}}, mode="L")
    Image.fromarray(pixels(7, 12, "RGB")).save(tmp_path / "m" / "a" / "rgb.png")
    assert load_image_folder(tmp_path / "m", size=12).train.inputs.shape[1] == 3  # one RGB file: all RGB
    gray = load_image_folder(tmp_path / "g", size=12)
    assert gray.train.inputs.shape[1] == 1 and gray.provenance["channels_from"] == "the files"
    assert torch.equal(wide.train.inputs[:, 1], gray.train.inputs[:, 0])


def test_images_are_decoded_once_and_again_when_a_file_changes(tmp_path, cache, monkeypatch):
    written = write_tree(tmp_path / "d", {"train": {"a": 3, "b": 3}})
    first = load_image_folder(tmp_path / "d", size=12, val_fraction=0.2, test_fraction=0.2)
    assert len(list(cache.glob("*.pt"))) == 1

    def no_decoding(*args, **kwargs):
        raise AssertionError("decoded again")
    with monkeypatch.context() as patch:
        patch.setattr(image_folder, "resize_transform", no_decoding)
        cached = load_image_folder(tmp_path / "d", size=12, val_fraction=0.2, test_fraction=0.2)
    assert torch.equal(cached.train.inputs, first.train.inputs)
    path = next(iter(written))
    Image.fromarray(255 - written[path]).save(path)
    changed = load_image_folder(tmp_path / "d", size=12, val_fraction=0.2, test_fraction=0.2)
    assert changed.provenance["md5"] != first.provenance["md5"] and len(list(cache.glob("*.pt"))) == 2
    assert not torch.equal(changed.train.inputs, first.train.inputs)


def test_training_split_statistics_normalise_the_model_input(tmp_path):
    write_tree(tmp_path / "d", {"train": {"a": 4, "b": 4}, "val": {"a": 1, "b": 1}, "test": {"a": 1, "b": 1}},
               mode="RGB")
    recipe = FAMILIES.get("images")
    config = dataclasses.replace(recipe.defaults("d"), data_root=str(tmp_path / "d"), epochs=1)
    setup = recipe.build(config, CPU)
    train = load_image_folder(tmp_path / "d", size=28).train.inputs.to(torch.float64) / 255
    expected = (train - train.mean(dim=(0, 2, 3), keepdim=True)) / train.transpose(0, 1).flatten(1).std(dim=1).view(1, 3, 1, 1)
    assert torch.allclose(setup.model.prepare(train * 255).double(), expected, atol=1e-4)
    backbone = recipe.build(dataclasses.replace(config, options=(("normalize", "backbone"),)), CPU)
    assert torch.equal(backbone.model.prepare.mean, torch.full((1, 3, 1, 1), 127.5))  # ResNet-18 (28)'s 0.5


@pytest.mark.parametrize("damage, message", [
    (lambda d: shutil.rmtree(d / "val" / "b"), "class 'b' has no images in the val split (val/)"),
    (lambda d: [p.unlink() for p in (d / "val" / "b").iterdir()], "val/b is empty"),
    (lambda d: (d / "test" / "a" / "000.png").write_bytes(b"not a png"), "test/a/000.png is not a readable image"),
    (lambda d: (d / "train" / "a" / "notes.txt").write_text("x"), "train/a/notes.txt is not an image"),
    (lambda d: (d / "val" / "b").rename(d / "val" / "z"), "val/z is a class the training split lacks"),
])
def test_each_bad_tree_is_one_line_exit_2_and_nothing_written(tmp_path, monkeypatch, capsys, cache, damage, message):
    root = tmp_path / "d"
    write_tree(root, {"train": {"a": 3, "b": 3}, "val": {"a": 1, "b": 1}, "test": {"a": 1, "b": 1}})
    damage(root)
    out = tmp_path / "results"
    monkeypatch.setattr(sys, "argv", ["saflex", "images", "--root", str(root), "--seeds", "0", "--epochs", "1",
                                      "--out", str(out)])
    with pytest.raises(SystemExit) as exit_info:
        main()
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert message in " ".join(err.split()) and "Traceback" not in err
    assert not out.exists() and not cache.exists()


def test_an_empty_root_and_a_single_class_are_refused(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(SaflexError, match="holds 0 class folder"):
        load_image_folder(tmp_path / "empty", size=12)
    write_tree(tmp_path / "one", {"": {"only": 4}})
    with pytest.raises(SaflexError, match="holds 1 class folder"):
        load_image_folder(tmp_path / "one", size=12)
    write_tree(tmp_path / "few", {"": {"a": 2, "b": 9}})
    with pytest.raises(SaflexError, match="'a' has no images in the val split"):
        load_image_folder(tmp_path / "few", size=12)


def test_cli_trains_records_the_folder_and_eval_reproduces_it(tmp_path):
    root, out = tmp_path / "my-images", tmp_path / "results"
    write_tree(root, {"train": {"a": 6, "b": 6}, "val": {"a": 2, "b": 2}, "test": {"a": 2, "b": 2}}, mode="RGB", size=8)
    runner = CliRunner()
    result = runner.invoke(app, ["images", "--root", str(root), "--aug", "mixup", "--size", "8", "--seeds", "0",
                                 "--epochs", "1", "--batch-size", "6", "--val-batch-size", "4", "--out", str(out),
                                 "--device", "cpu", "--quiet"])
    assert result.exit_code == 0, result.output + repr(result.exception)
    path, = (out / "runs" / "images").glob("my-images_resnet18_28_mixup_seed0_*.json")
    record = json.loads(path.read_text())
    assert dict(map(tuple, record["config"]["data_checksums"]))["images"] == f"md5:{record['data']['md5']}"
    assert record["data"]["classes"] == ["a", "b"] and record["data"]["size"] == 8
    assert "Mixup" in (out / "images.md").read_text()
    reevaluated = runner.invoke(app, ["eval", str(path), "--device", "cpu"])
    assert reevaluated.exit_code == 0 and "reproduces the record" in reevaluated.output, reevaluated.output


def test_the_folder_path_equals_saflex_medmnist_on_the_same_images(tmp_path):
    """A tiny BreastMNIST-layout npz exported to PNGs: the same tensors, batches and numbers."""
    (tmp_path / "medmnist").mkdir()
    npz = write_medmnist_npz(tmp_path / "medmnist" / "breastmnist.npz", counts=(8, 4, 4), num_classes=2, channels=1)
    folder = export_medmnist(npz, tmp_path / "breast", ["malignant", "normal, benign"])
    settings = dict(epochs=1, batch_size=4, eval_batch_size=8, aug="randaug")
    medmnist = dataclasses.replace(FAMILIES.get("medmnist").defaults("breastmnist"), data_root=str(tmp_path),
                                   options=(("as_rgb", True), ("size", 28), ("skip_md5", True)), **settings)
    images = dataclasses.replace(FAMILIES.get("images").defaults("breast"), data_root=str(folder),
                                 options=(("channels", 3), ("normalize", "backbone")), **settings)
    results = []
    for config in (medmnist, images):
        seed_everything(config.seed)
        setup = FAMILIES.get(config.family).build(config, CPU)
        results.append((setup.train_batches.inputs, Trainer(setup, config, CPU).fit()))
    (ours, ours_fit), (theirs, theirs_fit) = results
    assert torch.equal(ours, theirs)
    assert same_numbers(ours_fit, theirs_fit) and ours_fit["epochs"][0]["train_loss"] > 0


@pytest.mark.parametrize("flags, message", [
    (["--channels", "2"], "options.channels = 2 is out of range: give one of: 1, 3 (or leave it unset)"),
    (["--normalize", "imagenet"], "options.normalize = 'imagenet' is out of range: give one of: train, backbone"),
    (["--model", "resnet50"], "images trains resnet18_28 or timm/<name>, not 'resnet50'"),
])
def test_bad_flags_are_one_line_exit_2(tmp_path, monkeypatch, capsys, flags, message):
    write_tree(tmp_path / "d", {"": {"a": 5, "b": 5}})
    monkeypatch.setattr(sys, "argv", ["saflex", "images", "--root", str(tmp_path / "d"), "--out", str(tmp_path / "r"),
                                      *flags])
    with pytest.raises(SystemExit) as exit_info:
        main()
    assert exit_info.value.code == 2 and message in capsys.readouterr().err and not (tmp_path / "r").exists()
