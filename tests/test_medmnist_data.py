"""MedMNIST npz reading: the real layout, both releases, and one clear message per bad input."""
from __future__ import annotations

import numpy as np
import pytest
from conftest import write_medmnist_npz

from saflex_cli.data import medmnist as mm
from saflex_cli.data.download import md5sum
from saflex_cli.errors import SaflexError


def test_unknown_checksum_is_refused_with_the_flag_to_pass(tmp_path):
    write_medmnist_npz(tmp_path / "dermamnist.npz")
    with pytest.raises(SaflexError, match="--skip-md5"):
        mm.load_medmnist("dermamnist", tmp_path)


def test_skip_md5_loads_and_records_it(tmp_path):
    write_medmnist_npz(tmp_path / "dermamnist.npz", counts=(20, 6, 7))
    splits = mm.load_medmnist("dermamnist", tmp_path, skip_md5=True)
    assert splits.train.inputs.shape == (20, 3, 28, 28) and splits.train.inputs.dtype.is_floating_point is False
    assert [len(s.targets) for s in (splits.train, splits.val, splits.test)] == [20, 6, 7]
    assert splits.provenance["release"] == "unverified" and splits.provenance["md5_check_skipped"]
    assert splits.num_classes == 7 and splits.task == "multi-class"


def test_official_and_older_release_are_recognised(tmp_path, monkeypatch):
    path = write_medmnist_npz(tmp_path / "organamnist.npz", num_classes=11, channels=1)
    checksum = md5sum(path)
    info = dict(mm.info("organamnist"), MD5=checksum)
    monkeypatch.setattr(mm, "info", lambda flag: info)
    assert mm.load_medmnist("organamnist", tmp_path).provenance["release"] == "current"
    monkeypatch.setattr(mm, "info", lambda flag: dict(info, MD5="0" * 32))
    monkeypatch.setitem(mm.OLDER_RELEASES, "organamnist", (checksum, {}))
    assert mm.load_medmnist("organamnist", tmp_path).provenance["release"] == "pre-2.2.4"


def test_grayscale_becomes_three_channels_unless_asked(tmp_path):
    write_medmnist_npz(tmp_path / "pneumoniamnist.npz", num_classes=2, channels=1)
    rgb = mm.load_medmnist("pneumoniamnist", tmp_path, skip_md5=True)
    gray = mm.load_medmnist("pneumoniamnist", tmp_path, skip_md5=True, as_rgb=False)
    assert rgb.train.inputs.shape[1] == 3 and gray.train.inputs.shape[1] == 1
    assert np.array_equal(rgb.train.inputs[:, 0].numpy(), gray.train.inputs[:, 0].numpy())
    assert rgb.task == "binary" and rgb.provenance["as_rgb"] and not gray.provenance["as_rgb"]


@pytest.mark.parametrize("flag", ["chestmnist", "retinamnist"])
def test_multilabel_and_ordinal_sets_are_refused(flag, tmp_path):
    with pytest.raises(SaflexError, match="refuses"):
        mm.load_medmnist(flag, tmp_path)


def test_unknown_and_3d_datasets_list_the_choices(tmp_path):
    for flag in ("pathmnistt", "organmnist3d"):
        with pytest.raises(SaflexError, match="choose one of: .*pathmnist"):
            mm.load_medmnist(flag, tmp_path)


def test_missing_file_offline_names_the_file_and_the_place(tmp_path, offline):
    with pytest.raises(SaflexError, match=f"place the file at {tmp_path}/bloodmnist.npz"):
        mm.load_medmnist("bloodmnist", tmp_path)


def test_download_failure_names_the_file_and_the_place(tmp_path, monkeypatch):
    monkeypatch.delenv("SAFLEX_OFFLINE", raising=False)
    info = dict(mm.info("bloodmnist"), url="http://127.0.0.1:9/bloodmnist.npz")
    monkeypatch.setattr(mm, "info", lambda flag: info)
    with pytest.raises(SaflexError, match="could not download bloodmnist.npz.*place the file at"):
        mm.load_medmnist("bloodmnist", tmp_path)
    assert not list(tmp_path.iterdir()), "no partial file is left behind"


def test_corrupt_npz_gets_a_clear_message(tmp_path):
    (tmp_path / "dermamnist.npz").write_bytes(b"not a zip file at all")
    with pytest.raises(SaflexError, match="not a readable npz"):
        mm.load_medmnist("dermamnist", tmp_path, skip_md5=True)


def test_labels_out_of_range_are_refused(tmp_path):
    write_medmnist_npz(tmp_path / "dermamnist.npz", num_classes=9)  # derma has 7
    with pytest.raises(SaflexError, match="labels outside 0..6"):
        mm.load_medmnist("dermamnist", tmp_path, skip_md5=True)


def test_wrong_layout_is_refused(tmp_path):
    np.savez(tmp_path / "dermamnist.npz", images=np.zeros((3, 28, 28), np.uint8))
    with pytest.raises(SaflexError, match="not a MedMNIST npz"):
        mm.load_medmnist("dermamnist", tmp_path, skip_md5=True)
