"""The ``skybatch`` command line.

Each command group lives in its own module (``_run``, ``_plan``, ``_launch``, ``_tui``) and
imports heavy dependencies (torch, sky, duckdb, textual) inside the command that needs them,
so ``skybatch --help`` stays well under a second.

Errors are turned into one stderr line and an exit code here, at the edge: see
:mod:`scheduler.errors` for the codes. ``--debug`` (or ``SKYBATCH_DEBUG=1``) shows tracebacks.
"""

from __future__ import annotations

import sys

from scheduler.cli._common import cli

__all__ = ["cli", "main"]


def _register() -> None:
    # Importing the modules attaches their commands to ``cli``.
    from scheduler.cli import _run, _verify  # noqa: F401

    for name in ("_plan", "_launch", "_tui", "_pricing"):
        try:
            __import__(f"scheduler.cli.{name}")
        except ModuleNotFoundError as e:
            if e.name != f"scheduler.cli.{name}":
                raise


def main(argv: list[str] | None = None) -> None:
    """Entry point of the console script (the error and ``--json`` edge is in ``_edge``)."""
    from scheduler.cli._edge import run_edge

    _register()
    code = run_edge(cli, argv)
    if code:
        sys.exit(code)
