"""One launch opens, counts and fingerprints its input once (plan, run id, run creation).

The input lives on a counting in-memory filesystem registered with fsspec (the seam every
input goes through), so the test sees how often each launch step reads the file.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, ClassVar

import fsspec
import pytest
from fsspec.implementations.memory import MemoryFileSystem

from scheduler.inputs import open_input
from scheduler.launch import LaunchRequest, launch
from scheduler.recipe import load_recipe


class CountingFS(MemoryFileSystem):
    """An in-memory filesystem that counts the files opened for reading."""

    protocol = "countmem"
    store: ClassVar[dict[str, Any]] = {}
    pseudo_dirs: ClassVar[list[str]] = [""]
    opens = 0

    def _open(self, path: str, mode: str = "rb", **kwargs: Any) -> Any:
        if "r" in mode:
            CountingFS.opens += 1
        return super()._open(path, mode, **kwargs)


@pytest.fixture
def counted_input(tmp_path: Path) -> Path:
    fsspec.register_implementation("countmem", CountingFS, clobber=True)
    CountingFS.store.clear()
    rows = "".join(json.dumps({"id": f"d{i}", "text": f"sentence {i}"}) + "\n" for i in range(50))
    with fsspec.open("countmem://in/docs.jsonl", "w") as f:
        f.write(rows)
    recipe = tmp_path / "r.yaml"
    recipe.write_text(
        "name: once\n"
        "input: {path: 'countmem://in/docs.jsonl', format: jsonl, id_column: id}\n"
        "task: embed\n"
        "model: {engine: torch, name: sentence-transformers/all-MiniLM-L6-v2}\n"
        "store: s3://bucket/runs\n"
        "schedule: {clouds: [aws], deadline: 8h}\n"
    )
    return recipe


@pytest.mark.slow
def test_a_planned_dry_run_reads_the_input_as_often_as_opening_it_once(
    counted_input: Path,
) -> None:
    recipe = load_recipe(str(counted_input))
    CountingFS.opens = 0
    once = open_input(recipe.input, "countmem://in/docs.jsonl")
    once.fingerprint()
    once.sample(256)
    reads_of_one_open = CountingFS.opens

    CountingFS.opens = 0
    req = LaunchRequest(recipe_path=str(counted_input), backend="skypilot", dry_run=True)
    result = launch(req, echo=lambda line: None, confirm=lambda q: True)
    assert result.dry_run_yaml
    # The plan sampled and counted it, the run id fingerprinted it: the same object.
    assert CountingFS.opens == reads_of_one_open
