"""The python engine: loading ``module:function`` / ``file.py:function`` and checking results."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from scheduler.engines import create_engine
from scheduler.engines.base import Engine, RowFailure
from scheduler.engines.python import PythonEngine
from scheduler.errors import EngineError
from scheduler.recipe import Recipe, recipe_from_dict

FUNCS = Path(__file__).resolve().parents[1] / "fixtures" / "pyengine_funcs.py"


@pytest.fixture(autouse=True)
def _isolated_imports(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """The engine puts folders on sys.path and modules in sys.modules; undo that per test."""
    monkeypatch.setattr(sys, "path", list(sys.path))
    before = set(sys.modules)
    yield
    for name in set(sys.modules) - before:
        if name.startswith(("skybatch_user_", "my_udf_mod")):
            del sys.modules[name]


def _recipe(name: str, options: dict[str, Any] | None = None, source: str | None = None) -> Recipe:
    data = {
        "name": "py",
        "input": {"path": "rows.jsonl"},
        "task": "classify",
        "model": {"engine": "python", "name": name, "options": options or {}},
    }
    recipe = recipe_from_dict(data)
    return recipe.model_copy(update={"source": source}) if source else recipe


def _rows(*texts: str) -> list[dict[str, Any]]:
    return [{"id": f"r{i}", "text": t, "lang": "en"} for i, t in enumerate(texts)]


def test_file_function_runs_with_options_and_keeps_rows_untouched() -> None:
    engine = PythonEngine(_recipe(f"{FUNCS}:shout", {"suffix": "?"}))
    rows = _rows("hi", "there")
    assert engine.infer(rows) == [{"loud": "HI?", "chars": 2}, {"loud": "THERE?", "chars": 5}]
    assert rows[0]["text"] == "hi"  # the function mutated its copy only
    assert isinstance(engine, Engine)


def test_error_key_marks_only_that_row_failed() -> None:
    engine = PythonEngine(_recipe(f"{FUNCS}:shout"))
    results = engine.infer(_rows("fine", "a bad one", "ok"))
    assert results[0] == {"loud": "FINE!", "chars": 4}
    assert results[1] == RowFailure("refused row r1")
    assert results[2] == {"loud": "OK!", "chars": 2}


def test_module_form_imports_from_the_current_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "my_udf_mod.py").write_text(
        "def lengths(rows):\n    return [{'n': len(r['text'])} for r in rows]\n"
    )
    monkeypatch.chdir(tmp_path)
    engine = create_engine(_recipe("my_udf_mod:lengths"))
    assert engine.infer(_rows("abc", "")) == [{"n": 3}, {"n": 0}]
    described = engine.describe()
    assert described["engine"] == "python"
    assert described["model"] == "my_udf_mod:lengths"
    assert described["revision"].startswith("local-")
    assert described["accelerator"] == "cpu"


def test_relative_file_is_found_beside_the_recipe(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "udf.py").write_text("def one(rows):\n    return [{'one': 1} for _ in rows]\n")
    monkeypatch.chdir(FUNCS.parent)  # somewhere without udf.py
    engine = PythonEngine(_recipe("udf.py:one", source=str(tmp_path / "recipe.yaml")))
    assert engine.infer(_rows("x")) == [{"one": 1}]


def test_dotted_attribute_and_kwargs_catch_all() -> None:
    engine = PythonEngine(_recipe(f"{FUNCS}:Tagger.tag", {"tag": "news"}))
    assert engine.infer(_rows("a")) == [{"tag": "news", "id_seen": "r0"}]


def test_pinned_revision_is_reported() -> None:
    recipe = _recipe(f"{FUNCS}:shout")
    recipe = recipe.model_copy(
        update={"model": recipe.model.model_copy(update={"revision": "v1.2"})}
    )
    assert PythonEngine(recipe).describe()["revision"] == "v1.2"


def test_wrong_length_names_the_function() -> None:
    engine = PythonEngine(_recipe(f"{FUNCS}:drop_last"))
    with pytest.raises(EngineError, match=r"drop_last returned 2 results for 3 rows"):
        engine.infer(_rows("a", "b", "c"))


def test_non_dict_item_is_refused() -> None:
    engine = PythonEngine(_recipe(f"{FUNCS}:strings"))
    with pytest.raises(EngineError, match=r"strings returned a str at position 0 \('a'\)"):
        engine.infer(_rows("a"))


def test_non_list_result_is_refused() -> None:
    engine = PythonEngine(_recipe(f"{FUNCS}:a_dict"))
    with pytest.raises(EngineError, match=r"a_dict returned dict .* must return a list of 1 dicts"):
        engine.infer(_rows("a"))


def test_missing_module_says_what_to_do(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    with pytest.raises(EngineError, match=r"cannot import module 'no_such_udf_mod' .* file path"):
        PythonEngine(_recipe("no_such_udf_mod:f"))


def test_module_that_raises_on_import_is_reported(tmp_path: Path) -> None:
    broken = tmp_path / "broken.py"
    broken.write_text("raise RuntimeError('weights missing')\n")
    with pytest.raises(
        EngineError, match=r"importing .*broken.py' failed \(RuntimeError: weights missing\)"
    ):
        PythonEngine(_recipe(f"{broken}:f"))


def test_missing_file_missing_attribute_and_not_callable() -> None:
    with pytest.raises(EngineError, match=r"file nowhere/udf.py not found"):
        PythonEngine(_recipe("nowhere/udf.py:f"))
    with pytest.raises(EngineError, match=r"has no attribute 'nope'"):
        PythonEngine(_recipe(f"{FUNCS}:nope"))
    with pytest.raises(EngineError, match=r"NOT_CALLABLE is a int, not a function"):
        PythonEngine(_recipe(f"{FUNCS}:NOT_CALLABLE"))


def test_option_the_function_cannot_take_is_refused_at_load() -> None:
    with pytest.raises(
        EngineError, match=r"model.options.colour: .*shout takes no keyword argument"
    ):
        PythonEngine(_recipe(f"{FUNCS}:shout", {"colour": "red"}))
