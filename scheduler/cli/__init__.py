"""The ``skybatch`` command line.

Each command group lives in its own module (``_run``, ``_plan``, ``_launch``, ``_tui``) and
imports heavy dependencies (torch, sky, duckdb, textual) inside the command that needs them,
so ``skybatch --help`` stays well under a second.

Errors are turned into one stderr line and an exit code here, at the edge: see
:mod:`scheduler.errors` for the codes. ``--debug`` (or ``SKYBATCH_DEBUG=1``) shows tracebacks.
"""

from __future__ import annotations

import os
import sys

import click

from scheduler.cli._common import cli
from scheduler.errors import SkybatchError

__all__ = ["cli", "main"]


def _register() -> None:
    # Importing the modules attaches their commands to ``cli``.
    from scheduler.cli import _run  # noqa: F401

    for name in ("_plan", "_launch", "_tui", "_pricing"):
        try:
            __import__(f"scheduler.cli.{name}")
        except ModuleNotFoundError as e:
            if e.name != f"scheduler.cli.{name}":
                raise


def main(argv: list[str] | None = None) -> None:
    """Entry point of the console script."""
    _register()
    debug = os.environ.get("SKYBATCH_DEBUG") == "1" or "--debug" in (argv or sys.argv[1:])
    try:
        cli.main(args=argv, prog_name="skybatch", standalone_mode=False)
    except SkybatchError as e:
        if debug:
            raise
        click.echo(f"skybatch: error: {e}", err=True)
        sys.exit(e.exit_code)
    except click.exceptions.Abort:
        click.echo("skybatch: aborted", err=True)
        sys.exit(130)
    except click.exceptions.Exit as e:
        sys.exit(e.exit_code)
    except click.ClickException as e:
        e.show()
        sys.exit(e.exit_code)
    except KeyboardInterrupt:
        click.echo("skybatch: interrupted", err=True)
        sys.exit(130)
    except Exception as e:
        if debug:
            raise
        click.echo(
            f"skybatch: internal error: {type(e).__name__}: {e} (rerun with --debug for details)",
            err=True,
        )
        sys.exit(1)
