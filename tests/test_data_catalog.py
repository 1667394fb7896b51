"""`saflex data verify` over every family's files: what is whole passes, what is wrong exits 2."""
from __future__ import annotations

import hashlib
import sys
from pathlib import Path

import pandas as pd
import pytest
import torch
from diffusion_fixtures import make_cub, write_edits
from flyp_helpers import write_iwildcam
from test_data_reliability import fake_medmnist, run_cli, unwrapped

from saflex_cli.cli import main
from saflex_cli.data import medmnist as mm
from saflex_cli.data.catalog import CATALOGS, DataFile, Status, family_folder, known_files
from saflex_cli.data.download import md5sum
from saflex_cli.data.pools import ensure_manifest
from saflex_cli.data.tabular import SOURCES

CLIP = "clip/ViT-B-16-quickgelu.openai"
POOL = "pools/img2img/Cub2011"


def verify(monkeypatch, capsys, root: Path, *args: str) -> tuple[int, dict[str, str], str]:
    """Exit code, the listing's line of each entry, and stderr."""
    monkeypatch.setattr(sys, "argv", ["saflex", "data", "verify", "--data-root", str(root), *args])
    with pytest.raises(SystemExit) as stop:
        main()
    captured = capsys.readouterr()
    lines = {line.split()[0]: line for line in captured.out.splitlines() if not line.startswith("under ")}
    return stop.value.code, lines, captured.err


def pool(root: Path) -> Path:
    folder = root / POOL
    for source in (0, 1):
        write_edits(folder, "a_photo_of_a_bird", "strength-0.5_guidance-7.5", "001.Class_a_bird", source, 0)
    return folder


def cut(path: Path) -> None:
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])


def weights(root: Path) -> Path:
    path = root / "clip" / "open_clip_pytorch_model.bin"
    path.parent.mkdir(parents=True)
    torch.save({"w": torch.zeros(64)}, path)  # torch's zip format, as open_clip's files
    return path


def test_data_file_status(tmp_path):
    def check(releases, path):
        return DataFile("x", path, (), releases).check()
    path = tmp_path / "x.csv"
    path.write_bytes(b"abc")
    md5 = hashlib.md5(b"abc").hexdigest()
    assert check({md5: "official"}, path) == Status("ok", "official release", md5)
    assert check({md5: "pre-2.2.4"}, path).words == "older release: pre-2.2.4"
    unknown = check({"0" * 32: "official"}, path)
    assert (unknown.state, unknown.words) == ("bad", "unknown checksum") and md5 in unknown.problem
    assert check({}, path) == Status("ok", "present (no official checksum)", md5)  # nothing to compare with
    assert check({}, tmp_path / "absent").state == "missing"
    assert check({}, None).words == "bundled"


def test_a_cut_npz_is_unreadable_not_of_unknown_checksum(tmp_path):
    path = fake_medmnist(tmp_path / "x.npz")
    entry = DataFile("x", path, (), {md5sum(path): "official"})
    assert entry.check().words == "official release"
    cut(path)
    status = entry.check()
    assert (status.state, status.words) == ("bad", "unreadable (truncated?)") and str(path) in status.problem


@pytest.mark.parametrize("online", [False, True])
def test_fetch_of_a_file_with_unknown_md5_names_it_and_keeps_it(online, tmp_path, monkeypatch, capsys):
    if online:  # refused before any download: the catalog's URLs are never tried
        monkeypatch.delenv("SAFLEX_OFFLINE")
    path = fake_medmnist(tmp_path / "medmnist" / "pathmnist.npz")
    before = path.read_bytes()
    code, err = run_cli(monkeypatch, capsys, "data", "fetch", "medmnist/pathmnist", "--data-root", str(tmp_path))
    assert code == 2 and "missing" not in err
    assert unwrapped(f"{path} has MD5 {md5sum(path)}, which matches no known release") in unwrapped(err)
    assert "delete it" in err and "--skip-md5" in err
    assert path.read_bytes() == before and sorted(p.name for p in path.parent.iterdir()) == ["pathmnist.npz"]


def test_only_missing_files_are_reported_not_failed(tmp_path, monkeypatch, capsys):
    code, lines, _ = verify(monkeypatch, capsys, tmp_path)
    assert code == 0
    for name in ("medmnist/pathmnist", "tabular/qsar", "wilds/iwildcam_v2.0", "iwildcam/alia-subset",
                 "cub/CUB_200_2011", CLIP):
        assert "missing" in lines[name], name
    assert "bundled" in lines["digits"]
    code, lines, _ = verify(monkeypatch, capsys, tmp_path, "--present")
    assert code == 0 and list(lines) == ["digits"]


def test_a_file_asked_about_by_name_must_be_there(tmp_path, monkeypatch, capsys):
    code, lines, err = verify(monkeypatch, capsys, tmp_path, "medmnist/pathmnist", "tabular/qsar")
    assert code == 2 and list(lines) == ["medmnist/pathmnist", "tabular/qsar"]
    assert unwrapped(f"`saflex data fetch medmnist/pathmnist` downloads it to {tmp_path / 'medmnist'}") in unwrapped(err)
    fake_medmnist(tmp_path / "medmnist" / "pathmnist.npz")
    monkeypatch.setattr(mm, "info", lambda flag, real=mm.info: dict(real(flag), MD5=md5sum(tmp_path / "medmnist" / "pathmnist.npz")))
    code, lines, _ = verify(monkeypatch, capsys, tmp_path, "medmnist/pathmnist")
    assert code == 0 and "official release" in lines["medmnist/pathmnist"]


def unknown_npz(root):
    fake_medmnist(root / "medmnist" / "pathmnist.npz")


def cut_npz(root):
    cut(fake_medmnist(root / "medmnist" / "dermamnist.npz"))


def cub_image_missing(root):
    make_cub(root)
    next((root / "CUB_200_2011" / "images").rglob("*.jpg")).unlink()


def wilds_image_missing(root):
    write_iwildcam(root)
    first = pd.read_csv(root / "iwildcam_v2.0" / "metadata.csv").filename.iloc[0]
    (root / "iwildcam_v2.0" / "train" / first).unlink()  # the loader checks each split's first and last image


def alia_images_missing(root):
    (root / "iwildcam_v2.0" / "train").mkdir(parents=True)


def pool_image_changed(root):
    ensure_manifest(pool(root))
    next((root / POOL).rglob("*.png")).write_bytes(b"other bytes")


def pool_image_added(root):
    ensure_manifest(pool(root))
    write_edits(root / POOL, "a_photo_of_a_bird", "strength-0.5_guidance-7.5", "001.Class_a_bird", 7, 0)


def cut_weights(root):
    cut(weights(root))


WRONG = {
    "npz of unknown checksum": (unknown_npz, "medmnist/pathmnist", "unknown checksum"),
    "npz cut short": (cut_npz, "medmnist/dermamnist", "unreadable (truncated?)"),
    "CUB image missing": (cub_image_missing, "cub/CUB_200_2011", "incomplete"),
    "WILDS image missing": (wilds_image_missing, "wilds/iwildcam_v2.0", "incomplete"),
    "ALIA subset images missing": (alia_images_missing, "iwildcam/alia-subset", "incomplete"),
    "pool image changed": (pool_image_changed, POOL, "differs from its manifest"),
    "pool image added": (pool_image_added, POOL, "differs from its manifest"),
    "weights cut short": (cut_weights, CLIP, "unreadable (truncated?)"),
}


@pytest.mark.parametrize("case", list(WRONG))
def test_what_is_there_but_wrong_exits_2_naming_it(case, tmp_path, monkeypatch, capsys):
    make, name, words = WRONG[case]
    make(tmp_path)
    code, lines, err = verify(monkeypatch, capsys, tmp_path)
    assert code == 2 and words in lines[name]
    assert unwrapped(f"{name} ({words})") in unwrapped(err)
    assert "Traceback" not in err


def whole_npz(root, monkeypatch):
    path = fake_medmnist(root / "medmnist" / "pathmnist.npz")
    monkeypatch.setattr(mm, "info", lambda flag, real=mm.info: dict(real(flag), MD5=md5sum(path)))
    return md5sum(path)


def biodeg(root, monkeypatch):
    (root / "tabular").mkdir()
    (root / "tabular" / "biodeg.csv").write_text("a;experimental class\n1;RB\n")
    return md5sum(root / "tabular" / "biodeg.csv")


def cub(root, monkeypatch):
    make_cub(root, classes=2, train_per_class=6, test_per_class=2)
    return "16 images"


def wilds(root, monkeypatch):
    write_iwildcam(root)
    return "40 images listed"  # train, id_val, id_test and test: WILDS' splits


def pool_with_manifest(root, monkeypatch):
    return ensure_manifest(pool(root)).checksum


def pool_without_manifest(root, monkeypatch):
    pool(root)
    return "no manifest yet"


def whole_weights(root, monkeypatch):
    return md5sum(weights(root))


WHOLE = {
    "npz of the official release": (whole_npz, "medmnist/pathmnist", "official release"),
    "local tabular file": (biodeg, "tabular/qsar", "present (no official checksum)"),
    "CUB release": (cub, "cub/CUB_200_2011", "present"),
    "WILDS release": (wilds, "wilds/iwildcam_v2.0", "present"),
    "pool with its manifest": (pool_with_manifest, POOL, "present"),
    "pool not yet imported": (pool_without_manifest, POOL, "present"),
    "CLIP weights": (whole_weights, CLIP, "present (no official checksum)"),
}


@pytest.mark.parametrize("case", list(WHOLE))
def test_what_is_whole_passes_with_its_checksum(case, tmp_path, monkeypatch, capsys):
    make, name, words = WHOLE[case]
    detail = make(tmp_path, monkeypatch)
    before = sorted(tmp_path.rglob("*"))
    code, lines, err = verify(monkeypatch, capsys, tmp_path, name)  # asked by name: it must be there
    assert code == 0, err
    assert f" {words} " in lines[name] and detail in lines[name]
    assert sorted(tmp_path.rglob("*")) == before  # verify writes nothing (no pool manifest either)


def test_every_family_registers_its_files():
    assert set(CATALOGS.names()) == {"medmnist", "digits", "tabular", "wilds", "iwildcam", "cub", "pools", "clip"}


@pytest.mark.parametrize("source", [s for s in SOURCES.values() if s.local_file], ids=lambda s: s.name)
def test_every_local_tabular_file_is_listed(source, tmp_path):
    (entry,) = [f for f in known_files(tmp_path) if f.name == f"tabular/{source.name}"]
    assert entry.path == tmp_path / "tabular" / source.local_file


@pytest.mark.parametrize("root, folder", [("data", "data/medmnist"), ("data/medmnist", "data/medmnist"),
                                          ("/x/medmnist/y", "/x/medmnist/y/medmnist")])
def test_one_data_root_with_a_folder_per_family(root, folder):
    assert family_folder(Path(root), "medmnist") == Path(folder)


@pytest.mark.parametrize("name, message", [
    ("cub/CUB_200_2011", "a dataset release that saflex does not download"),
    ("tabular/qsar", "saflex does not download tabular/qsar: place it at {root}/tabular/biodeg.csv yourself"),
    ("medmnist/nosuch", "unknown data file 'medmnist/nosuch'"),
])
def test_fetch_refuses_what_it_cannot_download(name, message, tmp_path, monkeypatch, capsys):
    code, err = run_cli(monkeypatch, capsys, "data", "fetch", name, "--data-root", str(tmp_path))
    assert code == 2 and unwrapped(message.format(root=tmp_path)) in unwrapped(err)
