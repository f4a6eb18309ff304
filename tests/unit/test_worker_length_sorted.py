"""The worker cuts a shard into length-sorted batches for engines that ask (``length_sorted``)
and writes the results back in input order; other engines see rows in input order."""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

import pytest

from scheduler.engines.base import Result, Row
from scheduler.recipe import recipe_from_dict
from scheduler.runs import prepare_run
from scheduler.store import RunStore
from scheduler.worker import Worker


class RecordingEngine:
    """Returns each row's text length and records the texts of every batch it gets."""

    whole_shard = False

    def __init__(self, *, length_sorted: bool) -> None:
        self.length_sorted = length_sorted
        self.batches: list[list[str]] = []

    def infer(self, rows: list[Row]) -> list[Result]:
        self.batches.append([r["text"] for r in rows])
        return [{"n": len(r["text"]), "echo": r["text"]} for r in rows]

    def describe(self) -> dict[str, Any]:
        return {"engine": "recording", "revision": "r1", "accelerator": "cpu"}

    def close(self) -> None:
        pass


def _store(tmp_path: Path, texts: list[str]) -> RunStore:
    data = tmp_path / "rows.jsonl"
    data.write_text(
        "".join(json.dumps({"id": f"r{i:03d}", "text": t}) + "\n" for i, t in enumerate(texts))
    )
    recipe = recipe_from_dict(
        {
            "name": "sorted",
            "input": {"path": str(data), "id_column": "id"},
            "task": "embed",
            "model": {"engine": "python", "name": "m:f", "batch_size": 8},
            "shards": {"rows_per_shard": 30},
        },
        source=str(tmp_path / "sorted.yaml"),
    )
    return prepare_run(recipe, store_url=str(tmp_path / "runs"))


@pytest.mark.parametrize("length_sorted", [True, False])
def test_results_keep_input_order_whatever_the_batch_order(
    tmp_path: Path, length_sorted: bool
) -> None:
    rng = random.Random(7)
    texts = ["w" * rng.randint(1, 80) + f" {i}" for i in range(60)]
    store = _store(tmp_path, texts)
    engine = RecordingEngine(length_sorted=length_sorted)
    worker = Worker(store, worker_id="w0", engine_factory=lambda _: engine, heartbeat_s=60)
    assert worker.run() == 0

    by_id: dict[str, dict[str, Any]] = {}
    for marker in store.markers().values():
        for row in store.read_output(marker).to_pylist():
            by_id[row["id"]] = row
    assert sorted(by_id) == [f"r{i:03d}" for i in range(60)]
    for i, text in enumerate(texts):
        assert by_id[f"r{i:03d}"]["echo"] == text
        assert by_id[f"r{i:03d}"]["n"] == len(text)

    seen = [t for batch in engine.batches for t in batch]
    assert sorted(seen) == sorted(texts)
    if length_sorted:
        # Within each shard of 30 rows, batches go from the longest texts to the shortest.
        for start in (0, 30):
            shard = seen[start : start + 30]
            assert [len(t) for t in shard] == sorted((len(t) for t in shard), reverse=True)
    else:
        assert seen[:30] in (texts[:30], texts[30:])
