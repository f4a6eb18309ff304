"""Local workers on a machine with GPUs: each worker process sees its own GPU slice.

This machine has no GPU, so the GPUs are what a user's ``CUDA_VISIBLE_DEVICES`` or a
stand-in ``nvidia-smi`` on PATH shows, the two things the local pool reads. The workers
are real ``skybatch run`` processes; a python-engine function records, per process, the
variables it was started with, and writes them into every output row.
"""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest

from scheduler.backends import open_backend
from scheduler.backends.local import LocalPool
from scheduler.recipe import load_recipe
from scheduler.runs import prepare_run

FN = """\
import json, os, time
from pathlib import Path

SEEN = {k: os.environ.get(k) for k in
        ("CUDA_VISIBLE_DEVICES", "SKYBATCH_TENSOR_PARALLEL_SIZE", "VLLM_CPU_OMP_THREADS_BIND")}
Path(os.environ["PROBE_DIR"], f"{os.getpid()}.json").write_text(json.dumps(SEEN))

def probe(rows, tensor_parallel_size=1, delay_s=0.0):
    time.sleep(delay_s * len(rows))
    return [{"cuda": SEEN["CUDA_VISIBLE_DEVICES"] or "", "pid": os.getpid()} for _ in rows]
"""


def _write_run(tmp: Path, *, tp: int | None, rows: int = 60, delay_s: float = 0.0) -> Path:
    (tmp / "fn.py").write_text(FN)
    (tmp / "probes").mkdir()
    with (tmp / "rows.jsonl").open("w") as f:
        for i in range(rows):
            f.write(json.dumps({"id": f"r{i:04d}", "text": f"row {i}"}) + "\n")
    opts = [f"tensor_parallel_size: {tp}"] * bool(tp) + [f"delay_s: {delay_s}"] * bool(delay_s)
    options = "{" + ", ".join(opts) + "}"
    recipe = tmp / "recipe.yaml"
    recipe.write_text(
        f"""\
name: gpus
input: {{path: rows.jsonl, id_column: id}}
task: score
model: {{engine: python, name: "fn.py:probe", batch_size: 10, options: {options}}}
shards: {{rows_per_shard: 10}}
store: ./runs
"""
    )
    return recipe


def _run(tmp: Path, recipe: Path, workers: int, **env: str) -> subprocess.CompletedProcess[str]:
    full = {k: v for k, v in os.environ.items() if k != "CUDA_VISIBLE_DEVICES"}
    full.update(env, PROBE_DIR=str(tmp / "probes"))
    return subprocess.run(
        [sys.executable, "-m", "scheduler.cli", "run", str(recipe), "-w", str(workers), "--json"],
        cwd=tmp, capture_output=True, text=True, timeout=120, env=full,
    )  # fmt: skip


def _probes(tmp: Path) -> list[dict[str, Any]]:
    return [json.loads(p.read_text()) for p in sorted((tmp / "probes").glob("*.json"))]


def _rows(tmp: Path) -> list[dict[str, Any]]:
    return [
        r for p in sorted(tmp.glob("runs/*/out/*.parquet")) for r in pq.read_table(p).to_pylist()
    ]


def test_each_worker_sees_its_own_slice_of_the_users_gpus_and_extra_workers_are_capped(
    tmp_path: Path,
) -> None:
    recipe = _write_run(tmp_path, tp=2)
    proc = _run(tmp_path, recipe, 3, CUDA_VISIBLE_DEVICES="3,5,6,7")
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["rows_out"] == 60
    # Three asked for, two fit: one line says so, and no third worker starts.
    capped = [ln for ln in proc.stderr.splitlines() if "workers asked for" in ln]
    assert capped == [
        "skybatch: 3 workers asked for, but GPUs 3,5,6,7 hold 2 (one slice of "
        "tensor_parallel_size 2 each, never shared); starting 2"
    ]
    seen = _probes(tmp_path)
    assert sorted(p["CUDA_VISIBLE_DEVICES"] for p in seen) == ["3,5", "6,7"]
    assert {p["SKYBATCH_TENSOR_PARALLEL_SIZE"] for p in seen} == {"2"}
    # Every row was inferred by a process that saw only its own slice.
    assert {r["cuda"] for r in _rows(tmp_path)} <= {"3,5", "6,7"}


def test_gpus_from_nvidia_smi_give_one_gpu_per_worker(tmp_path: Path) -> None:
    recipe = _write_run(tmp_path, tp=None)
    bindir = tmp_path / "bin"
    bindir.mkdir()
    smi = bindir / "nvidia-smi"
    smi.write_text("#!/bin/sh\nprintf '0\\n1\\n'\n")
    smi.chmod(smi.stat().st_mode | stat.S_IXUSR)
    path = os.pathsep.join([str(bindir), os.environ["PATH"]])
    proc = _run(tmp_path, recipe, 2, PATH=path)
    assert proc.returncode == 0, proc.stderr
    assert "asked for" not in proc.stderr
    assert sorted(p["CUDA_VISIBLE_DEVICES"] for p in _probes(tmp_path)) == ["0", "1"]


def test_no_gpu_leaves_the_workers_environment_alone(tmp_path: Path) -> None:
    recipe = _write_run(tmp_path, tp=2)
    empty = tmp_path / "nobin"
    empty.mkdir()
    # No CUDA_VISIBLE_DEVICES and no nvidia-smi: this machine as it is.
    path = os.pathsep.join([str(empty), os.path.dirname(sys.executable)])
    proc = _run(tmp_path, recipe, 3, PATH=path)
    assert proc.returncode == 0, proc.stderr
    seen = _probes(tmp_path)
    assert len(seen) == 3
    assert all(v is None for p in seen for v in p.values())


def test_a_slice_larger_than_the_gpus_shown_is_one_line_and_exit_2(tmp_path: Path) -> None:
    recipe = _write_run(tmp_path, tp=2)
    proc = _run(tmp_path, recipe, 1, CUDA_VISIBLE_DEVICES="0")
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines() == [
        "skybatch: error: model.options.tensor_parallel_size 2: each worker needs 2 GPUs, "
        "but this machine shows 1 (0); lower it, or run where more GPUs are visible"
    ]
    assert json.loads(proc.stdout)["exit_code"] == 2
    assert _probes(tmp_path) == []


def _cuda_of(pid: int) -> str | None:
    """The CUDA_VISIBLE_DEVICES process ``pid`` was started with (Linux's /proc)."""
    raw = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
    found = [v for v in raw if v.startswith(b"CUDA_VISIBLE_DEVICES=")]
    return found[0].split(b"=", 1)[1].decode() if found else None


@pytest.mark.skipif(not Path("/proc/self/environ").exists(), reason="reads /proc/PID/environ")
def test_a_second_pool_of_the_run_takes_only_the_slices_no_live_worker_holds(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # Slow rows: the workers stay busy (and their slices held) for the whole test.
    recipe = _write_run(tmp_path, tp=None, rows=2000, delay_s=0.1)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "0,1,2,3")
    monkeypatch.setenv("PROBE_DIR", str(tmp_path / "probes"))
    store = prepare_run(load_recipe(recipe))
    first = LocalPool(store)  # the driver: `launch --backend local` or `run`
    try:
        first.start(2)
        # Recorded the moment they spawned, before either worker could say so itself.
        assert sorted(str(b.slot) for b in store.workers().values()) == ["gpus=0", "gpus=1"]
        # What `watch` opens for its deadline guard: a pool of its own, in another process.
        with open_backend(store) as backend:
            assert backend.add(2, spot=True) == 2
            pool = backend.pool  # type: ignore[attr-defined]
            seen = {w: _cuda_of(p.popen.pid) for w, p in {**first.procs, **pool.procs}.items()}
            assert sorted(map(str, seen.values())) == ["0", "1", "2", "3"]
            assert backend.add(1, spot=True) == 0
            line = (
                "1 more worker(s) asked for, but GPUs 0,1,2,3 hold 4 (one slice of "
                "tensor_parallel_size 1 each, never shared) and 4 are in use by this run's "
                "live workers; starting 0"
            )
            assert capsys.readouterr().err.splitlines() == [f"skybatch: {line}"]
            capped = [e["message"] for e in store.events() if e["kind"] == "workers_capped"]
            assert capped == [line]
            # A worker whose process is gone holds nothing: its slice goes to the next add.
            victim = next(p for p in first.procs.values() if _cuda_of(p.popen.pid) == "1")
            victim.popen.kill()
            victim.popen.wait()
            (added,) = pool.add(1)
            assert _cuda_of(pool.procs[added].popen.pid) == "1"
    finally:
        first.stop(timeout_s=10)


def test_launch_records_the_workers_that_started_not_the_number_asked_for(
    tmp_path: Path,
) -> None:
    import pricing

    _write_run(tmp_path, tp=None)
    full = {k: v for k, v in os.environ.items() if k != "CUDA_VISIBLE_DEVICES"}
    full.update(CUDA_VISIBLE_DEVICES="0,1", PROBE_DIR=str(tmp_path / "probes"))
    proc = subprocess.run(
        [sys.executable, "-m", "scheduler.cli", "launch", "recipe.yaml", "--backend", "local",
         "--yes", "--json", "--workers", "3", "--run-id", "capped"],
        cwd=tmp_path, capture_output=True, text=True, timeout=120, env=full,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert "3 workers asked for, but GPUs 0,1 hold 2" in proc.stderr
    assert json.loads(proc.stdout.strip().splitlines()[-1])["workers"] == 2
    with pricing.connect(read_only=True) as con:
        row = con.execute("SELECT workers FROM run_history WHERE run_id = 'capped'").fetchone()
    assert row == (2,)
