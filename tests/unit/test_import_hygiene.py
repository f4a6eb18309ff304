"""The worker side must import fast and light: it is what runs on the GPU machine."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

HEAVY = ("textual", "sky", "vllm", "duckdb", "torch", "pricing", "tui", "transformers")

PROBE = """
import json, sys
import {module}
print(json.dumps(sorted(m for m in sys.modules if m.split(".")[0] in {heavy!r})))
"""


@pytest.mark.parametrize(
    "module",
    [
        "scheduler.worker",
        "scheduler.store",
        "scheduler.engines",
        "scheduler.inputs",
    ],
)
def test_worker_side_loads_nothing_heavy(module: str) -> None:
    out = subprocess.run(
        [sys.executable, "-c", PROBE.format(module=module, heavy=HEAVY)],
        capture_output=True,
        text=True,
        check=True,
    )
    assert json.loads(out.stdout) == []


def test_cli_help_loads_nothing_heavy() -> None:
    code = (
        "import sys\n"
        "from scheduler.cli import _register, cli\n"
        "_register()\n"
        "try:\n"
        "    cli.main(['--help'], standalone_mode=False)\n"
        "except SystemExit:\n"
        "    pass\n"
        f"print(sorted(m for m in sys.modules if m.split('.')[0] in {HEAVY!r}))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip().splitlines()[-1] == "[]"
