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


# What `skybatch --help` must not pay for: start-up is the first thing a user measures.
STARTUP_HEAVY = (*HEAVY, "pydantic", "yaml", "pyarrow", "fsspec", "rich")


@pytest.mark.parametrize("argv", [["--help"], ["plan", "--help"], ["launch", "--help"]])
def test_cli_help_loads_nothing_heavy(argv: list[str]) -> None:
    code = (
        "import sys\n"
        "from scheduler.cli import main\n"
        "try:\n"
        f"    main({argv!r})\n"
        "except SystemExit:\n"
        "    pass\n"
        f"print(sorted(m for m in sys.modules if m.split('.')[0] in {STARTUP_HEAVY!r}))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert "Usage:" in out.stdout
    assert out.stdout.strip().splitlines()[-1] == "[]"


def test_scheduler_package_resolves_recipe_names_lazily() -> None:
    code = (
        "import sys, scheduler\n"
        "before = 'pydantic' in sys.modules\n"
        "print(before, scheduler.load_recipe.__module__, scheduler.Recipe.__name__)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False", "scheduler.recipe", "Recipe"]


def test_a_command_imports_its_own_module_only() -> None:
    code = (
        "import sys\n"
        "from scheduler.cli import main\n"
        "try:\n"
        "    main(['plan', '--help'])\n"
        "except SystemExit:\n"
        "    pass\n"
        "print(sorted(m for m in sys.modules if m.startswith('scheduler.cli._')))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    loaded = out.stdout.strip().splitlines()[-1]
    assert loaded == "['scheduler.cli._common', 'scheduler.cli._edge', 'scheduler.cli._plan']"


def test_the_command_table_names_the_module_of_every_command() -> None:
    from scheduler.cli import _register, cli
    from scheduler.cli._common import COMMAND_MODULES

    _register()
    where = {name: cmd.callback.__module__ for name, cmd in cli.commands.items() if cmd.callback}
    assert where == {name: f"scheduler.cli.{m}" for name, m in COMMAND_MODULES.items()}
