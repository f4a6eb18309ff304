"""Shared pieces of the CLI: the root group, JSON output and recipe loading."""

from __future__ import annotations

import json
import sys
from typing import TYPE_CHECKING, Any

import click

if TYPE_CHECKING:
    from scheduler.recipe import Recipe

__all__ = ["cli", "emit_json", "read_recipe", "recipe_argument"]


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.option("--debug", is_flag=True, hidden=True, help="Show tracebacks.")
@click.version_option(package_name="skybatch", prog_name="skybatch")
def cli(debug: bool) -> None:
    """skybatch: offline batch inference by a deadline, at the lowest cost.

    \b
    Start here (offline, on this machine):
      skybatch run recipes/embed-minilm.yaml
      skybatch results <RUN_ID> --sql "select count(*) from results"
    """


recipe_argument = click.argument("recipe", type=click.Path(dir_okay=False, path_type=str))


def read_recipe(path: str) -> Recipe:
    """Load a recipe; errors become one line with exit code 2 at the CLI edge."""
    # Imported here: the recipe model pulls in pydantic and yaml, which `--help` never needs.
    from scheduler.recipe import load_recipe

    return load_recipe(path)


def emit_json(obj: Any) -> None:
    """Print exactly one JSON object on stdout (the ``--json`` contract)."""
    sys.stdout.write(json.dumps(obj, sort_keys=False, default=str) + "\n")
    sys.stdout.flush()
