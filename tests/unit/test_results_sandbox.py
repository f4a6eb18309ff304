"""The TUI's SQL sandbox (issue 13, finding 8): no writable temp folder, so neither COPY nor
ATTACH can write anything, even where DuckDB's default temp folder (``./.tmp``) exists."""

from __future__ import annotations

from pathlib import Path

import duckdb
import pytest

from scheduler.results import connect_results
from scheduler.store import RunStore
from tests.unit.test_worker import FakeEngine, _run, _work

DOORS = [
    "copy (select * from results) to '.tmp/leak.csv'",
    "copy (select 1) to '{tmp}/.tmp/leak2.csv'",
    "attach '.tmp/leak.duckdb' as leak",
    "attach '{tmp}/.tmp/leak2.duckdb' as leak2",
    "set temp_directory = '.tmp'",
    "set enable_external_access = true",
    "set lock_configuration = false",
]


def _sandbox(store: RunStore, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> object:
    (tmp_path / ".tmp").mkdir()
    monkeypatch.chdir(tmp_path)  # DuckDB's default temp folder is .tmp in the cwd
    return connect_results(store, sandbox=True)


@pytest.mark.parametrize("query", DOORS)
def test_the_sandbox_writes_nowhere(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, query: str
) -> None:
    store = _run(tmp_path, rows=20, rows_per_shard=10)
    _work(store, FakeEngine())
    con = _sandbox(store, tmp_path, monkeypatch)
    with pytest.raises(duckdb.Error, match=r"disabled by configuration|locked"):
        con.execute(query.format(tmp=tmp_path))  # type: ignore[attr-defined]
    assert list((tmp_path / ".tmp").iterdir()) == []
    assert con.execute("select count(*) from results").fetchone() == (20,)  # type: ignore[attr-defined]


def test_the_sandbox_of_a_run_without_outputs_is_locked_too(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = _run(tmp_path, rows=20, rows_per_shard=10)  # nothing committed yet
    con = _sandbox(store, tmp_path, monkeypatch)
    with pytest.raises(duckdb.Error, match="disabled by configuration"):
        con.execute("copy (select 1) to '.tmp/leak.csv'")  # type: ignore[attr-defined]
    assert list((tmp_path / ".tmp").iterdir()) == []
