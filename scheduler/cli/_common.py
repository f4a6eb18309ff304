"""Shared pieces of the CLI: the root group, JSON output, recipe loading and run look-up."""

from __future__ import annotations

import difflib
import importlib
import json
import sys
from typing import TYPE_CHECKING, Any, TextIO

import click

from scheduler.errors import UsageError

if TYPE_CHECKING:
    from scheduler.recipe import Recipe
    from scheduler.store import RunStore

__all__ = [
    "COMMAND_MODULES",
    "cli",
    "emit_json",
    "json_emitted",
    "open_run",
    "read_recipe",
    "recipe_argument",
    "reset_json",
    "resolve_store_url",
    "run_store_option",
    "set_json_stream",
]

# Where emit_json writes (the edge points it at the real stdout under --json) and whether
# it has written: the edge adds an error object only when the command printed none.
_json_stream: TextIO | None = None
_json_count = 0


# Which module defines each command, so `skybatch plan` imports the plan command's module
# alone (tests/unit/test_import_hygiene.py checks this table against the modules).
COMMAND_MODULES = {
    "validate": "_run", "run": "_run", "status": "_run", "results": "_run",
    "verify": "_verify", "plan": "_plan", "launch": "_launch", "watch": "_launch",
    "cancel": "_launch", "tui": "_tui", "pricing": "_pricing", "bench": "_bench",
}  # fmt: skip


class _LazyGroup(click.Group):
    """The root group: a command's module is imported when the command is looked up."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(set(super().list_commands(ctx)) | set(COMMAND_MODULES))

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        module = COMMAND_MODULES.get(cmd_name)
        if module is not None and cmd_name not in self.commands:
            importlib.import_module(f"scheduler.cli.{module}")  # its decorators register it
        return super().get_command(ctx, cmd_name)


@click.group(
    cls=_LazyGroup,
    context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100},
)
@click.option("--debug", is_flag=True, help="Show tracebacks (anywhere on the command line).")
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
    global _json_count
    out = _json_stream or sys.stdout
    out.write(json.dumps(obj, sort_keys=False, default=str) + "\n")
    out.flush()
    _json_count += 1


def set_json_stream(stream: TextIO | None) -> None:
    """Send :func:`emit_json` to ``stream`` (None: ``sys.stdout``)."""
    global _json_stream
    _json_stream = stream


def reset_json() -> None:
    """Forget earlier objects (one command line, one object)."""
    global _json_count
    _json_count = 0


def json_emitted() -> bool:
    """Whether the command has printed its JSON object."""
    return _json_count > 0


run_store_option = click.option(
    "--store", "store_url", default=None, metavar="PATH|URL",
    help="Run store that holds the run (default: SKYBATCH_STORE, or ./runs).",
)  # fmt: skip


def resolve_store_url(url: str | None) -> str:
    """The run store of a command without a recipe (:mod:`scheduler.settings`: ``--store``,
    ``SKYBATCH_STORE``, the config file, ``./runs``), normalised."""
    from scheduler.settings import load_settings

    return load_settings().store_url(url)


def open_run(run_id: str, url: str | None) -> RunStore:
    """The run ``run_id`` in the store; an unknown id is a usage error (exit 2) that names
    the closest run ids in the store."""
    from scheduler.errors import StoreError
    from scheduler.store import RunStore, iter_runs

    root = resolve_store_url(url)
    try:
        store = RunStore(root, run_id)
    except StoreError as e:
        raise UsageError(str(e)) from e
    if store.exists():
        return store
    try:
        known = list(iter_runs(root))
    except StoreError:
        known = []
    close = difflib.get_close_matches(run_id, known, n=3, cutoff=0.5)
    if not close:  # a prefix of a run id ("embed-minilm") is the common slip
        close = [k for k in known if k.startswith(run_id)][:3]
    hint = (
        f"did you mean {' or '.join(repr(c) for c in close)}?"
        if close
        else (f"{len(known)} run(s) there: `skybatch status --store {root}` lists them"
              if known else "the store holds no runs; --store names another")
    )  # fmt: skip
    raise UsageError(f"no run {run_id!r} in {root}: {hint}")
