"""``--json`` always answers: exactly one JSON object on stdout on every exit, errors too.

A script parses stdout whatever happened, so a failing command prints
``{"error": ..., "exit_code": N}`` there (and its one line on stderr), and what anything
else prints (SkyPilot, a child process, a progress bar) goes to stderr.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest


def _cli(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "scheduler.cli", *args],
        cwd=cwd, capture_output=True, text=True, timeout=120, env=os.environ.copy(),
    )  # fmt: skip


def _one_object(stdout: str) -> dict[str, object]:
    lines = [line for line in stdout.splitlines() if line.strip()]
    assert len(lines) == 1, stdout
    obj = json.loads(lines[0])
    assert isinstance(obj, dict)
    return obj


# (command line, exit code, words the error must contain)
FAILURES = [
    (["validate", "missing.yaml", "--json"], 2, "recipe file not found"),
    (["run", "missing.yaml", "--json"], 2, "recipe file not found"),
    (["status", "no-such-run", "--json"], 2, "no run 'no-such-run'"),
    (["results", "no-such-run", "--json"], 2, "no run 'no-such-run'"),
    (["plan", "missing.yaml", "--json"], 2, "recipe file not found"),
    (["launch", "missing.yaml", "--json"], 2, "recipe file not found"),
    (["cancel", "no-such-run", "--json"], 2, "no run 'no-such-run'"),
    (["run", "--json", "--no-such-flag", "x.yaml"], 2, "No such option: --no-such-flag"),
]


@pytest.mark.parametrize(
    ("args", "code", "words"), FAILURES, ids=[" ".join(a) for a, _, _ in FAILURES]
)
def test_a_failing_command_still_prints_one_json_object(
    tmp_path: Path, args: list[str], code: int, words: str
) -> None:
    proc = _cli(*args, cwd=tmp_path)
    assert proc.returncode == code, proc.stderr
    obj = _one_object(proc.stdout)
    assert obj["exit_code"] == code
    assert words in str(obj["error"])
    assert words in proc.stderr  # the person at the terminal reads it too
    assert "Traceback" not in proc.stderr


def test_what_others_print_under_json_goes_to_stderr(tmp_path: Path) -> None:
    # A command whose child process and library both print on stdout (as SkyPilot's
    # catalog fetch does): the edge sends that to stderr and keeps stdout for the object.
    script = textwrap.dedent(
        """
        import subprocess, sys, click
        from scheduler.cli._common import emit_json
        from scheduler.cli._edge import run_edge

        @click.group()
        def g() -> None: ...

        @g.command()
        @click.option("--json", "as_json", is_flag=True)
        def noisy(as_json: bool) -> None:
            print("payload line from a library")
            subprocess.run(["echo", "payload line from a child"], check=True)
            emit_json({"ok": True})

        sys.exit(run_edge(g, sys.argv[1:]))
        """
    )
    proc = subprocess.run(
        [sys.executable, "-c", script, "noisy", "--json"],
        capture_output=True, text=True, timeout=60, env=os.environ.copy(),
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert _one_object(proc.stdout) == {"ok": True}
    assert "payload line from a library" in proc.stderr
    assert "payload line from a child" in proc.stderr


def test_a_command_that_answered_then_failed_prints_no_second_object(tmp_path: Path) -> None:
    script = textwrap.dedent(
        """
        import sys, click
        from scheduler.cli._common import emit_json
        from scheduler.cli._edge import run_edge
        from scheduler.errors import BudgetError

        @click.group()
        def g() -> None: ...

        @g.command()
        @click.option("--json", "as_json", is_flag=True)
        def over(as_json: bool) -> None:
            emit_json({"state": "done"})
            raise BudgetError("over budget")

        sys.exit(run_edge(g, sys.argv[1:]))
        """
    )
    proc = subprocess.run(
        [sys.executable, "-c", script, "over", "--json"],
        capture_output=True, text=True, timeout=60, env=os.environ.copy(),
    )  # fmt: skip
    assert proc.returncode == 6
    assert _one_object(proc.stdout) == {"state": "done"}
    assert "over budget" in proc.stderr
