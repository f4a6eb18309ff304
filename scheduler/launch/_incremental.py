"""Incremental runs: a recurring job processes only rows that no earlier run committed.

``skybatch launch RECIPE --incremental`` looks for earlier runs of the same recipe name in
the same store, collects the row ids their commit markers vouch for (the id column of the
committed outputs), and writes the input rows with other ids to one Parquet file in the
store (``_inputs/<recipe>-<digest of the new ids>.parquet``). The run then reads that file,
so a nightly job over a growing dataset only pays for the new rows; the earlier runs keep
the results of the old ones, and ``run.json`` records which runs they are.

The file is content-addressed and never rewritten, so a re-triggered job with the same new
rows finds the same input fingerprint and resumes the same run. Row ids must be stable:
the recipe needs ``input.id_column``.
"""

from __future__ import annotations

import hashlib
import io
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from scheduler.errors import UsageError
from scheduler.recipe import Recipe, resolve_input_path
from scheduler.store import RunStore, iter_runs, open_store_root

__all__ = ["committed_ids", "incremental_recipe", "previous_runs", "unfinished_run"]

_READ_ROWS_PER_SHARD = 50_000


def previous_runs(store_url: str, recipe_name: str, *, exclude: str | None = None) -> list[str]:
    """Ids of the runs of ``recipe_name`` in a store, oldest first."""
    found = []
    for rid in iter_runs(store_url):
        if rid == exclude:
            continue
        info = RunStore(store_url, rid).run_info()
        if info.recipe_name == recipe_name:
            found.append((str(info.raw.get("created_at", "")), rid))
    return [rid for _, rid in sorted(found)]


def unfinished_run(store_url: str, recipe_name: str) -> str | None:
    """The newest incremental run of ``recipe_name`` that has not finished, if any.

    A re-triggered job without ``--run-id`` resumes it: counting its committed rows as
    done would give the rest of its rows a new digest, hence a new run, while the old
    run's workers may still be processing them.
    """
    from scheduler.store import read_status

    for rid in reversed(previous_runs(store_url, recipe_name)):
        store = RunStore(store_url, rid)
        if store.run_info().incremental and not read_status(store).state.is_terminal():
            return rid
    return None


def committed_ids(store: RunStore, id_column: str) -> set[str]:
    """Row ids whose results a run has committed (outputs and dead rows alike)."""
    ids: set[str] = set()
    for marker in store.markers().values():
        table = store.read_output(marker)
        if id_column in table.column_names:
            ids.update(str(v) for v in table.column(id_column).to_pylist())
        for dead in store.read_dead(marker):
            if dead.get("id") is not None:
                ids.add(str(dead["id"]))
    return ids


def incremental_recipe(
    recipe: Recipe, *, store_url: str, run_id: str | None
) -> tuple[Recipe, dict[str, Any]]:
    """The recipe rewritten to read only new rows, and what was reused (for ``run.json``)."""
    from scheduler.inputs import open_input

    id_column = recipe.input.id_column
    if not id_column:
        raise UsageError(
            f"{recipe.source or recipe.name}: --incremental needs input.id_column (stable row "
            "ids) to tell new rows from rows an earlier run already processed"
        )
    if run_id is None and (resume := unfinished_run(store_url, recipe.name)) is not None:
        info = dict(RunStore(store_url, resume).run_info().incremental or {})
        new_input = recipe.input.model_copy(update={"path": info["input"], "format": "parquet"})
        return recipe.model_copy(update={"input": new_input}), {**info, "resumed_run": resume}
    earlier = previous_runs(store_url, recipe.name, exclude=run_id)
    done: set[str] = set()
    for rid in earlier:
        done |= committed_ids(RunStore(store_url, rid), id_column)
    input_path = resolve_input_path(recipe)
    source = open_input(recipe.input, input_path, rows_per_shard=_READ_ROWS_PER_SHARD)
    text_column = recipe.input.text_column
    new_rows: list[dict[str, Any]] = []
    reused = malformed = 0
    for shard in source.shards(_READ_ROWS_PER_SHARD):
        rows, dead = source.read(shard)
        malformed += len(dead)
        for row in rows:
            rid = str(row["id"])
            if rid in done:
                reused += 1
                continue
            rec = {id_column: rid, text_column: row.get("text")}
            rec.update(
                {k: v for k, v in row.items() if k not in ("id", "text", id_column, text_column)}
            )
            new_rows.append(rec)
    digest = hashlib.sha256("\n".join(sorted(r[id_column] for r in new_rows)).encode()).hexdigest()
    fs, root = open_store_root(store_url)
    rel = f"_inputs/{recipe.name}-{digest[:16]}.parquet"
    full = f"{root}/{rel}"
    if new_rows and not fs.exists(full):
        buf = io.BytesIO()
        pq.write_table(pa.Table.from_pylist(new_rows), buf)
        fs.makedirs(f"{root}/_inputs", exist_ok=True)
        fs.pipe_file(full, buf.getvalue())
    url = fs.unstrip_protocol(full) if "://" in store_url else full
    new_input = recipe.input.model_copy(update={"path": url, "format": "parquet"})
    info = {
        "source_input": input_path,
        "previous_runs": earlier,
        "rows_reused": reused,
        "rows_new": len(new_rows),
        "rows_malformed_skipped": malformed,
        "input": url,
    }
    return recipe.model_copy(update={"input": new_input}), info
