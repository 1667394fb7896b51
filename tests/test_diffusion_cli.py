"""`saflex diffusion` end to end on a CUB fixture with a generated pool, rendered by `saflex report`."""
from __future__ import annotations

import dataclasses
import json

import pytest
import torch
from typer.testing import CliRunner

from diffusion_fixtures import make_cub, write_edits
from saflex_cli.cli import app
from saflex_cli.cli.common import build_configs
from saflex_cli.data.pools import read_manifest
from saflex_cli.errors import SaflexError
from saflex_cli.families.diffusion import build, defaults, pool_options, scope_pool_options
from saflex_cli.registry import FAMILIES
from saflex_cli.reporting.paper import paper_tables, paper_value

SETTING = "strength-0.6_guidance-7.5"
PROMPTS = ("a_photo_of_a_{}_bird_flying", "a_photo_of_a_{}_bird_on_rocks")


@pytest.fixture
def cub_with_pool(tmp_path):
    make_cub(tmp_path / "data", classes=3, train_per_class=10, test_per_class=3)
    pool = tmp_path / "pools" / "img2img" / "Cub2011"
    folders = [f"{c + 1:03d}.Class_{chr(97 + c)}_bird" for c in range(3)]
    for prompt in PROMPTS:
        for source in range(15):  # 5 sources per class, in ALIA's order
            write_edits(pool, prompt, SETTING, folders[source // 5], source, source // 5)
    return tmp_path / "data", pool


def test_diffusion_command_trains_two_seeds_and_renders_in_report(cub_with_pool, tmp_path):
    data, pool = cub_with_pool
    out = tmp_path / "results"
    tiny = ["--model", "tiny_resnet", "--pretrained", "none", "--image-size", "16", "--loader-workers", "0", "--epochs", "2",
            "--batch-size", "8", "--val-batch-size", "4", "--data-root", str(data), "--out", str(out), "--quiet"]
    result = CliRunner().invoke(app, ["diffusion", "--dataset", "cub", "--aug", "pool", "--pool", str(pool), "--saflex",
                                      "--seeds", "0,1", *tiny])
    assert result.exit_code == 0, result.output
    records = [json.loads(p.read_text()) for p in sorted((out / "runs" / "diffusion").glob("*.json"))]
    assert [r["config"]["seed"] for r in records] == [0, 1]
    checksum = read_manifest(pool).checksum
    for record in records:
        assert record["data"]["pool"]["manifest_sha256"] == checksum == dict(record["config"]["options"])["pool_manifest"]
        # 5 sources per class, one per class carved into validation: its edits are never trained on
        assert record["data"]["pool"]["images"] == 12 and len(record["epochs"]) == 2
        assert {"acc", "balanced_acc", "macro_f1"} <= set(record["selections"]["best_val_acc"]["test"])
        assert {entry["source"] for entry in record["trust"]} == {0, 1}

    report = CliRunner().invoke(app, ["report", "--out", str(out), "--family", "diffusion"])
    assert report.exit_code == 0, report.output
    table = (out / "diffusion.md").read_text()
    row = next(line for line in table.splitlines() if line.startswith("| SAflex (w/ Img2Img w/o finetune) |"))
    assert "± 0.00 (2)" in row or "(2) ·" in row  # two seeds per cell
    assert "cub (fine-grained) · balanced acc" in table
    trust = (out / "diffusion_trust.md").read_text()
    assert all(f"img2img/{prompt}/{SETTING}" in trust for prompt in PROMPTS)

    again = CliRunner().invoke(app, ["diffusion", "--dataset", "cub", "--aug", "pool", "--pool", str(pool), "--saflex",
                                     "--seeds", "0,1", "--dry-run", *tiny])
    assert again.exit_code == 0 and again.output.count("completed") >= 2


def test_real_extra_reference_trains_on_train_plus_extra(cub_with_pool):
    data, _ = cub_with_pool
    base = defaults("cub")
    config = dataclasses.replace(base, model="tiny_resnet", data_root=str(data), options=tuple(
        {**dict(base.options), "image_size": 8, "pretrained": "none", "loader_workers": 0, "real_extra": True}.items()))
    setup = build(config, torch.device("cpu"))
    assert len(setup.train_batches.dataset) == 12 + 15  # train subset (15 sources - 3 validation) + extra (5 per class)
    assert setup.augmenter is None
    with pytest.raises(SaflexError, match="real-extra reference"):
        build(dataclasses.replace(config, aug="randaug"), torch.device("cpu"))


def test_pool_runs_need_a_pool_folder(tmp_path):
    result = CliRunner().invoke(app, ["diffusion", "--dataset", "cub", "--aug", "pool", "--data-root", str(tmp_path)])
    assert isinstance(result.exception, SaflexError) and "--pool DIR" in str(result.exception)


@pytest.mark.parametrize("dataset,aug,saflex,label,expected", [
    ("cub", "pool", True, "Img2Img (w/o finetune)", ("SAflex (w/ Img2Img w/o finetune)", 73.22)),
    ("iwildcam", "pool", False, "Img2Img (w/ finetune)", ("Img2Img (w/ finetune)", 70.49)),
    ("iwildcam", "pool", True, "InstructPix2Pix", ("SAflex (w/ InstructPix2Pix)", 69.92)),
    ("cub", "randaug", False, None, ("RandAug", 71.26)),
    ("cub", "none", False, None, ("No Aug", 68.60)),
])
def test_records_land_in_table3_beside_the_paper(dataset, aug, saflex, label, expected):
    base = defaults(dataset)
    config = dataclasses.replace(base, aug=aug, refine="saflex" if saflex else "none",
                                 options=base.options + ((("pool_label", label),) if label else ()))
    record = {"config": config.to_dict(),
              "selections": {"best_val_acc": {"test": {"acc": 0.5, "balanced_acc": 0.4, "macro_f1": 0.3}}}}
    cells = FAMILIES.get("diffusion").cells(record, "best_val_acc")
    assert [c.value for c in cells] == [50.0, 40.0, 30.0]
    assert (cells[0].method, paper_value((3,), cells[0].method, cells[0].model, cells[0].column)[0]) == expected
    assert cells[0].method in FAMILIES.get("diffusion").methods


def test_every_table3_row_is_a_recipe_method():
    table3 = paper_tables()[paper_tables().table == 3]
    assert set(table3.method) <= set(FAMILIES.get("diffusion").methods)
    assert set(table3.column) == {"cub (fine-grained)", "iwildcam (OOD)"}


def test_only_pool_runs_carry_the_pool(cub_with_pool):
    _, pool = cub_with_pool
    configs = scope_pool_options(build_configs("diffusion", "cub", "all", False, "0", train={},
                                               options=pool_options(pool, None, None)))
    assert {(c.aug, c.uses_saflex) for c in configs} == {("none", False), ("randaug", False), ("randaug", True),
                                                            ("pool", False), ("pool", True)}
    for config in configs:  # a No Aug run must not be redone because the pool changed
        assert (config.option("pool_manifest") == read_manifest(pool).checksum) == (config.aug == "pool")
