"""The generated-pool reader (ALIA's layout), its manifest, the selection rules and the augmenter."""
from __future__ import annotations

import json
from collections import Counter

import pytest
import torch

from diffusion_fixtures import write_edits, write_preview_grid, write_txt2img
from saflex_cli.augment.pool import GeneratedPool
from saflex_cli.data.iwildcam import CLASS_NAMES
from saflex_cli.data.pools import MANIFEST_NAME, ensure_manifest, read_pool_images, select_pool
from saflex_cli.errors import SaflexError
from saflex_cli.data.images import resize_transform
from saflex_cli.registry import AUGMENTERS

FOLDERS = {"001.Class_a_bird": 0, "002.Class_b_bird": 1, "003.Class_c_bird": 2}
SETTING = "strength-0.6_guidance-7.5"


@pytest.fixture
def img2img_pool(tmp_path):
    """Two prompt folders, sources 0..11 (4 per class), 2 edits each, plus preview grids and a stray file."""
    pool = tmp_path / "img2img" / "Cub2011"
    folders = list(FOLDERS)
    for prompt in ("a_photo_of_a_{}_bird_flying", "a_photo_of_a_{}_bird_on_rocks"):
        for source in range(12):
            write_edits(pool, prompt, SETTING, folders[source % 3], source, source % 3)
        write_preview_grid(pool / prompt / SETTING / folders[0])
    (pool / "a_photo_of_a_{}_bird_flying" / SETTING / folders[0] / "notes.png").write_bytes(b"not an edit")
    return pool


def test_reader_imports_img2img_layout_skipping_previews_and_strays(img2img_pool):
    manifest = ensure_manifest(img2img_pool)
    assert manifest.origin == "imported"
    assert len(manifest.images) == 2 * 12 * 2  # prompts x sources x edits; grids and notes.png left out
    assert not any("samples" in image.path for image in manifest.images)
    first = next(i for i in manifest.images if i.path.endswith("/7-1.png"))
    assert (first.source_image, first.edit, first.setting, first.method) == (7, 1, SETTING, "img2img")
    on_disk = json.loads((img2img_pool / MANIFEST_NAME).read_text())
    assert on_disk["checksum"] == manifest.checksum == ensure_manifest(img2img_pool).checksum


def test_manifest_refuses_a_changed_folder_and_changed_bytes(img2img_pool):
    manifest = ensure_manifest(img2img_pool)
    image = manifest.images[0]
    (img2img_pool / image.path).write_bytes((img2img_pool / manifest.images[1].path).read_bytes())
    with pytest.raises(SaflexError, match="differs from the pool manifest"):
        read_pool_images(img2img_pool, [image], resize_transform(8))
    write_edits(img2img_pool, "a_new_prompt", SETTING, "001.Class_a_bird", 0, 0)
    with pytest.raises(SaflexError, match="2 new"):
        ensure_manifest(img2img_pool)


def test_one_edit_per_source_then_per_class_counts(img2img_pool):
    manifest = ensure_manifest(img2img_pool)
    selection = select_pool(manifest, FOLDERS, {0: 3, 1: 2, 2: 9}, seed=0)
    sources = Counter(i.source_image for i in selection.images)
    assert max(sources.values()) == 1  # one edit per source image, over both prompts
    assert Counter(selection.labels) == {0: 3, 1: 2, 2: 4}  # class 2 has only 4 sources: kept, recorded as short
    assert selection.provenance["short_classes"] == {"2": [4, 9]}
    assert selection.labels == [FOLDERS[i.class_folder] for i in selection.images]
    names = selection.source_names
    assert [names[s] for s in selection.source_ids] == [i.source for i in selection.images]
    assert len(names) == 2 and names[0].startswith("img2img/a_photo_of_a_{}_bird_flying/")
    other = select_pool(manifest, FOLDERS, {0: 3, 1: 2, 2: 9}, seed=1)
    assert [i.path for i in other.images] != [i.path for i in selection.images]  # the seed draws the edits


def test_selection_drops_held_out_sources_and_filters_prompts(img2img_pool):
    manifest = ensure_manifest(img2img_pool)
    held = frozenset({0, 3, 6})
    selection = select_pool(manifest, FOLDERS, {0: 10, 1: 10, 2: 10}, seed=0, held_out=held,
                            prompts=("a_photo_of_a_{}_bird_on_rocks",))
    assert not {i.source_image for i in selection.images} & held
    assert {i.prompt for i in selection.images} == {"a_photo_of_a_{}_bird_on_rocks"}
    with pytest.raises(SaflexError, match="not in pool"):
        select_pool(manifest, FOLDERS, {0: 1}, seed=0, prompts=("no_such_prompt",))


def test_txt2img_layout_maps_class_folders_by_the_class_list_not_alphabetically(tmp_path):
    pool = tmp_path / "txt2img" / "iWildCamMini"
    for label, name in enumerate(CLASS_NAMES):
        write_txt2img(pool, "a_camera_trap_photo_of_{}_in_the_wild", name, label, count=label + 1)
    write_preview_grid(pool / "a_camera_trap_photo_of_{}_in_the_wild" / "cattle", "cattle.png")
    manifest = ensure_manifest(pool)
    assert len(manifest.images) == sum(range(1, 8))
    folders = {name: i for i, name in enumerate(CLASS_NAMES)}
    selection = select_pool(manifest, folders, {i: 10 for i in range(7)}, seed=0)
    assert Counter(selection.labels) == {i: i + 1 for i in range(7)}  # 'dik-diks' is 6, not 2nd alphabetically
    images = read_pool_images(pool, selection.images, resize_transform(8))
    # the fixture colours encode the class: each image's dominant colour must match its label's
    from diffusion_fixtures import PALETTE
    palette = torch.tensor(PALETTE, dtype=torch.float)
    nearest = torch.cdist(images.float().mean((2, 3)), palette).argmin(1)
    assert nearest.tolist() == selection.labels


def test_alia_instruct_folder_and_unknown_classes(tmp_path):
    pool = tmp_path / "instruct" / "iWildCamMini"
    write_edits(pool, "put_the_animal_near_a_lake", "strength-1.3_guidance-5.0", "zebras", 5, 4)
    manifest = ensure_manifest(pool)
    assert {i.method for i in manifest.images} == {"instructpix2pix"}
    with pytest.raises(SaflexError, match="class folders the dataset does not know: zebras"):
        select_pool(manifest, FOLDERS, {0: 1}, seed=0)
    with pytest.raises(SaflexError, match="not a pool folder"):
        ensure_manifest(tmp_path / "instruct")


def test_pool_augmenter_draws_a_batch_as_large_as_the_real_one():
    images = torch.arange(5, dtype=torch.uint8).view(5, 1, 1, 1).expand(5, 3, 4, 4).contiguous()
    pool = AUGMENTERS.get("pool")(images, torch.tensor([0, 1, 2, 0, 1]), torch.tensor([0, 0, 1, 1, 1]))
    assert isinstance(pool, GeneratedPool)
    real_labels = torch.eye(3)[torch.tensor([0, 1, 2, 2, 1, 0, 0])]
    batch = pool(torch.zeros(7, 3, 4, 4, dtype=torch.uint8), real_labels, torch.Generator().manual_seed(0))
    drawn = batch.inputs[:, 0, 0, 0].long()  # the pixel value is the pool index
    assert batch.inputs.shape == (7, 3, 4, 4) and batch.inputs.dtype == torch.uint8
    assert batch.labels.argmax(1).tolist() == [[0, 1, 2, 0, 1][i] for i in drawn]
    assert batch.meta["source"].tolist() == [[0, 0, 1, 1, 1][i] for i in drawn]
    again = pool(torch.zeros(7, 3, 4, 4, dtype=torch.uint8), real_labels, torch.Generator().manual_seed(0))
    assert torch.equal(again.inputs, batch.inputs)
