"""`skybatch validate` checks what can be known before a run, and lists every problem."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest


def _cli(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "scheduler.cli", *args],
        cwd=cwd, capture_output=True, text=True, timeout=120, env=os.environ.copy(),
    )  # fmt: skip


def _write(tmp: Path, recipe: str) -> Path:
    (tmp / "in.jsonl").write_text('{"id": "a", "text": "hello", "title": "Hi"}\n')
    (tmp / "fn.py").write_text("def f(rows):\n    return [{'n': 1} for r in rows]\n")
    path = tmp / "recipe.yaml"
    path.write_text(recipe)
    return path


BROKEN = """\
name: broken
input: {path: missing.jsonl, id_column: id}
task: generate
model: {engine: torch, name: acme/no-such-model}
prompt: {template: "Summarise {missing_field"}
"""


def test_every_problem_is_listed_one_line_each(tmp_path: Path) -> None:
    _write(tmp_path, BROKEN)
    proc = _cli("validate", "recipe.yaml", cwd=tmp_path)
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert lines == [
        "skybatch: error: recipe.yaml: prompt.template: 'Summarise {missing_field' does not "
        "parse (expected '}' before end of string); write fields as {column}",
        "skybatch: error: recipe.yaml: input.path: input not found: missing.jsonl; check "
        "input.path (a relative path is looked up from the current directory, then beside "
        "the recipe)",
        "skybatch: error: recipe.yaml: model.name: 'acme/no-such-model' is not in the Hugging "
        "Face cache and local workers start offline; download it once (huggingface-cli "
        "download acme/no-such-model) or allow downloads with HF_HUB_OFFLINE=0",
    ]
    assert proc.stdout == "" and "Traceback" not in proc.stderr
    assert not (tmp_path / "runs").exists()  # nothing was created
    as_json = _cli("validate", "recipe.yaml", "--json", cwd=tmp_path)
    data = json.loads(as_json.stdout)
    assert data["exit_code"] == 2 and len(data["problems"]) == 3


def test_the_template_must_name_columns_the_input_has(tmp_path: Path) -> None:
    _write(
        tmp_path,
        BROKEN.replace("missing.jsonl", "in.jsonl")
        .replace("torch, name: acme/no-such-model", 'python, name: "fn.py:f"')
        .replace("Summarise {missing_field", "{title}: {body}"),
    )
    proc = _cli("validate", "recipe.yaml", cwd=tmp_path)
    assert proc.returncode == 2
    assert proc.stderr.strip() == (
        "skybatch: error: recipe.yaml: prompt.template: names {body}, which the input has no "
        "column for (columns: id, text, title)"
    )


def test_a_python_function_must_import(tmp_path: Path) -> None:
    _write(
        tmp_path,
        "name: py\ninput: {path: in.jsonl, id_column: id}\ntask: score\n"
        'model: {engine: python, name: "fn.py:nope"}\n',
    )
    proc = _cli("validate", "recipe.yaml", cwd=tmp_path)
    assert proc.returncode == 2
    assert "model.name: 'fn.py:nope': fn.py has no attribute 'nope'" in proc.stderr


def test_a_model_path_must_exist(tmp_path: Path) -> None:
    _write(
        tmp_path,
        "name: p\ninput: {path: in.jsonl, id_column: id}\ntask: embed\n"
        "model: {engine: torch, name: ./models/mine}\n",
    )
    proc = _cli("validate", "recipe.yaml", cwd=tmp_path)
    assert proc.returncode == 2
    assert "model.name: './models/mine' does not exist" in proc.stderr


@pytest.mark.parametrize("allowed", ["0", "false"])
def test_allowing_downloads_accepts_a_hub_id(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, allowed: str
) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", allowed)
    _write(
        tmp_path,
        "name: hub\ninput: {path: in.jsonl, id_column: id}\ntask: embed\n"
        "model: {engine: torch, name: acme/some-model}\n",
    )
    proc = _cli("validate", "recipe.yaml", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "recipe.yaml: ok (embed with torch:acme/some-model)" in proc.stdout


def test_a_remote_input_is_checked_for_shape_unless_asked(tmp_path: Path) -> None:
    missing = (tmp_path / "elsewhere" / "rows.jsonl").as_uri()
    _write(
        tmp_path,
        f"name: remote\ninput: {{path: '{missing}', id_column: id}}\ntask: score\n"
        'model: {engine: python, name: "fn.py:f"}\n',
    )
    assert _cli("validate", "recipe.yaml", cwd=tmp_path).returncode == 0
    checked = _cli("validate", "recipe.yaml", "--check-input", cwd=tmp_path)
    assert checked.returncode == 2
    assert "input.path: " in checked.stderr and "not found" in checked.stderr
    (tmp_path / "recipe.yaml").write_text(
        (tmp_path / "recipe.yaml").read_text().replace("file://", "s4://")
    )
    typo = _cli("validate", "recipe.yaml", cwd=tmp_path)
    assert typo.returncode == 2 and "unknown protocol" in typo.stderr
