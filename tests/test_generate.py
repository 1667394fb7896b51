"""`saflex generate` with a tiny random diffusers pipeline built offline (three methods, resume, errors)."""
from __future__ import annotations

import importlib.util
import sys

import pytest
import torch
from PIL import Image
from typer.testing import CliRunner

from diffusion_fixtures import make_cub, tiny_pipeline
from saflex_cli.cli import app
from saflex_cli.data import generate as gen
from saflex_cli.data.cub import load_cub
from saflex_cli.data.pools import ensure_manifest, read_manifest, select_pool, sha256_bytes
from saflex_cli.errors import SaflexError

needs_diffusers = pytest.mark.skipif(
    importlib.util.find_spec("diffusers") is None or importlib.util.find_spec("transformers") is None,
    reason="diffusers/transformers not installed: pip install 'saflex[diffusion]' (the dev extra includes them)")
CPU = torch.device("cpu")
PROMPT = "a photo of a {} bird on rocks"


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    root = tmp_path_factory.mktemp("models")
    return {"sd": tiny_pipeline(root / "sd"), "instruct": tiny_pipeline(root / "instruct", instruct=True)}


@pytest.fixture(scope="module")
def cub_root(tmp_path_factory):
    return make_cub(tmp_path_factory.mktemp("cub"), classes=2, train_per_class=7, test_per_class=1)


@needs_diffusers
@pytest.mark.parametrize("method", gen.METHODS)
def test_generate_writes_a_pool_in_alia_layout_with_its_manifest(method, models, cub_root, tmp_path):
    data = load_cub(cub_root, image_size=16)
    settings = gen.default_settings("cub", method, steps=2, per_class=2)
    model = models["instruct" if method == "instructpix2pix" else "sd"]
    manifest = gen.generate_pool(data, settings, model, tmp_path, templates=(PROMPT,), device=CPU, quiet=True)
    folder = tmp_path / method / "Cub2011"
    if method == "txt2img":
        expected = {f"a_photo_of_a_{{}}_bird_on_rocks/{name}/{k}.png" for name in data.class_names for k in range(2)}
    else:
        setting = "strength-0.6_guidance-7.5" if method == "img2img" else "strength-1.3_guidance-5.0"
        expected = {f"a_photo_of_a_{{}}_bird_on_rocks/{setting}/{data.edit_folders[label]}/{i}-{j}.png"
                    for i, label in enumerate(data.source_labels) if i not in data.held_out for j in range(2)}
    assert {image.path for image in manifest.images} == expected
    for image in manifest.images:
        data_bytes = (folder / image.path).read_bytes()
        assert image.sha256 == sha256_bytes(data_bytes) and isinstance(image.seed, int)
        with Image.open(folder / image.path) as png:
            assert png.size == ((32, 32) if method == "txt2img" else (24, 24))  # edits keep the source size
    assert ensure_manifest(folder).checksum == manifest.checksum == read_manifest(folder).checksum
    selection = select_pool(manifest, data.class_folders, {0: 5, 1: 5}, seed=0, held_out=data.held_out)
    assert set(selection.labels) == {0, 1}


@needs_diffusers
def test_generate_resumes_skipping_existing_images(models, cub_root, tmp_path, monkeypatch):
    data = load_cub(cub_root, image_size=16)
    settings = gen.default_settings("cub", "img2img", steps=2)
    first = gen.generate_pool(data, settings, models["sd"], tmp_path, templates=(PROMPT,), device=CPU, quiet=True)
    victim = first.images[0]
    (first.folder / victim.path).unlink()
    calls = []
    real = gen.run_pipeline
    monkeypatch.setattr(gen, "run_pipeline", lambda *a: calls.append(a[1]) or real(*a))
    second = gen.generate_pool(data, settings, models["sd"], tmp_path, templates=(PROMPT,), device=CPU, quiet=True)
    assert [job.entries[0].source_image for job in calls] == [victim.source_image]
    assert {i.path for i in second.images} == {i.path for i in first.images}
    unchanged = {i.path: i.sha256 for i in first.images if i.source_image != victim.source_image}
    assert all(i.sha256 == unchanged[i.path] for i in second.images if i.path in unchanged)
    monkeypatch.setattr(gen, "load_pipeline", lambda *a: pytest.fail("nothing is left to generate"))
    gen.generate_pool(data, settings, models["sd"], tmp_path, templates=(PROMPT,), device=CPU, quiet=True)


@needs_diffusers
def test_generate_command_with_alia_prompts(models, cub_root, tmp_path):
    result = CliRunner().invoke(app, ["generate", "--dataset", "cub", "--method", "txt2img", "--model", str(models["sd"]),
                                      "--steps", "1", "--per-class", "1", "--data-root", str(cub_root),
                                      "--out", str(tmp_path), "--quiet"])
    assert result.exit_code == 0, result.output
    written = sorted(p.relative_to(tmp_path).as_posix() for p in tmp_path.rglob("*.png"))
    assert written == ["txt2img/Cub2011/a_iNaturalist_photo_of_a_{}_bird/Class a bird/0.png",
                       "txt2img/Cub2011/a_iNaturalist_photo_of_a_{}_bird/Class b bird/0.png"]


def test_generate_explains_missing_weights_and_missing_diffusers(cub_root, tmp_path, monkeypatch):
    data = load_cub(cub_root, image_size=16)
    settings = gen.default_settings("cub", "img2img", steps=2)
    if importlib.util.find_spec("diffusers") is not None:
        with pytest.raises(SaflexError, match="cannot be downloaded"):
            gen.generate_pool(data, settings, tmp_path / "no-model", tmp_path, device=CPU, quiet=True)
    monkeypatch.setitem(sys.modules, "diffusers", None)  # as if not installed
    with pytest.raises(SaflexError, match=r"pip install 'saflex\[diffusion\]'"):
        gen.generate_pool(data, settings, tmp_path / "no-model", tmp_path / "other", device=CPU, quiet=True)
    with pytest.raises(SaflexError, match="0 denoising steps"):
        gen.generate_pool(data, gen.default_settings("cub", "img2img", steps=1), tmp_path, tmp_path, device=CPU)
