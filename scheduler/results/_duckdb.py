"""DuckDB over a run's committed outputs, and exports of them.

Only the output file named by each shard's commit marker is read, so the view ``results``
never shows an attempt that lost a race or was interrupted, and only after it was checked
against the marker (size, sha256, row count): a file that disagrees is a ``StoreError``
(exit 3) naming the shard and what differs, never served. DuckDB scans Parquet files on
this machine (``read_parquet`` with ``union_by_name``, since a shard whose rows all died
has no output columns): a local store's own files, or, for an object store, copies in a
temporary folder of the very bytes that were verified (one GET per output file; no DuckDB
extension such as httpfs; the folder goes with the connection). The connection is
in-memory: querying results never touches the pricing database.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import weakref
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from scheduler.errors import StoreError, UsageError
from scheduler.store import DoneMarker, RunStore, check_committed, raise_problems

__all__ = ["connect_results", "export_results", "query_results"]


def connect_results(store: RunStore, *, sandbox: bool = False) -> Any:
    """An in-memory DuckDB connection with a view ``results`` over the committed outputs.

    With ``sandbox`` (the TUI's query box) the connection may read only the run's output
    files (or their verified copies) and write nothing, so a query cannot ``COPY ... TO``
    or ``ATTACH`` anywhere (see :func:`_lock_down`).
    """
    import duckdb

    con = duckdb.connect(":memory:")
    markers = [m for _, m in sorted(store.markers().items())]
    copies: dict[str, str] = {}
    keep = None
    if not store.local and markers:
        # An object store's outputs are downloaded once, verified from those bytes and
        # queried from the copy: a second download (or the ranged reads of a remote scan)
        # would cost requests and time, and could read a file changed since the check.
        folder = tempfile.mkdtemp(prefix=f"skybatch-results-{store.run_id}-")
        weakref.finalize(con, shutil.rmtree, folder, True)  # gone with the connection

        def keep(marker: DoneMarker, data: bytes) -> None:
            path = os.path.join(folder, os.path.basename(marker.out_file))
            with open(path, "wb") as f:
                f.write(data)
            copies[marker.out_file] = path

    # Never serve a file that disagrees with its marker (a flipped byte, a copy over
    # another shard's output, a truncation): size, sha256 and row count of every file,
    # read once here (a local store's query reads them again, from the page cache).
    problems = check_committed(store, markers, content=True, keep=keep)
    if problems:
        con.close()
        raise_problems(store, problems, doing="results of")
    id_column = store.run_info().id_column
    if not markers:
        con.execute(f'create view results as select null::varchar as "{id_column}" where false')
        if sandbox:
            _lock_down(con, [])
        return con
    paths = [copies[m.out_file] if copies else store.path(m.out_file) for m in markers]
    listed = ", ".join(f"'{_quote(p)}'" for p in paths)
    # union_by_name: a shard whose rows all died has no output columns, only the id.
    con.execute(
        f"create view results as select * from read_parquet([{listed}], union_by_name=true)"
    )
    if sandbox:
        _lock_down(con, paths)
    return con


def _lock_down(con: Any, readable: list[str]) -> None:
    """Let the connection read ``readable`` and nothing else, and write nowhere.

    ``enable_external_access = false`` still lets DuckDB use its temp folder (``.tmp`` in
    the working directory for an in-memory database), so COPY and ATTACH could write there
    when it exists: the temp folder is switched off first (a query that would spill fails
    instead), and the configuration is locked so no query can switch anything back.
    """
    con.execute("set temp_directory = ''")
    if readable:
        con.execute(f"set allowed_paths = [{', '.join(_sql_literal(p) for p in readable)}]")
    con.execute("set enable_external_access = false")
    con.execute("set lock_configuration = true")


def _sql_literal(text: str) -> str:
    """A SQL string literal."""
    return "'" + _quote(text) + "'"


def query_results(store: RunStore, sql: str) -> tuple[list[str], list[tuple[Any, ...]]]:
    """Run a query over the view ``results``; returns column names and rows."""
    import duckdb

    con = connect_results(store)
    try:
        cur = con.execute(sql)
    except duckdb.Error as e:
        raise UsageError(f"--sql: {str(e).splitlines()[0]}") from e
    columns = [d[0] for d in cur.description or []]
    return columns, cur.fetchall()


def export_results(store: RunStore, path: str, *, fmt: str = "auto") -> dict[str, Any]:
    """Write the committed outputs to one Parquet or JSONL file (by extension)."""
    suffix = Path(path).suffix.lower()
    if fmt == "openai-batch":
        return _export_openai(store, path)
    if suffix not in (".parquet", ".jsonl", ".ndjson", ".json"):
        raise UsageError(f"--export {path}: use a .parquet or .jsonl file name")
    con = connect_results(store)
    kind = "parquet" if suffix == ".parquet" else "json"
    target = str(Path(path).expanduser())
    try:
        copied = con.execute(
            f"copy (select * from results) to '{_quote(target)}' (format {kind})"
        ).fetchone()
    except Exception as e:
        raise StoreError(f"--export {path}: cannot write ({str(e).splitlines()[0]})") from e
    rows = copied[0] if copied else 0  # COPY answers with the rows it wrote
    return {"run_id": store.run_id, "path": target, "rows": int(rows), "format": kind}


def _quote(text: str) -> str:
    return text.replace("'", "''")


def _export_openai(store: RunStore, path: str) -> dict[str, Any]:
    from scheduler.results._openai import write_openai_batch

    info = store.run_info()
    id_column = info.id_column

    # One listing for both files: a shard committed in between would otherwise show up
    # with its dead rows but without its outputs.
    markers = [m for _, m in sorted(store.markers().items())]

    def outputs() -> Iterator[dict[str, Any]]:
        for marker in markers:
            yield from store.read_output(marker).to_pylist()

    dead = ({**d, id_column: d["id"]} for m in markers for d in store.read_dead(m))
    wrote = write_openai_batch(
        outputs(),
        dead,
        output_path=path,
        model=str(info.raw.get("model")),
        run_id=store.run_id,
        id_column=id_column,
    )
    return {
        "run_id": store.run_id,
        "path": wrote.output_path,
        "rows": wrote.completed,
        "errors": wrote.failed,
        "errors_path": wrote.errors_path,
        "format": "openai-batch",
    }
