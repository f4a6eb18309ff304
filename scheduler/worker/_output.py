"""A shard's results as the store takes them: one Arrow table, and the rows it cannot hold.

Dead-row records share one shape (``id``, ``stage``, ``reason``) whichever stage made
them: the input (:func:`_input_dead`), the engine or the store (:func:`_storable`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pyarrow as pa

from scheduler.engines.base import Row
from scheduler.inputs import DeadRow

__all__ = ["_input_dead", "_storable", "_to_table"]


def _to_table(
    id_column: str, rows: Sequence[Row], results: Sequence[dict[str, Any]], revision: str | None
) -> pa.Table:
    """Results as an Arrow table: the id column, the outputs, the model revision."""
    columns: dict[str, list[Any]] = {id_column: [r["id"] for r in rows]}
    keys: list[str] = []
    for res in results:
        for k in res:
            if k not in columns and k not in keys:
                keys.append(k)
    arrays: dict[str, pa.Array] = {id_column: pa.array(columns[id_column], pa.string())}
    for k in keys:
        values = [res.get(k) for res in results]
        if k == "embedding":
            arrays[k] = pa.array(values, pa.list_(pa.float32()))
        else:
            arrays[k] = pa.array(values)
    arrays["model_revision"] = pa.array([revision] * len(rows), pa.string())
    return pa.table(arrays)


def _storable(
    id_column: str, rows: list[Row], results: list[dict[str, Any]], revision: str | None
) -> tuple[pa.Table, list[Row], list[dict[str, Any]], list[dict[str, Any]]]:
    """The output table, and the rows that cannot be stored as dead rows with the reason.

    A valid JSON string may hold a lone surrogate (``"\\udc80x"``) that no Parquet string
    can: one such id or value must cost its row, not the shard's other rows. The whole
    table is tried first; only when it fails is each row tried alone.
    """
    try:
        return _to_table(id_column, rows, results, revision), rows, results, []
    except (UnicodeError, pa.ArrowException) as whole:
        first_error = whole
    ok_rows: list[Row] = []
    ok_results: list[dict[str, Any]] = []
    dead: list[dict[str, Any]] = []
    for row, res in zip(rows, results, strict=True):
        try:
            _to_table(id_column, [row], [res], revision)
        except (UnicodeError, pa.ArrowException) as e:
            reason = f"cannot store the row: {type(e).__name__}: {e}"[:2000]
            dead.append({"id": row["id"], "stage": "store", "reason": reason})
        else:
            ok_rows.append(row)
            ok_results.append(res)
    if not dead:
        raise first_error  # the rows disagree with each other (types): a shard error
    return _to_table(id_column, ok_rows, ok_results, revision), ok_rows, ok_results, dead


def _input_dead(input_dead: Sequence[DeadRow]) -> list[dict[str, Any]]:
    """Rows the input could not parse, as dead-row records (one shape everywhere)."""
    return [{**d.to_dict(), "stage": "input"} for d in input_dead]
