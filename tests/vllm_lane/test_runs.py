"""End to end with vLLM workers on a CPU: ``skybatch run``, a SIGKILL and a resume, an
OpenAI batch file, and ``skybatch bench``, all through the ``skybatch`` command.

Every worker loads the model once (~45 s on two cores), so the module keeps its loads to
five: two workers, one resume, one OpenAI batch run, one bench.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import yaml

# Loads take ~45 s on two idle cores, minutes on a busy shared machine.
pytestmark = [pytest.mark.vllm, pytest.mark.slow, pytest.mark.timeout(1800)]

LOAD_LINE = "Starting to load model"  # vLLM logs it once per model load


def skybatch(*args: str, timeout: float = 900) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "scheduler.cli", *args],
        capture_output=True, text=True, timeout=timeout,
    )  # fmt: skip


def write_recipe(path: Path, model: Path, options: dict[str, Any], **fields: Any) -> Path:
    recipe: dict[str, Any] = {
        "name": "vllm-cpu",
        "input": {"path": "prompts.jsonl", "format": "jsonl", "id_column": "id"},
        "task": "generate",
        "model": {"engine": "vllm", "name": str(model), "options": options},
        "prompt": {"system": "Answer in one line.", "template": "Review: {text}"},
        "sampling": {"temperature": 0.0, "max_tokens": 24},
        "shards": {"rows_per_shard": 40},
        "store": str(path.parent / "runs"),
        "limits": {"retries": 2, "lease_ttl": "15s", "max_error_rate": 0.05},
        **fields,
    }
    path.write_text(yaml.safe_dump(recipe), encoding="utf-8")
    return path


def prompts(n: int, long_every: int = 0) -> list[dict[str, str]]:
    rows = []
    for i in range(n):
        text = f"parcel {i} came {'late' if i % 3 else 'early'}, box {'damp' if i % 2 else 'torn'}"
        if long_every and i % long_every == long_every - 1:
            text = "late " * 400  # > max_model_len: dead before the engine
        rows.append({"id": f"row-{i:04d}", "text": text})
    return rows


def write_jsonl(path: Path, rows: list[dict[str, Any]]) -> None:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")


def loads_per_worker(run_dir: Path) -> dict[str, int]:
    return {
        log.stem: log.read_text(errors="replace").count(LOAD_LINE)
        for log in sorted((run_dir / "logs").glob("*.log"))
    }


def test_two_workers_sigkill_mid_shard_then_resume_reconciles(
    tmp_path: Path, tiny_llama: Path, builder: Any
) -> None:
    rows = prompts(480, long_every=97)  # 12 shards; 4 prompts too long
    write_jsonl(tmp_path / "prompts.jsonl", rows)
    recipe = write_recipe(tmp_path / "r.yaml", tiny_llama, builder.CPU_OPTIONS)
    driver = subprocess.Popen(
        [sys.executable, "-m", "scheduler.cli", "run", str(recipe), "-w", "2", "--json"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True,
    )  # fmt: skip
    runs = tmp_path / "runs"
    try:
        killed_mid_shard = _wait_mid_shard(runs, driver)
    finally:
        os.killpg(driver.pid, signal.SIGKILL)  # the driver, both workers, vLLM's engines
        driver.wait()
    (run_dir,) = runs.iterdir()
    _wait_group_gone(driver.pid)
    assert sorted(loads_per_worker(run_dir).values()) == [1, 1]  # two workers, one load each
    done_before = {p.name: p.read_bytes() for p in (run_dir / "done").iterdir()}
    assert 1 <= len(done_before) < 12 and killed_mid_shard - set(done_before)

    resumed = skybatch("run", str(recipe), "-w", "1", "--json")
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    summary = json.loads(resumed.stdout)
    assert summary["state"] == "done"
    assert (summary["rows_in"], summary["rows_out"], summary["rows_dead"]) == (480, 476, 4)
    # What was committed before the kill stayed as it was; the rest was done once.
    for name, data in done_before.items():
        assert (run_dir / "done" / name).read_bytes() == data
    assert len(list((run_dir / "done").iterdir())) == 12
    export = tmp_path / "out.jsonl"
    out = skybatch("results", run_dir.name, "--store", str(runs), "--export", str(export))
    assert out.returncode == 0, out.stderr
    got = [json.loads(line) for line in export.read_text().splitlines()]
    ids = [g["id"] for g in got]
    long_ids = {r["id"] for r in rows if r["text"].startswith("late late")}
    assert len(ids) == len(set(ids)) == 476
    assert set(ids) == {r["id"] for r in rows} - long_ids
    assert all(g["finish_reason"] in ("stop", "length") for g in got)
    dead = [
        json.loads(line)
        for f in (run_dir / "dead").iterdir()
        for line in f.read_text().splitlines()
    ]
    committed_dead = {d["id"] for d in dead if d["id"] in long_ids}
    assert committed_dead == long_ids
    assert all(d["reason"].startswith("prompt too long") for d in dead if d["id"] in long_ids)


def _wait_mid_shard(runs: Path, driver: subprocess.Popen[bytes]) -> set[str]:
    """Wait until a shard is committed and another is held by a worker; return the held."""
    deadline = time.monotonic() + 600
    while time.monotonic() < deadline:
        assert driver.poll() is None, driver.stderr.read().decode()[-2000:] if driver.stderr else ""
        for run_dir in runs.glob("*/"):
            done = {p.stem for p in (run_dir / "done").glob("*.json")}
            held = {p.stem for p in (run_dir / "claims").glob("*.json")} - done
            if done and held:
                return {f"{s}.json" for s in held}
        time.sleep(0.2)
    raise AssertionError("no shard was committed within 600 s")


def _wait_group_gone(pgid: int) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            os.killpg(pgid, 0)
        except ProcessLookupError:
            return
        time.sleep(0.2)
    raise AssertionError(f"processes of group {pgid} outlived SIGKILL")


def test_openai_batch_file_through_vllm(tmp_path: Path, tiny_llama: Path, builder: Any) -> None:
    requests = [
        {
            "custom_id": f"req-{i}",
            "method": "POST",
            "url": "/v1/chat/completions",
            "body": {
                "model": "tiny",
                "messages": [
                    {"role": "system", "content": "Be brief."},
                    {"role": "user", "content": f"Is parcel {i} late?"},
                ],
                "max_tokens": 4 + i % 5,
            },
        }
        for i in range(30)
    ]
    requests[7]["body"]["messages"][1]["content"] = "late " * 400  # too long
    requests[11]["body"]["n"] = 2  # not supported: an invalid request
    write_jsonl(tmp_path / "batch.jsonl", requests)
    recipe = write_recipe(
        tmp_path / "r.yaml",
        tiny_llama,
        builder.CPU_OPTIONS,
        input={"path": "batch.jsonl", "format": "openai-batch"},
        prompt=None,
        shards={"rows_per_shard": 15},
        limits={"retries": 2, "max_error_rate": 0.1},  # 2 of 30 requests are bad
    )
    done = skybatch("run", str(recipe), "--json")
    assert done.returncode == 0, done.stderr[-2000:]
    summary = json.loads(done.stdout)
    assert (summary["rows_in"], summary["rows_out"], summary["rows_dead"]) == (30, 28, 2)
    out = tmp_path / "out.jsonl"
    exported = skybatch(
        "results", summary["run_id"], "--store", summary["store"], "--export", str(out),
        "--format", "openai-batch",
    )  # fmt: skip
    assert exported.returncode == 0, exported.stderr
    lines = [json.loads(line) for line in out.read_text().splitlines()]
    assert len(lines) == 28
    for line in lines:
        i = int(line["custom_id"].split("-")[1])
        assert line["error"] is None and line["response"]["status_code"] == 200
        body = line["response"]["body"]
        assert body["object"] == "chat.completion"
        assert body["choices"][0]["finish_reason"] in ("stop", "length")
        assert isinstance(body["choices"][0]["message"]["content"], str)
        usage = body["usage"]
        assert 1 <= usage["completion_tokens"] <= 4 + i % 5  # the request's max_tokens
        assert usage["total_tokens"] == usage["prompt_tokens"] + usage["completion_tokens"]
    errors = [json.loads(line) for line in (tmp_path / "out.errors.jsonl").read_text().splitlines()]
    by_id = {e["custom_id"]: e for e in errors}
    assert set(by_id) == {"req-7", "req-11"}
    assert "prompt too long" in json.dumps(by_id["req-7"])
    assert "body.n must be 1" in json.dumps(by_id["req-11"])


def test_bench_records_a_cpu_figure(tmp_path: Path, tiny_llama: Path, builder: Any) -> None:
    write_jsonl(tmp_path / "prompts.jsonl", prompts(32))
    recipe = write_recipe(tmp_path / "r.yaml", tiny_llama, builder.CPU_OPTIONS)
    bench = skybatch("bench", "--recipe", str(recipe), "--rows", "32", "--json")
    assert bench.returncode == 0, bench.stderr[-2000:]
    figure = json.loads(bench.stdout)
    assert (figure["engine"], figure["accelerator"], figure["stored"]) == ("vllm", "cpu", True)
    assert figure["rows_per_s"] > 0
    import duckdb

    db = Path(os.environ["SKYBATCH_HOME"]) / "skybatch.duckdb"
    with duckdb.connect(str(db), read_only=True) as con:
        rows = con.execute(
            "SELECT accelerator, engine, kind, source FROM throughput WHERE engine = 'vllm'"
        ).fetchall()
    assert len(rows) == 1
    accelerator, engine, kind, source = rows[0]
    assert (accelerator, engine, kind) == ("cpu", "vllm", "measured")
    assert "device cpu" in source
