"""What can be known about a recipe before a run: ``skybatch validate`` lists it all.

A run that fails after ten seconds of model loading, or dead-letters every row because
of a typo in the prompt template, costs a new user their first hour; each check here
costs milliseconds. :func:`check_recipe` returns every problem it finds, one line each:

- the input: a local path (file, glob or folder) exists and holds files of the format;
  a remote one (``s3://``, ``gs://``, ...) is checked for shape only, unless
  ``check_input`` asks to reach it;
- the prompt template parses, and names only columns a sample of the input has;
- the model resolves: a local path exists; a Hub id is in the Hugging Face cache or a
  package that ships it (local workers start offline), with how to allow downloads;
  a python-engine ``module:function`` imports;
- engine options are known to the engine.
"""

from __future__ import annotations

import string
from typing import TYPE_CHECKING

from scheduler.errors import SkybatchError

if TYPE_CHECKING:
    from scheduler.recipe import Recipe

__all__ = ["check_recipe"]

# fsspec protocols a store or input may use; anything else is likely a typo.
_REMOTE = (
    "s3://", "gs://", "gcs://", "az://", "abfs://", "http://", "https://", "hf://", "file://",
)  # fmt: skip
_SAMPLE_ROWS = 20


def _template_fields(template: str) -> tuple[list[str], str | None]:
    """The field names a template uses, or the parse error in words."""
    try:
        parsed = list(string.Formatter().parse(template))
    except ValueError as e:
        return [], f"prompt.template: {template!r} does not parse ({e}); write fields as {{column}}"
    names = []
    for _, field, _, _ in parsed:
        if field is None:
            continue
        if field == "" or field.isdigit():
            return [], (
                f"prompt.template: {template!r} has a positional field {{{field}}}; name a "
                "column instead, e.g. {text}"
            )
        names.append(field.split(".")[0].split("[")[0])
    return names, None


def check_recipe(recipe: Recipe, *, check_input: bool = False) -> list[str]:
    """Every problem this machine can find in ``recipe`` before a run; empty when none."""
    from scheduler.engines import check_model, check_options
    from scheduler.recipe import resolve_input_path

    problems: list[str] = []
    try:
        check_options(recipe)
    except SkybatchError as e:
        problems.append(str(e).removeprefix(f"{recipe.source}: "))

    path = resolve_input_path(recipe)
    remote = "://" in path
    fields: list[str] = []
    if recipe.task == "generate" and recipe.prompt is not None:
        fields, problem = _template_fields(recipe.prompt.template)
        if problem:
            problems.append(problem)
    if remote and not path.startswith(_REMOTE):
        problems.append(
            f"input.path: {path!r}: unknown protocol; use a local path or one of "
            + ", ".join(p.removesuffix("://") for p in _REMOTE)
        )
    elif not remote or check_input:
        problems.extend(_check_input(recipe, path, fields))

    # The model runs here when the input is here; a cloud recipe's worker fetches it.
    if not remote or recipe.model.engine == "python":
        problem = check_model(recipe)
        if problem:
            problems.append(problem)
    return problems


def _check_input(recipe: Recipe, path: str, fields: list[str]) -> list[str]:
    from scheduler.inputs import open_input

    try:
        opened = open_input(recipe.input, path, count_rows=False)
        sample = opened.sample(_SAMPLE_ROWS)
    except SkybatchError as e:
        return [f"input.path: {e}"]
    except Exception as e:  # fsspec and cloud SDKs raise their own kinds
        return [f"input.path: cannot read {path} ({type(e).__name__}: {e})"]
    if not sample or not fields:
        return []
    columns = set().union(*(row.keys() for row in sample))
    return [
        f"prompt.template: names {{{name}}}, which the input has no column for "
        f"(columns: {', '.join(sorted(columns))})"
        for name in dict.fromkeys(fields)
        if name not in columns
    ]
