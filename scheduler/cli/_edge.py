"""The CLI's edge: every way a command can end becomes one exit code and, with ``--json``,
exactly one JSON object on stdout.

A script that passed ``--json`` must be able to ``json.loads`` stdout whatever happened:
a bad recipe, a missing run, Ctrl-C, a bug. So the edge

- takes ``--debug`` wherever it stands on the command line (before or after the command);
- with ``--json``, points file descriptor 1 at stderr for the command's duration (what
  SkyPilot, a progress bar or a child process prints reaches the user, not the parser)
  and keeps the real stdout for :func:`scheduler.cli._common.emit_json` alone;
- turns an error into one ``skybatch: error: …`` line on stderr and, with ``--json`` and
  when the command printed nothing yet, ``{"error": …, "exit_code": N}`` on stdout.
"""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Iterator
from typing import TextIO

import click

from scheduler.cli import _common
from scheduler.errors import SkybatchError

__all__ = ["run_edge"]


def _split_flags(args: list[str]) -> tuple[list[str], bool, bool]:
    """``args`` without ``--debug``, whether it was given, and whether ``--json`` was."""
    head, tail = (
        (args[: args.index("--")], args[args.index("--") :]) if "--" in args else (args, [])
    )
    debug = "--debug" in head
    as_json = "--json" in head
    return [a for a in head if a != "--debug"] + tail, debug, as_json


@contextlib.contextmanager
def _stdout_for_json_only() -> Iterator[None]:
    """Send everything but :func:`emit_json` to stderr, down to the file descriptor."""
    try:
        sys.stdout.flush()
        fd = sys.stdout.fileno()
    except (AttributeError, OSError, ValueError):  # an in-memory stdout (tests)
        real = sys.stdout
        _common.set_json_stream(real)
        try:
            with contextlib.redirect_stdout(sys.stderr):
                yield
        finally:
            _common.set_json_stream(None)
        return
    saved = os.dup(fd)
    os.dup2(sys.stderr.fileno(), fd)
    json_out: TextIO = os.fdopen(os.dup(saved), "w", encoding="utf-8", closefd=True)
    _common.set_json_stream(json_out)
    try:
        yield
    finally:
        with contextlib.suppress(Exception):
            sys.stdout.flush()
        _common.set_json_stream(None)
        json_out.close()
        os.dup2(saved, fd)
        os.close(saved)


def _fail(message: str, code: int, *, as_json: bool, problems: list[str] | None = None) -> int:
    """One line on stderr per problem; with ``--json`` the error object on stdout."""
    if problems and len(problems) > 1:
        for line in problems:
            click.echo(f"skybatch: error: {line}", err=True)
    else:
        click.echo(message, err=True)
    if as_json and not _common.json_emitted():
        text = message.removeprefix("skybatch: ").removeprefix("error: ")
        extra = {"problems": problems} if problems and len(problems) > 1 else {}
        _common.emit_json({"error": text, **extra, "exit_code": code})
    return code


def _invoke(group: click.Group, args: list[str], *, debug: bool, as_json: bool) -> int:
    try:
        rc = group.main(args=args, prog_name="skybatch", standalone_mode=False)
    except SkybatchError as e:
        if debug:
            raise
        problems = getattr(e, "problems", None)
        return _fail(f"skybatch: error: {e}", e.exit_code, as_json=as_json, problems=problems)
    except click.exceptions.Abort:
        return _fail("skybatch: interrupted", 130, as_json=as_json)
    except click.exceptions.Exit as e:
        return int(e.exit_code)
    except click.ClickException as e:
        if as_json:
            return _fail(f"skybatch: error: {e.format_message()}", e.exit_code, as_json=True)
        e.show()
        return e.exit_code
    except KeyboardInterrupt:
        return _fail("skybatch: interrupted", 130, as_json=as_json)
    except SystemExit as e:
        code = e.code if isinstance(e.code, int) else (0 if e.code is None else 1)
        if code and as_json and not _common.json_emitted():
            return _fail(f"skybatch: error: exit {code}", code, as_json=True)
        return code
    except Exception as e:
        if debug:
            raise
        return _fail(
            f"skybatch: internal error: {type(e).__name__}: {e} (rerun with --debug for details)",
            1,
            as_json=as_json,
        )
    # standalone_mode=False returns ctx.exit()'s code instead of raising it.
    return rc if isinstance(rc, int) else 0


def run_edge(group: click.Group, argv: list[str] | None) -> int:
    """Run the command line ``argv`` (default: ``sys.argv[1:]``); returns the exit code."""
    args, debug_flag, as_json = _split_flags(list(sys.argv[1:] if argv is None else argv))
    debug = debug_flag or os.environ.get("SKYBATCH_DEBUG") == "1"
    if debug:
        os.environ["SKYBATCH_DEBUG"] = "1"  # the root group's --debug is gone from args
    _common.reset_json()
    if not as_json:
        return _invoke(group, args, debug=debug, as_json=False)
    with _stdout_for_json_only():
        return _invoke(group, args, debug=debug, as_json=True)
