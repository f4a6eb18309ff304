"""Every bad recipe gets one clear line naming the file and field, and exit code 2."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from scheduler.cli import main

GOOD = """\
name: t
input: {path: data.jsonl, id_column: id}
task: embed
model: {engine: python, name: "mod:fn", batch_size: 8}
"""

# (recipe text, what the one line must contain)
BAD: list[tuple[str, str]] = [
    ("", "the recipe is empty"),
    ("name: [unclosed\n", "invalid YAML at line"),
    ("- just\n- a list\n", "expected a mapping of fields"),
    (GOOD.replace("name: t", "nmae: t"), "nmae: unknown field"),
    (GOOD.replace("name: t\n", ""), "name: required field is missing"),
    (GOOD.replace("task: embed", "task: translate"), "task: Input should be"),
    (
        GOOD.replace("batch_size: 8", "batch_size: -4"),
        "model.batch_size: Input should be greater than 0",
    ),
    (
        GOOD.replace("batch_size: 8", "batch_size: lots"),
        "model.batch_size: Input should be a valid integer",
    ),
    (GOOD.replace("engine: python", "engine: tensorflow"), "model.engine: Input should be"),
    (GOOD.replace('name: "mod:fn"', "name: justamodule"), "module:function"),
    (GOOD.replace("id_column: id", "id_colum: id"), "input.id_colum: unknown field"),
    (
        GOOD.replace(
            "input: {path: data.jsonl, id_column: id}", "input: {path: '', id_column: id}"
        ),
        "input.path: String should have at least 1 character",
    ),
    (GOOD.replace("data.jsonl", "data.jsonl, format: xml"), "input.format: Input should be"),
    (GOOD + "schedule: {deadline: soon}\n", "schedule.deadline: expected a duration"),
    (GOOD + "schedule: {deadline: -2h}\n", "schedule.deadline: expected a duration"),
    (GOOD + "schedule: {spot: sometimes}\n", "schedule.spot: Input should be"),
    (GOOD + "schedule: {budget_usd: 0}\n", "schedule.budget_usd: Input should be greater than 0"),
    (GOOD + "schedule: {max_workers: 0}\n", "schedule.max_workers: Input should be greater than 0"),
    (
        GOOD + "limits: {max_error_rate: 1.5}\n",
        "limits.max_error_rate: Input should be less than or equal to 1",
    ),
    (
        GOOD + "limits: {retries: -1}\n",
        "limits.retries: Input should be greater than or equal to 0",
    ),
    (GOOD + "limits: {shard_timeout: 0}\n", "limits.shard_timeout: must be a positive duration"),
    (
        GOOD + "shards: {rows_per_shard: 0}\n",
        "shards.rows_per_shard: Input should be greater than 0",
    ),
    (GOOD + "prompt: {template: '{text}'}\n", "only task 'generate' takes a prompt"),
    (
        GOOD + "sampling: {temperature: -1}\n",
        "sampling.temperature: Input should be greater than or equal to 0",
    ),
    (GOOD + "sampling: {top_p: 2}\n", "sampling.top_p: Input should be less than or equal to 1"),
    (GOOD.replace("name: t", "name: 'bad name!'"), "name: String should match pattern"),
    (GOOD + "extra_top_level: 1\n", "extra_top_level: unknown field"),
    (
        GOOD.replace(
            'engine: python, name: "mod:fn"', "engine: torch, name: m, options: {normalise: true}"
        ),
        "model.options.normalise: unknown option for the torch engine",
    ),
]


@pytest.mark.parametrize(("text", "expected"), BAD, ids=[e for _, e in BAD])
def test_bad_recipe_is_one_line_and_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], text: str, expected: str
) -> None:
    recipe = tmp_path / "bad.yaml"
    recipe.write_text(text)
    with pytest.raises(SystemExit) as exc:
        main(["validate", str(recipe)])
    assert exc.value.code == 2
    err = capsys.readouterr().err
    lines = err.strip().splitlines()
    # Every problem on its own line, each naming the file; the first is the one pinned.
    assert all(line.startswith(f"skybatch: error: {recipe}:") for line in lines), err
    assert expected in lines[0]
    assert "more problem" not in err
    assert "Traceback" not in err


def test_missing_recipe_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["validate", str(tmp_path / "nope.yaml")])
    assert exc.value.code == 2
    assert "recipe file not found" in capsys.readouterr().err


def test_run_rejects_bad_recipe_too(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    recipe = tmp_path / "bad.yaml"
    recipe.write_text(GOOD.replace("task: embed", "tsk: embed"))
    with pytest.raises(SystemExit) as exc:
        main(["run", str(recipe), "--json"])
    assert exc.value.code == 2
    captured = capsys.readouterr()
    # --json always answers: the error object on stdout, the line on stderr.
    assert json.loads(captured.out)["exit_code"] == 2
    assert "tsk: unknown field" in json.loads(captured.out)["error"]
    assert "tsk: unknown field" in captured.err


def test_good_recipe_validates(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    recipe = tmp_path / "good.yaml"
    recipe.write_text(GOOD)
    (tmp_path / "data.jsonl").write_text('{"id": "a", "text": "hi"}\n')
    (tmp_path / "mod.py").write_text("def fn(rows):\n    return [{} for r in rows]\n")
    monkeypatch.chdir(tmp_path)  # the python engine imports a module from the current folder
    main(["validate", str(recipe)])
    assert "ok (embed with python:mod:fn)" in capsys.readouterr().out


def test_shipped_recipes_validate(repo: Path, capsys: pytest.CaptureFixture[str]) -> None:
    recipes = sorted((repo / "recipes").glob("*.yaml"))
    assert any(r.name == "embed-minilm.yaml" for r in recipes)
    for recipe in recipes:
        main(["validate", str(recipe)])
    assert capsys.readouterr().out.count(": ok (") == len(recipes)
