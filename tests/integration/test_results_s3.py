"""``skybatch results`` over a run whose store is a real S3 API (moto on loopback).

A cloud run's outputs live in the bucket; the first thing its owner does is query and
export them from a laptop. Those reads go through a pyarrow dataset over fsspec (no DuckDB
extension), which is also the path where Arrow threads call back into Python, so each
command is run several times in a fresh process and must exit 0 every time.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from tests.integration.conftest import S3Server
from tests.integration.faultproxy import FaultProxy

ROWS = 60
FN = """\
def work(rows):
    out = []
    for r in rows:
        if r["text"] == "bad":
            raise ValueError("bad row")
        out.append({"n": len(r["text"])})
    return out
"""


def _write_run(tmp_path: Path, name: str, texts: list[str], rows_per_shard: int) -> None:
    """fn.py, rows.jsonl (ids r000...) and r.yaml for a python-engine run named ``name``."""
    (tmp_path / "fn.py").write_text(FN)
    with (tmp_path / "rows.jsonl").open("w") as f:
        for i, text in enumerate(texts):
            f.write(json.dumps({"id": f"r{i:03d}", "text": text}) + "\n")
    (tmp_path / "r.yaml").write_text(
        f"name: {name}\n"
        "input: {path: rows.jsonl, id_column: id}\n"
        "task: score\n"
        "model: {engine: python, name: 'fn.py:work', batch_size: 5}\n"
        f"shards: {{rows_per_shard: {rows_per_shard}}}\n"
        "limits: {retries: 0, max_error_rate: 1.0}\n"
    )


def _skybatch(
    *argv: str, cwd: Path, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "scheduler.cli", *argv], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=300)  # fmt: skip


@pytest.mark.slow
def test_results_query_and_export_a_run_in_s3(tmp_path: Path, s3_store_url: str) -> None:
    # rows 50-59 all fail: their shard commits dead rows and no output columns
    texts = ["bad" if i >= 50 or i == 7 else "x" * (i % 5 + 1) for i in range(ROWS)]
    _write_run(tmp_path, "s3res", texts, rows_per_shard=10)
    run = _skybatch("run", "r.yaml", "--store", s3_store_url, "--run-id", "s3res-1",
                    "--no-progress", "--json", cwd=tmp_path)  # fmt: skip
    assert run.returncode == 0, run.stderr
    done = json.loads(run.stdout)
    assert (done["rows_out"], done["rows_dead"]) == (49, 11)

    sql = "select count(*) as n, count(distinct id) as ids, sum(n) as total from results"
    for attempt in range(5):
        proc = _skybatch("results", "s3res-1", "--store", s3_store_url, "--sql", sql,
                         "--json", cwd=tmp_path)  # fmt: skip
        assert proc.returncode == 0, f"attempt {attempt}: {proc.returncode} {proc.stderr}"
        assert "Traceback" not in proc.stderr
    answer = json.loads(proc.stdout)
    expected_total = sum(i % 5 + 1 for i in range(50) if i != 7)
    assert answer["rows"] == [{"n": 49, "ids": 49, "total": expected_total}]

    for attempt in range(3):
        out = tmp_path / f"export-{attempt}.parquet"
        proc = _skybatch("results", "s3res-1", "--store", s3_store_url, "--export", str(out),
                         cwd=tmp_path)  # fmt: skip
        assert proc.returncode == 0, f"attempt {attempt}: {proc.returncode} {proc.stderr}"
        table = pq.read_table(out)
        ids = table.column("id").to_pylist()
        assert len(ids) == len(set(ids)) == 49
        assert set(ids) == {f"r{i:03d}" for i in range(50)} - {"r007"}


@pytest.mark.slow
def test_all_dead_first_shards_keep_the_columns_and_the_sandbox_holds(
    tmp_path: Path, s3_store_url: str
) -> None:
    import duckdb

    from scheduler.results import connect_results
    from scheduler.store import RunStore

    # the first 70 shards (more than a schema sample) hold only dead rows, so their
    # outputs have no `n` column
    texts = ["bad" if i < 70 else "x" * (i % 5 + 1) for i in range(80)]
    _write_run(tmp_path, "s3dead", texts, rows_per_shard=1)
    run = _skybatch("run", "r.yaml", "--store", s3_store_url, "--run-id", "s3dead-1",
                    "--no-progress", cwd=tmp_path)  # fmt: skip
    assert run.returncode == 0, run.stderr
    store = RunStore(s3_store_url, "s3dead-1")
    con = connect_results(store, sandbox=True)
    got = con.execute("select count(*), sum(n) from results where n is not null").fetchone()
    assert got == (10, sum(i % 5 + 1 for i in range(70, 80)))
    with pytest.raises(duckdb.Error):
        con.execute(f"copy (select * from results) to '{tmp_path / 'leak.csv'}'")
    assert not (tmp_path / "leak.csv").exists()


@pytest.mark.slow
def test_results_download_each_output_once_and_refuse_a_changed_one(
    tmp_path: Path, s3_server: S3Server, s3_store_url: str
) -> None:
    import boto3

    texts = ["bad" if i in (3, 31) else "x" * (i % 5 + 1) for i in range(40)]
    _write_run(tmp_path, "s3once", texts, rows_per_shard=10)
    run = _skybatch("run", "r.yaml", "--store", s3_store_url, "--run-id", "s3once-1",
                    "--no-progress", cwd=tmp_path)  # fmt: skip
    assert run.returncode == 0, run.stderr
    bucket = s3_store_url.split("/")[2]
    port = int(s3_server.endpoint_url.rsplit(":", 1)[1])
    proxy = FaultProxy(port)  # counts the requests `skybatch results` makes
    env = {**os.environ, "AWS_ENDPOINT_URL": proxy.endpoint}
    try:
        sql = "select count(*) as n, sum(n) as total from results"
        proc = _skybatch("results", "s3once-1", "--store", s3_store_url, "--sql", sql, "--json",
                         cwd=tmp_path, env=env)  # fmt: skip
        assert proc.returncode == 0, proc.stderr
        expected_total = sum(i % 5 + 1 for i in range(40) if i not in (3, 31))
        assert json.loads(proc.stdout)["rows"] == [{"n": 38, "total": expected_total}]
        reads = Counter(
            (method, path.rsplit("/", 1)[-1])
            for method, path in proxy.requests
            if method in ("GET", "HEAD") and "/out/" in path
        )
        outputs = {name for _, name in reads}
        assert len(outputs) == 4  # one output file per shard
        # verified and queried from one download each: no second GET, no HEAD
        assert reads == Counter({("GET", name): 1 for name in outputs}), reads

        # a changed output (same size) is refused, exit 3, and never served
        s3 = boto3.client("s3", endpoint_url=s3_server.endpoint_url)
        key = next(
            o["Key"] for o in s3.list_objects_v2(Bucket=bucket)["Contents"] if "/out/" in o["Key"]
        )
        body = bytearray(s3.get_object(Bucket=bucket, Key=key)["Body"].read())
        body[len(body) // 2] ^= 0xFF
        s3.put_object(Bucket=bucket, Key=key, Body=bytes(body))
        proc = _skybatch("results", "s3once-1", "--store", s3_store_url, "--sql", sql,
                         cwd=tmp_path, env=env)  # fmt: skip
        assert proc.returncode == 3, proc.stderr
        assert re.search(
            r"1 committed file\(s\) do not match their commit markers: shard \S+: "
            r"out/\S+\.parquet: content differs from the marker's sha256",
            proc.stderr,
        ), proc.stderr
        assert "Traceback" not in proc.stderr and not proc.stdout.strip()
    finally:
        proxy.close()
