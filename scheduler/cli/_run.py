"""Local commands: validate, run, status, results."""

from __future__ import annotations

import click

from scheduler.cli._common import cli, emit_json, read_recipe, recipe_argument


@cli.command()
@recipe_argument
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
def validate(recipe: str, as_json: bool) -> None:
    """Check a recipe without running it.

    \b
    Example:
      skybatch validate recipes/embed-minilm.yaml
    """
    r = read_recipe(recipe)
    if as_json:
        emit_json({"recipe": recipe, "valid": True, "name": r.name, "task": r.task})
    else:
        click.echo(f"{recipe}: ok ({r.task} with {r.model.engine}:{r.model.name})")
