"""MiniLM embeddings of a small dataset, end to end on the CPU: CLI → workers → store → DuckDB."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("sentence_transformers")


@pytest.mark.slow
def test_embed_minilm_end_to_end(tmp_path: Path, repo: Path) -> None:
    lines = (repo / "recipes/data/sentences.jsonl").read_text().splitlines()[:120]
    (tmp_path / "sentences.jsonl").write_text("\n".join(lines) + "\n")
    recipe = (repo / "recipes/embed-minilm.yaml").read_text()
    recipe = recipe.replace("data/sentences.jsonl", "sentences.jsonl")
    recipe = recipe.replace("rows_per_shard: 500", "rows_per_shard: 40")
    (tmp_path / "embed.yaml").write_text(recipe)

    def cli(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "scheduler.cli", *args],
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=600,
        )

    run = cli("run", "embed.yaml", "--json")
    assert run.returncode == 0, run.stderr
    summary = json.loads(run.stdout)
    assert (summary["rows_in"], summary["rows_out"], summary["rows_dead"]) == (120, 120, 0)
    assert summary["shards_done"] == 3

    query = cli(
        "results",
        summary["run_id"],
        "--json",
        "--sql",
        "select id, len(embedding) as dim, list_dot_product(embedding, embedding) as sq,"
        " model_revision from results order by id",
    )
    assert query.returncode == 0, query.stderr
    rows = json.loads(query.stdout)["rows"]
    assert [r["id"] for r in rows] == sorted(json.loads(line)["id"] for line in lines)
    assert {r["dim"] for r in rows} == {384}
    assert all(math.isclose(r["sq"], 1.0, rel_tol=1e-3) for r in rows)  # normalize: true
    assert all(r["model_revision"] for r in rows)

    export = tmp_path / "emb.parquet"
    out = cli("results", summary["run_id"], "--export", str(export), "--json")
    assert out.returncode == 0, out.stderr
    import pyarrow.parquet as pq

    table = pq.read_table(export)
    assert table.num_rows == 120 and "embedding" in table.column_names
