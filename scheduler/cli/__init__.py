"""The ``skybatch`` command line.

Each command group lives in its own module (``_run``, ``_plan``, ``_launch``, ``_tui``,
``_pricing``, ``_bench``, ``_verify``), imported only when its command is looked up (``COMMAND_MODULES``
in ``_common``), and imports heavy dependencies (torch, sky, duckdb, textual) inside the
command that needs them, so ``skybatch --help`` loads none of them.

Errors are turned into one stderr line and an exit code here, at the edge: see
:mod:`scheduler.errors` for the codes. ``--debug`` (or ``SKYBATCH_DEBUG=1``) shows tracebacks.
"""

from __future__ import annotations

import importlib
import sys

from scheduler.cli._common import COMMAND_MODULES, cli

__all__ = ["cli", "main"]


def _register() -> None:
    """Attach every command to ``cli`` now (``main`` imports each command's module only
    when the command is looked up; tests that walk ``cli.commands`` call this)."""
    for module in sorted(set(COMMAND_MODULES.values())):
        importlib.import_module(f"scheduler.cli.{module}")


def main(argv: list[str] | None = None) -> None:
    """Entry point of the console script (the error and ``--json`` edge is in ``_edge``)."""
    from scheduler.cli._edge import run_edge

    code = run_edge(cli, argv)
    if code:
        sys.exit(code)
