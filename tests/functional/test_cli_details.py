"""CLI details a new user trips over: --debug anywhere, run-id help, unknown run ids,
durations, long refresh lists."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from scheduler.cli import _register, cli, main
from scheduler.store import RunStore, make_run_id

_register()


def _cli(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "scheduler.cli", *args],
        cwd=cwd, capture_output=True, text=True, timeout=120, env=os.environ.copy(),
    )  # fmt: skip


def test_debug_is_in_the_help_and_works_after_the_command(tmp_path: Path) -> None:
    help_text = _cli("--help", cwd=tmp_path).stdout
    assert "--debug" in help_text
    after = _cli("status", "no-such-run", "--debug", cwd=tmp_path)
    assert "Traceback" in after.stderr  # --debug after the command shows the traceback
    assert "UsageError: no run 'no-such-run'" in after.stderr
    plain = _cli("status", "no-such-run", cwd=tmp_path)
    assert "Traceback" not in plain.stderr


@pytest.mark.parametrize("name", ["status", "results", "watch", "cancel"])
def test_store_help_on_run_id_commands_does_not_talk_about_a_recipe(name: str) -> None:
    command = cli.commands[name]
    store = next(p for p in command.params if p.name == "store_url")
    assert isinstance(store, __import__("click").Option)
    assert "recipe" not in (store.help or "")
    assert "holds the run" in (store.help or "")


def _make_run(root: Path, name: str) -> str:
    run_id = make_run_id(name, fingerprint="f", model="m", revision=None, recipe_digest="d")
    store = RunStore(str(root), run_id)
    store.fs.makedirs(store.path(""), exist_ok=True)
    store.fs.pipe_file(store.path("run.json"), b'{"recipe": {"name": "%s"}}' % name.encode())
    return run_id


def test_an_unknown_run_id_is_exit_2_with_did_you_mean(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run_id = _make_run(tmp_path / "runs", "embed-minilm")
    typo = run_id[:-2] + ("zz" if not run_id.endswith("zz") else "yy")
    with pytest.raises(SystemExit) as exc:
        main(["status", typo, "--store", str(tmp_path / "runs")])
    assert exc.value.code == 2
    err = capsys.readouterr().err.strip()
    assert err == (
        f"skybatch: error: no run {typo!r} in {tmp_path / 'runs'}: did you mean {run_id!r}?"
    )
    with pytest.raises(SystemExit) as exc:
        main(["results", "embed-minilm", "--store", str(tmp_path / "runs")])
    assert exc.value.code == 2
    assert f"did you mean {run_id!r}?" in capsys.readouterr().err


def test_every_command_is_in_the_readme() -> None:
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    for name in cli.commands:
        assert re.search(rf"skybatch\s+{name}\b", readme), f"`skybatch {name}` is not in the README"
