"""timm models as backbones ('timm/<name>'): SAflex's exact Pi through them, local weights, the CLI."""
from __future__ import annotations

import dataclasses
import json
import sys

import pytest
import timm
import torch
from conftest import brute_force_pi, write_medmnist_npz
from safetensors.torch import save_file
from typer.testing import CliRunner

from saflex_cli import SaflexStep, refine
from saflex_cli.cli import app, main
from saflex_cli.errors import SaflexError
from saflex_cli.method.objectives import CrossEntropy
from saflex_cli.method.pi import validation_gradient
from saflex_cli.registry import BACKBONES

TINY = "test_resnet"  # timm's own test model with BatchNorm, 0.4 M parameters; 28x28 inputs work


def images(count: int, channels: int = 3, seed: int = 0) -> torch.Tensor:
    return torch.randint(0, 256, (count, channels, 28, 28), generator=torch.Generator().manual_seed(seed)).float()


@pytest.mark.parametrize("name", [TINY, "test_efficientnet"])
def test_exact_pi_through_a_timm_model_matches_brute_force_autograd(name):
    torch.manual_seed(0)
    model = BACKBONES.create(f"timm/{name}", in_channels=3, num_classes=3).train()
    x, y, x_val, y_val = images(3), torch.tensor([0, 1, 2]), images(4, seed=1), torch.tensor([2, 1, 0, 1])
    refined = refine(model, x, y, x_val, y_val, beta=0.0, tau=0.01, gumbel=False)
    expected = brute_force_pi(model, x, validation_gradient(model, CrossEntropy(), x_val, y_val))
    torch.testing.assert_close(refined.pi, expected, rtol=1e-4, atol=1e-4)
    assert expected.abs().max() > 1e-2  # the comparison is not between two zeros


@pytest.mark.parametrize("pi_mode", ["exact", "last-layer"])
def test_one_saflex_training_step_on_a_timm_backbone(pi_mode):
    torch.manual_seed(0)
    model = BACKBONES.create(f"timm/{TINY}", in_channels=1, num_classes=4).train()
    before = {name: p.detach().clone() for name, p in model.named_parameters()}
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    val = iter([(images(8, 1, seed=2), torch.arange(8) % 4)])
    step = SaflexStep(beta=0.0, tau=0.01, pi_mode=pi_mode)
    loss, refined = step.training_loss(model, images(6, 1), torch.arange(6) % 4, images(6, 1, seed=3),
                                       torch.arange(6) % 4, val, torch.Generator().manual_seed(0))
    loss.backward()
    optimizer.step()
    assert torch.isfinite(loss) and refined.labels.shape == (6, 4)
    assert not torch.equal(before["head.weight"], model.head.weight)
    assert any(not torch.equal(before[name], p) for name, p in model.named_parameters() if name.startswith("body."))


def timm_checkpoint(tmp_path, name: str, num_classes: int, suffix: str):
    """What timm itself would save for `name`: its full state dict, classifier included."""
    net = timm.create_model(name, num_classes=num_classes, pretrained=False)
    path = tmp_path / f"{name}{suffix}"
    state = {key: value.contiguous() for key, value in net.state_dict().items()}
    save_file(state, str(path)) if suffix == ".safetensors" else torch.save({"state_dict": state}, path)
    return path, state


@pytest.mark.parametrize("suffix", [".safetensors", ".pth"])
def test_local_weights_fill_the_body_and_the_head_only_when_its_shape_fits(tmp_path, suffix):
    path, state = timm_checkpoint(tmp_path, TINY, 5, suffix)
    same = BACKBONES.create(f"timm/{TINY}", num_classes=5, pretrained=str(path))
    other = BACKBONES.create(f"timm/{TINY}", num_classes=3, pretrained=str(path))
    for model in (same, other):
        for key, value in model.body.state_dict().items():
            assert torch.equal(value, state[key]), key
    assert torch.equal(same.head.weight, state["fc.weight"]) and torch.equal(same.head.bias, state["fc.bias"])
    assert other.head.weight.shape == (3, state["fc.weight"].shape[1])  # a fresh head, the file's dropped


def test_weights_of_another_architecture_are_refused_in_one_line(tmp_path):
    path, _ = timm_checkpoint(tmp_path, "test_efficientnet", 5, ".safetensors")
    with pytest.raises(SaflexError, match="does not fit this timm model"):
        BACKBONES.create(f"timm/{TINY}", num_classes=5, pretrained=str(path))


def test_an_unknown_timm_model_and_a_download_are_refused():
    with pytest.raises(SaflexError, match="no model 'resnet_nope'"):
        BACKBONES.get("timm/resnet_nope")
    with pytest.raises(SaflexError, match="local file only"):
        BACKBONES.create(f"timm/{TINY}", num_classes=2, pretrained="imagenet")


def test_medmnist_trains_a_timm_backbone_with_saflex_through_the_cli(tmp_path, offline):
    (tmp_path / "data" / "medmnist").mkdir(parents=True)
    write_medmnist_npz(tmp_path / "data" / "medmnist" / "dermamnist.npz", counts=(24, 16, 16), num_classes=7)
    result = CliRunner().invoke(app, ["medmnist", "--dataset", "dermamnist", "--aug", "mixup", "--saflex",
                                      "--model", f"timm/{TINY}", "--epochs", "1", "--seeds", "0", "--skip-md5",
                                      "--batch-size", "16", "--data-root", str(tmp_path / "data"),
                                      "--out", str(tmp_path / "out"), "--quiet"])
    assert result.exit_code == 0, result.output
    record, = (json.loads(p.read_text()) for p in (tmp_path / "out" / "runs" / "medmnist").glob("*.json"))
    assert record["status"] == "completed" and record["config"]["model"] == f"timm/{TINY}"
    assert record["epochs"][0]["saflex"]["kept_fraction"] is not None


def test_an_unknown_backbone_on_the_command_line_is_one_line_and_exit_2(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(sys, "argv", ["saflex", "medmnist", "--model", "timm/resnet_nope", "--out", str(tmp_path)])
    with pytest.raises(SystemExit) as exit_info:
        main()
    err = capsys.readouterr().err
    assert exit_info.value.code == 2 and "no model 'resnet_nope'" in err and "Traceback" not in err


def test_a_setting_the_backbone_does_not_take_is_one_line():
    with pytest.raises(SaflexError, match="'resnet18_28' does not take that setting.*'pretrained'"):
        BACKBONES.create("resnet18_28", in_channels=3, num_classes=2, pretrained="weights.pth")


def test_the_diffusion_family_builds_a_timm_backbone(tmp_path):
    from diffusion_fixtures import make_cub

    from saflex_cli.families.diffusion import build, defaults

    make_cub(tmp_path, classes=3, train_per_class=10, test_per_class=2)
    base = defaults("cub")
    options = {**dict(base.options), "image_size": 16, "pretrained": "none", "loader_workers": 0}
    config = dataclasses.replace(base, model=f"timm/{TINY}", data_root=str(tmp_path), aug="none",
                                 options=tuple(options.items()))
    setup = build(config, torch.device("cpu"))
    inputs, _ = next(iter(setup.train_batches))
    assert isinstance(setup.model.body, timm.models.ResNet) and setup.model(inputs).shape == (len(inputs), 3)
    with pytest.raises(SaflexError, match="local file only"):  # the recipe's default, ImageNet weights
        build(dataclasses.replace(config, options=tuple({**options, "pretrained": "imagenet"}.items())),
              torch.device("cpu"))
