"""Every command has help with an example (the sqlite-utils habit)."""

from __future__ import annotations

import click
import pytest

from scheduler.cli import _register, cli

_register()


def _commands(group: click.Group, prefix: str = "") -> list[tuple[str, click.Command]]:
    found: list[tuple[str, click.Command]] = []
    for name, command in sorted(group.commands.items()):
        found.append((prefix + name, command))
        if isinstance(command, click.Group):
            found.extend(_commands(command, prefix + name + " "))
    return found


COMMANDS = _commands(cli)


def test_core_commands_exist() -> None:
    names = {name for name, _ in COMMANDS}
    assert {"validate", "run", "status", "results"} <= names


@pytest.mark.parametrize(("name", "command"), COMMANDS, ids=[n for n, _ in COMMANDS])
def test_command_has_help_with_an_example(name: str, command: click.Command) -> None:
    assert command.help, f"skybatch {name} has no help"
    if not isinstance(command, click.Group):
        assert "Example" in command.help, f"skybatch {name} help shows no example"
        assert "skybatch " in command.help
