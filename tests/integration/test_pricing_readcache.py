"""The read cache of the pricing database: a new process plans without DuckDB, never stale.

"A new process" is simulated in-process by dropping this process's memory of the file
(``_fresh_process``); one test runs a real ``skybatch plan`` in a subprocess.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import duckdb
import pytest

import pricing
from pricing import _db, _readcache

ROOT = Path(__file__).resolve().parents[2]


def _fresh_process() -> None:
    """Forget what this process read, as a new process would not know it."""
    _db._cache.clear()
    _readcache._loaded.clear()


def _age(path: Path, seconds: float = 3600.0) -> None:
    """Date the file's last modification back, as for a database written an hour ago."""
    then = time.time() - seconds
    os.utime(path, (then, then))


def _cache_written() -> Path:
    """Read the planner's tables from an hour-old file: they land in the read cache."""
    _age(pricing.db_path())
    _fresh_process()
    assert pricing.list_offerings(clouds=["lambda"])
    assert pricing.prices_age_days() is not None
    cache = _readcache.cache_path(pricing.db_path())
    assert cache.exists()
    return cache


def _no_duckdb_reads(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("opened the DuckDB file")

    monkeypatch.setattr(_db, "_open", refuse)


def test_a_new_process_reads_the_cache_not_the_file(monkeypatch: pytest.MonkeyPatch) -> None:
    _cache_written()
    before = pricing.list_offerings(clouds=["lambda"])
    age = pricing.prices_age_days()
    _fresh_process()
    _no_duckdb_reads(monkeypatch)
    with pricing.session():  # a plan's session opens nothing the cache answers
        assert pricing.list_offerings(clouds=["lambda"]) == before
        assert pricing.prices_age_days() == pytest.approx(age, abs=1e-3)


def test_a_write_through_pricing_drops_the_cache() -> None:
    cache = _cache_written()
    lam = pricing.list_offerings(clouds=["lambda"])
    pricing.replace_offerings(lam[:1])  # what `skybatch pricing refresh` does per cloud
    assert not cache.exists()
    _fresh_process()
    assert len(pricing.list_offerings(clouds=["lambda"])) == 1
    cache = _cache_written()
    pricing.record_run(run_id="r1", cloud="aws", startup_s=1000.0)  # any write
    assert not cache.exists()
    _fresh_process()
    assert pricing.startup_s("aws") == pytest.approx((1000.0 + 240.0) / 2)


def test_a_write_by_another_tool_changes_the_key() -> None:
    _cache_written()
    path = pricing.db_path()
    con = duckdb.connect(str(path))  # not through pricing: the cache file stays
    con.execute("UPDATE offerings SET usd_per_hour = 999.0 WHERE cloud = 'lambda'")
    con.close()
    assert _readcache.cache_path(path).exists()
    _fresh_process()
    assert {o.usd_per_hour for o in pricing.list_offerings(clouds=["lambda"])} == {999.0}


def test_a_just_written_file_is_not_cached() -> None:
    # A write in the same timestamp tick could keep the key: wait until the file is older.
    pricing.record_run(run_id="r1", cloud="aws")
    _fresh_process()
    assert pricing.list_offerings(clouds=["lambda"])
    assert not _readcache.cache_path(pricing.db_path()).exists()


def test_a_damaged_cache_is_a_miss() -> None:
    cache = _cache_written()
    expected = pricing.list_offerings(clouds=["lambda"])
    cache.write_bytes(b"\x80\x05not a pickle")
    _fresh_process()
    assert pricing.list_offerings(clouds=["lambda"]) == expected


def test_other_pricing_code_is_a_miss(monkeypatch: pytest.MonkeyPatch) -> None:
    _cache_written()
    _fresh_process()
    monkeypatch.setattr(_readcache, "_code_key", lambda: (("_catalog.py", 1, 2),))
    assert _readcache.get(pricing.db_path(), "offerings", _db.MIGRATIONS[-1][0]) is (
        _readcache.MISSING
    )


def test_plan_in_a_new_process_imports_no_duckdb_once_cached() -> None:
    recipe = str(ROOT / "recipes" / "summarize-llama-10m.yaml")
    cli = [sys.executable, "-m", "scheduler.cli", "plan", recipe, "--json"]
    _age(pricing.db_path())
    first = subprocess.run(cli, capture_output=True, text=True, check=True, cwd=ROOT)
    assert _readcache.cache_path(pricing.db_path()).exists()
    probe = (
        "import sys\n"
        "from scheduler.cli import main\n"
        f"try:\n    main(['plan', {recipe!r}, '--json'])\n"
        "except SystemExit:\n    pass\n"
        "print('duckdb' in sys.modules, file=sys.stderr)\n"
    )
    second = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True, cwd=ROOT
    )
    assert second.stderr.strip().splitlines()[-1] == "False"
    assert json.loads(second.stdout) == json.loads(first.stdout)
