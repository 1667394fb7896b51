"""`saflex config show` / `keys`: a command's resolved settings, and what can be set, without running."""
from __future__ import annotations

import typer

config_app = typer.Typer(no_args_is_help=True, help="The resolved settings of a family command, without running it.")


@config_app.command(context_settings={"allow_extra_args": True, "ignore_unknown_options": True})
def show(ctx: typer.Context) -> None:
    """Print every run's resolved config as JSON, e.g. `saflex config show tabular --dataset qsar --beta 0,1`."""
    from . import app
    if not ctx.args:
        raise typer.BadParameter("name a family command and its flags, e.g. saflex config show medmnist --aug mixup")
    app(args=[*ctx.args, "--show-config"], standalone_mode=False)


@config_app.command()
def keys(family: str = typer.Argument(..., help="medmnist, images, tabular, flyp, diffusion or demo."),
         aug: str = typer.Option("none", "--aug", help="Also list this augmenter's own arguments (aug.NAME).")) -> None:
    """List the keys --set and --config accept for a family, with their recipe defaults."""
    import dataclasses

    from ..registry import FAMILIES
    from ..settings import domain_of, settable_keys

    recipe = FAMILIES.get(family)
    config = dataclasses.replace(recipe.defaults(recipe.datasets[0]), aug=aug)
    flat = config.to_dict()
    for key in settable_keys(config):
        head, _, rest = key.partition(".")
        if head in ("optim", "saflex"):
            value = flat[head][rest]
        elif head == "options":
            value = config.option(rest)
        elif head == "aug":
            value = dict(config.option("aug_kwargs") or {}).get(rest, "(the augmenter's default)")
        else:
            value = flat[key]
        meaning = recipe.options[rest].meaning + ": " if head == "options" else ""
        domain = domain_of(config, key)
        print(f"{key:<28} {value!r:<24} {meaning}{domain.words if domain else ''}")
