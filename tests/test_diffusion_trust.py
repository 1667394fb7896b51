"""The trust report: a prompt folder whose images carry the wrong class is trusted less by SAflex."""
from __future__ import annotations

import dataclasses

import torch
from torch import nn

from diffusion_fixtures import make_cub, write_edits
from saflex_cli.data.cub import load_cub
from saflex_cli.families.diffusion import build, defaults, method_label, pool_options
from saflex_cli.models.base import Classifier, ImageNormalize
from saflex_cli.reporting.trust import by_source, trust_frame, write_trust_report
from saflex_cli.training.trainer import Trainer

SETTING = "strength-0.6_guidance-7.5"
GOOD, WRONG = "a_photo_of_a_{}_bird_flying", "a_photo_of_a_{}_bird_mislabelled"


def colour_classifier(num_classes: int, size: int) -> Classifier:
    """A one-hidden-layer network: enough for flat-colour classes, and fast on a CPU."""
    return Classifier(nn.Sequential(nn.Flatten(), nn.Linear(3 * size * size, 64), nn.ReLU()), 64, num_classes,
                      ImageNormalize([0.5] * 3, [0.25] * 3))


def test_mislabelled_prompt_folder_is_relabelled_far_more_often(tmp_path):
    torch.manual_seed(0)
    make_cub(tmp_path, classes=3, train_per_class=20, test_per_class=3)
    data = load_cub(tmp_path, image_size=8)
    pool = tmp_path / "pools" / "img2img" / "Cub2011"
    for i, label in enumerate(data.source_labels):
        write_edits(pool, GOOD, SETTING, data.edit_folders[label], i, label)
        # wrong by construction: filed under the source's class, but showing the next class
        write_edits(pool, WRONG, SETTING, data.edit_folders[label], i, (label + 1) % 3)
    base = defaults("cub")
    config = dataclasses.replace(
        base, aug="pool", model="tiny_resnet", epochs=10, batch_size=8, data_root=str(tmp_path),
        refine="saflex", saflex=dataclasses.replace(base.saflex, val_batch_size=32),
        optim=dataclasses.replace(base.optim, lr=0.03),
        options=tuple({**dict(base.options), "image_size": 8, "pretrained": "none", "loader_workers": 0,
                       **pool_options(pool, None, None)}.items()))
    setup = build(config, torch.device("cpu"))
    setup.model = colour_classifier(3, 8)
    result = Trainer(setup, config, torch.device("cpu")).fit()
    record = {"run_name": "trust-fixture", "config": config.to_dict(), "data": setup.provenance, **result}

    frame = by_source(trust_frame([record]))
    relabelled = {source.split("/")[1]: value for source, value in zip(frame.source, frame.relabelled_fraction)}
    assert relabelled[WRONG] > relabelled[GOOD] + 0.2, relabelled
    # every real sample drew one pool sample beside it
    assert frame.seen.sum() == len(setup.train_batches.dataset) * config.epochs

    written = write_trust_report(tmp_path / "results", "diffusion", [record], lambda r: method_label(r["config"]))
    markdown = written[1].read_text()
    assert "SAflex (w/ Img2Img w/o finetune)" in markdown and "Class b bird" in markdown
    assert f"img2img/{WRONG}/{SETTING}" in markdown
    if len(written) == 3:  # matplotlib installed
        assert written[2].read_bytes()[:4] == b"\x89PNG"
