"""CUB and iWildCam builders on fixtures in their real layouts; ResNet weights; class weights."""
from __future__ import annotations

from collections import Counter

import pytest
import torch
from PIL import Image

from diffusion_fixtures import PALETTE, make_cub, make_iwildcam
from saflex_cli.data.cub import load_cub, readable_name
from saflex_cli.data.images import preload, wilds_transform
from saflex_cli.data.iwildcam import CLASS_YS, LISTS, file_list, load_iwildcam
from saflex_cli.errors import SaflexError
from saflex_cli.families.diffusion import class_balance_weights
from saflex_cli.models.resnet import tiny_resnet


def test_cub_subset_extra_validation_and_test(tmp_path):
    make_cub(tmp_path, classes=3, train_per_class=10, test_per_class=3)
    data = load_cub(tmp_path, image_size=16, val_fraction=0.25, split_seed=0)
    lines = (tmp_path / "CUB_200_2011/images.txt").read_text().splitlines()
    split = dict(line.split() for line in (tmp_path / "CUB_200_2011/train_test_split.txt").read_text().splitlines())
    train_paths = {c: [l.split()[1] for l in lines if split[l.split()[0]] == "1" and l.split()[1].startswith(f"00{c + 1}.")]
                   for c in range(3)}
    # extra = the last 5 official train images per class, in images.txt order; sources = the rest, in order
    assert [p.name for p in data.extra.inputs.paths] == [p.split("/")[1] for c in range(3) for p in train_paths[c][-5:]]
    assert [p.name for p in data.sources] == [p.split("/")[1] for c in range(3) for p in train_paths[c][:-5]]
    assert data.source_labels == [0] * 5 + [1] * 5 + [2] * 5
    # validation carved per class (round(0.25 x 5) = 1), disjoint from train, and the same for the same split seed
    assert Counter(data.splits.val.targets.tolist()) == {0: 1, 1: 1, 2: 1}
    assert set(data.splits.val.inputs.paths).isdisjoint(data.splits.train.inputs.paths)
    assert len(data.splits.train.inputs) + len(data.splits.val.inputs) == 15
    assert data.held_out == load_cub(tmp_path, image_size=16, val_fraction=0.25, split_seed=0).held_out
    assert {data.sources[i] for i in data.held_out} == set(data.splits.val.inputs.paths)
    assert len(data.splits.test.inputs) == 9 and data.splits.test.targets.tolist() == [0] * 3 + [1] * 3 + [2] * 3
    image, label = data.splits.train.inputs[0]
    assert image.shape == (3, 16, 16) and image.dtype == torch.uint8 and label == 0
    assert data.class_folders["001.Class_a_bird"] == data.class_folders["Class a bird"] == 0
    assert data.edit_folders[2] == "003.Class_c_bird" and readable_name("022.Chuck_will_Widow") == "Chuck will Widow"


def test_cub_missing_root_or_image_names_what_to_place(tmp_path):
    with pytest.raises(SaflexError, match="CUB_200_2011"):
        load_cub(tmp_path / "nowhere")
    make_cub(tmp_path, classes=2, train_per_class=8, test_per_class=2)
    victim = next((tmp_path / "CUB_200_2011/images").rglob("*.jpg"))
    victim.unlink()
    with pytest.raises(SaflexError, match=f"1 of 20 CUB-200-2011 images are missing.*{victim.name}"):
        load_cub(tmp_path)


def test_shipped_iwildcam_lists_are_alias_subset():
    sizes = {split: len(file_list(split)) for split in LISTS}
    assert sizes == {"train": 6052, "val": 2826, "test": 8483, "extra": 2224}
    assert set(file_list("train").y) == set(CLASS_YS)


def test_iwildcam_builder_labels_by_rank_and_reads_real_file_names(tmp_path):
    per_class = {"train": 3, "val": 2, "test": 2, "extra": 1}
    make_iwildcam(tmp_path, tmp_path / "lists", per_class)
    data = load_iwildcam(tmp_path, image_size=16, lists=tmp_path / "lists")
    frame = file_list("train", tmp_path / "lists")
    assert data.source_labels == [CLASS_YS.index(y) for y in frame.y]
    assert [p.name for p in data.sources] == frame.filename.tolist()
    assert Counter(data.extra.targets.tolist()) == {k: 1 for k in range(7)}
    test = preload(data.splits.test.inputs)
    assert test.inputs.shape == (14, 3, 16, 16) and test.inputs.dtype == torch.uint8
    colours = torch.tensor(PALETTE, dtype=torch.float)
    assert torch.cdist(test.inputs.float().mean((2, 3)), colours).argmin(1).tolist() == test.targets.tolist()
    assert data.normalize == "none" and data.held_out == frozenset()


def test_iwildcam_missing_folder_or_images(tmp_path):
    with pytest.raises(SaflexError, match="iwildcam_v2.0/train"):
        load_iwildcam(tmp_path)
    (tmp_path / "iwildcam_v2.0" / "train").mkdir(parents=True)
    with pytest.raises(SaflexError, match="19585 of 19585 iWildCam images are missing"):
        load_iwildcam(tmp_path)


def test_wilds_transform_drops_the_camera_banner():
    image = torch.full((448, 448, 3), 200, dtype=torch.uint8)
    image[:10] = 0  # a black banner on top, as iWildCam's camera stamp
    image[410:] = 0
    out = wilds_transform(224)(Image.fromarray(image.numpy()))
    assert out.shape == (3, 224, 224) and out.dtype == torch.uint8
    assert int(out.min()) >= 199  # rows 10..410 kept only


def test_class_weights_are_inverse_counts_over_max():
    weights = class_balance_weights(torch.tensor([0, 0, 0, 0, 1, 1, 2]), 3)
    assert torch.allclose(weights, torch.tensor([0.25, 0.5, 1.0]))


def test_resnet_weights_from_a_local_file_and_refusals(tmp_path, monkeypatch):
    torch.manual_seed(0)
    source = tiny_resnet(num_classes=4)
    torch.save({"state_dict": {f"module.{k}": v for k, v in source.body.state_dict().items()}}, tmp_path / "w.pth")
    loaded = tiny_resnet(num_classes=7, pretrained=str(tmp_path / "w.pth"))
    assert torch.equal(loaded.body[0].weight, source.body[0].weight)
    assert loaded.head.out_features == 7
    torch.save({"conv1.weight": torch.zeros(1)}, tmp_path / "bad.pth")
    with pytest.raises(SaflexError, match="does not fit"):
        tiny_resnet(num_classes=2, pretrained=str(tmp_path / "bad.pth"))
    monkeypatch.setenv("SAFLEX_OFFLINE", "1")
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path / "hub"))
    from saflex_cli.models.resnet import resnet50
    with pytest.raises(SaflexError, match="resnet50-0676ba61.pth.*download.pytorch.org"):
        resnet50(num_classes=2)
