"""The DuckDB file for real: migrations, seeding, and several processes at once."""

from __future__ import annotations

import multiprocessing as mp
import os
from pathlib import Path

import duckdb
import pytest

import pricing
from pricing._db import MIGRATIONS


def test_fresh_database_is_migrated_and_seeded_once(isolated_home: Path) -> None:
    pricing.db_path().unlink()  # not the session's seeded copy: create it here
    with pricing.connect() as con:
        versions = con.execute("SELECT version FROM schema_version").fetchall()
        tables = {r[0] for r in con.execute("SELECT table_name FROM duckdb_tables()").fetchall()}
        offerings = con.execute("SELECT count(*) FROM offerings").fetchone()
        published = con.execute(
            "SELECT count(*) FROM throughput WHERE kind = 'published'"
        ).fetchone()
    assert [v[0] for v in versions] == [v for v, _ in MIGRATIONS]
    assert {"offerings", "gpu_specs", "throughput", "run_history", "jobs", "meta"} <= tables
    assert offerings == (624,)
    assert published is not None and published[0] >= 100
    assert pricing.db_path() == isolated_home / ".skybatch" / "skybatch.duckdb"
    # A second process-level open (cache cleared) must not re-seed or re-migrate.
    from pricing import _db

    _db._ready.clear()
    with pricing.connect(read_only=True) as con:
        assert con.execute("SELECT count(*) FROM offerings").fetchone() == (624,)
        assert con.execute("SELECT count(*) FROM schema_version").fetchone() == (len(MIGRATIONS),)


def test_a_current_file_is_opened_once_per_read_session(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from pricing import _db

    with pricing.connect():
        pass  # create, migrate and seed
    _db._ready.clear()  # as in a new process
    opened: list[bool] = []
    real_open = _db._open

    def counting_open(path: Path, *, read_only: bool) -> duckdb.DuckDBPyConnection:
        opened.append(read_only)
        return real_open(path, read_only=read_only)

    monkeypatch.setattr(_db, "_open", counting_open)
    with pricing.session():
        assert pricing.gpu_spec("H100") is not None
    # No read-write open just to learn that nothing needs migrating.
    assert opened == [True]


def test_an_unmigrated_file_is_migrated_before_a_read(isolated_home: Path) -> None:
    path = pricing.db_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    path.unlink(missing_ok=True)  # not the session's seeded copy
    duckdb.connect(str(path)).close()  # an empty file, as a crash mid-creation could leave
    with pricing.connect(read_only=True) as con:
        assert con.execute("SELECT count(*) FROM offerings").fetchone() == (624,)


def test_bulk_insert_keeps_types_nulls_and_order() -> None:
    from datetime import datetime

    from pricing._db import bulk_insert

    con = duckdb.connect()
    con.execute("CREATE TABLE t (a VARCHAR, b INTEGER, c DOUBLE, d TIMESTAMP)")
    rows = [
        ["x", 1, None, datetime(2026, 1, 2, 3, 4, 5)],
        [None, 2, 2.5, datetime(2026, 1, 3)],
        ["z", None, 3.0, None],
    ]
    bulk_insert(con, "t", ["a", "b", "c", "d"], rows)
    bulk_insert(con, "t", ["a", "b", "c", "d"], [])
    assert [list(r) for r in con.execute("SELECT * FROM t").fetchall()] == rows


def test_read_only_connection_refuses_writes() -> None:
    with pricing.connect(read_only=True) as con, pytest.raises(duckdb.Error):
        con.execute("DELETE FROM offerings")


def _writer(home: str, worker: int, n: int) -> int:
    os.environ["SKYBATCH_HOME"] = home
    for i in range(n):
        pricing.record_throughput(
            model="meta-llama/Llama-3.1-8B",
            engine="vllm",
            task="generate",
            accelerator="L4",
            count=1,
            precision="BF16",
            input_tokens=100,
            output_tokens=10,
            rows_per_s=float(worker * 1000 + i),
            tokens_per_s=1.0,
            source=f"process {worker}",
        )
    return n


def _reader(home: str, n: int) -> int:
    os.environ["SKYBATCH_HOME"] = home
    seen = 0
    for _ in range(n):
        seen += len(pricing.list_offerings(accelerators=["H100"]))
        pricing.estimate_throughput(
            model="meta-llama/Llama-3.1-8B",
            engine="vllm",
            task="generate",
            accelerator="L4",
            count=1,
            input_tokens=100,
            output_tokens=10,
        )
    return seen


@pytest.mark.slow
def test_processes_share_the_file_without_lock_errors(isolated_home: Path) -> None:
    home = str(isolated_home / ".skybatch")
    pricing.list_offerings()  # create it here; then writers and readers race on it
    ctx = mp.get_context("spawn")
    with ctx.Pool(4) as pool:
        writes = [pool.apply_async(_writer, (home, w, 15)) for w in (1, 2)]
        reads = [pool.apply_async(_reader, (home, 10)) for _ in range(2)]
        assert [r.get(timeout=240) for r in writes] == [15, 15]
        assert all(r.get(timeout=240) > 0 for r in reads)
    with pricing.connect(read_only=True) as con:
        rows = con.execute(
            "SELECT source, count(*) FROM throughput WHERE kind = 'measured' GROUP BY 1 ORDER BY 1"
        ).fetchall()
    assert rows == [("process 1", 15), ("process 2", 15)]


def test_lock_held_too_long_is_one_clear_error(
    isolated_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import subprocess
    import sys
    import time

    pricing.list_offerings()
    path = pricing.db_path()
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            f"import duckdb,time; c=duckdb.connect({str(path)!r}); print('held', flush=True); time.sleep(20)",
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        monkeypatch.setenv("SKYBATCH_DB_LOCK_TIMEOUT_S", "1")
        started = time.monotonic()
        with pytest.raises(pricing._db.StoreError, match="stayed locked by another process"):
            pricing.record_run(run_id="blocked")
        assert time.monotonic() - started < 10
    finally:
        holder.kill()
        holder.wait()
    pricing.record_run(run_id="free again")  # the lock is gone: works
    assert pricing.list_offerings()


def test_threads_mix_readers_and_writers_in_one_process() -> None:
    import threading

    pricing.list_offerings()
    errors: list[BaseException] = []

    def read() -> None:
        try:
            for _ in range(10):
                assert pricing.list_offerings(accelerators=["L4"])
        except BaseException as e:  # collected and re-raised below
            errors.append(e)

    def write(worker: int) -> None:
        try:
            for i in range(5):
                pricing.record_run(run_id=f"t{worker}-{i}", cloud="aws", spot=True)
        except BaseException as e:
            errors.append(e)

    threads = [threading.Thread(target=read) for _ in range(3)]
    threads += [threading.Thread(target=write, args=(w,)) for w in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert errors == []
    with pricing.connect(read_only=True) as con:
        assert con.execute("SELECT count(*) FROM run_history").fetchone() == (10,)
    # Nested: a read inside an open write connection shares it.
    with pricing.connect() as con:
        assert pricing.list_offerings(accelerators=["H100"])
        con.execute("SELECT 1")


def test_cache_sees_writes_from_another_process(isolated_home: Path) -> None:
    import subprocess
    import sys

    before = pricing.list_offerings(clouds=["lambda"])
    assert before
    code = (
        "import pricing; from pricing._catalog import replace_offerings; "
        "replace_offerings([o for o in pricing.list_offerings(clouds=['lambda'])][:1])"
    )
    env = {**os.environ, "SKYBATCH_HOME": str(isolated_home / ".skybatch")}
    subprocess.run([sys.executable, "-c", code], check=True, env=env, timeout=120)
    assert len(pricing.list_offerings(clouds=["lambda"])) == 1


def _as_a_new_process() -> None:
    from pricing import _db, _readcache

    _db._ready.clear()
    _db._cache.clear()
    _readcache._loaded.clear()


def _reference_counts() -> tuple[int, int, float]:
    with pricing.connect(read_only=True) as con:
        published = con.execute("SELECT count(*) FROM throughput WHERE kind = 'published'")
        n_published = int(published.fetchone()[0])  # type: ignore[index]
        measured = con.execute("SELECT count(*) FROM throughput WHERE kind = 'measured'")
        n_measured = int(measured.fetchone()[0])  # type: ignore[index]
    h100 = pricing.gpu_spec("H100")
    assert h100 is not None
    return n_published, n_measured, h100.memory_gib


@pytest.mark.parametrize("made_by", ["schema 4, before digests", "an older shipped file"])
def test_an_existing_file_takes_an_upgrades_reference_rows(made_by: str) -> None:
    """Specs and published figures follow the shipped files; a measured figure stays."""
    pricing.record_throughput(
        model="meta-llama/Llama-3.1-8B-Instruct", engine="vllm", task="generate",
        accelerator="H100", count=1, precision="BF16", input_tokens=500, output_tokens=150,
        rows_per_s=20.0, tokens_per_s=3000.0, source="test bench",
    )  # fmt: skip
    shipped = _reference_counts()
    assert shipped[0] >= 100 and shipped[1] == 1 and shipped[2] > 1.0
    # What an older skybatch left: fewer published rows and a spec since corrected.
    with duckdb.connect(str(pricing.db_path())) as raw:
        raw.execute(
            "DELETE FROM throughput WHERE kind = 'published' AND id > "
            "(SELECT min(id) FROM throughput WHERE kind = 'published')"
        )
        raw.execute("UPDATE gpu_specs SET memory_gib = 1.0 WHERE accelerator = 'H100'")
        if made_by.startswith("schema 4"):
            raw.execute("DROP TABLE shipped_data")
            raw.execute("DELETE FROM schema_version WHERE version = 5")
        else:
            raw.execute("UPDATE shipped_data SET digest = 'older'")
    _as_a_new_process()
    assert _reference_counts() == shipped
    with pricing.connect(read_only=True) as con:
        digests = con.execute("SELECT count(DISTINCT digest) FROM shipped_data").fetchone()
    assert digests == (2,)
    # Once in step, a new process opens the file read-only and replaces nothing.
    _as_a_new_process()
    with duckdb.connect(str(pricing.db_path())) as raw:
        raw.execute("UPDATE gpu_specs SET source = 'kept' WHERE accelerator = 'H100'")
    _as_a_new_process()
    with pricing.connect(read_only=True) as con:
        kept = con.execute("SELECT source FROM gpu_specs WHERE accelerator = 'H100'").fetchone()
    assert kept == ("kept",)


def test_the_read_cache_key_follows_the_shipped_data_files() -> None:
    from pricing import _readcache

    names = {name for name, _size, _mtime in _readcache._code_key()}
    assert {"data/gpu_specs.csv", "data/throughput_refs.csv", "pricing/_db.py"} <= names
