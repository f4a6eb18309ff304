"""Which GPUs or cores each local worker gets: detection, slices, the cap, vLLM on a CPU."""

from __future__ import annotations

import os
import socket
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest

from scheduler.backends._slots import (
    VLLM_BIND_ENV,
    WorkerSlots,
    core_bind,
    cpu_ranges,
    live_slots,
    parse_cpus,
    physical_cores,
)
from scheduler.backends.local import LocalPool
from scheduler.backends.replicas import TP_ENV, visible_gpus
from scheduler.errors import RecipeError
from scheduler.recipe import load_recipe
from scheduler.runs import prepare_run
from scheduler.store import Heartbeat
from scheduler.worker import SLOT_ENV, Worker

VLLM = {"model": {"engine": "vllm", "name": "m", "options": {}}}


def _smi(tmp: Path, script: str) -> dict[str, str]:
    """An environment whose PATH finds a stand-in ``nvidia-smi`` running ``script``."""
    (tmp / "bin").mkdir(exist_ok=True)
    smi = tmp / "bin" / "nvidia-smi"
    smi.write_text("#!/bin/sh\n" + script + "\n")
    smi.chmod(smi.stat().st_mode | stat.S_IXUSR)
    return {"PATH": str(tmp / "bin")}


def test_the_users_cuda_visible_devices_wins_as_cuda_reads_it(tmp_path: Path) -> None:
    env = _smi(tmp_path, "printf '0\\n1\\n2\\n3\\n'")
    assert visible_gpus({**env, "CUDA_VISIBLE_DEVICES": "5, 7,"}) == ["5", "7"]
    assert visible_gpus({**env, "CUDA_VISIBLE_DEVICES": "GPU-a1,GPU-b2"}) == ["GPU-a1", "GPU-b2"]
    # CUDA stops at the first negative entry: -1 hides every GPU, and so does "".
    assert visible_gpus({**env, "CUDA_VISIBLE_DEVICES": "1,-1,2"}) == ["1"]
    assert visible_gpus({**env, "CUDA_VISIBLE_DEVICES": "-1"}) == []
    assert visible_gpus({**env, "CUDA_VISIBLE_DEVICES": ""}) == []


def test_without_it_nvidia_smi_says_and_a_missing_or_failing_one_means_no_gpu(
    tmp_path: Path,
) -> None:
    assert visible_gpus(_smi(tmp_path, "printf '0\\n1\\n'")) == ["0", "1"]
    assert visible_gpus(_smi(tmp_path, "echo 'NVIDIA-SMI has failed' >&2; exit 9")) == []
    assert visible_gpus(_smi(tmp_path, "echo 'No devices were found'")) == []
    (tmp_path / "empty").mkdir()
    assert visible_gpus({"PATH": str(tmp_path / "empty")}) == []


def test_workers_get_consecutive_slices_and_a_restart_gets_the_same_one() -> None:
    slots = WorkerSlots.detect(
        {"model": {"options": {"tensor_parallel_size": 2}}}, {}, gpus=["4", "5", "6", "7"]
    )
    assert slots.capacity == 2
    assert slots.room(2) == (2, None)
    assert slots.env_for("w0", planned=2) == {
        "CUDA_VISIBLE_DEVICES": "4,5", TP_ENV: "2", SLOT_ENV: "gpus=4,5"
    }  # fmt: skip
    assert slots.env_for("w1", planned=2) == {
        "CUDA_VISIBLE_DEVICES": "6,7", TP_ENV: "2", SLOT_ENV: "gpus=6,7"
    }  # fmt: skip
    assert slots.env_for("w0", planned=2)["CUDA_VISIBLE_DEVICES"] == "4,5"


def test_more_workers_than_slices_are_capped_with_one_line() -> None:
    slots = WorkerSlots.detect({"model": {"engine": "torch"}}, {}, gpus=["0", "1"])
    n, line = slots.room(3)
    assert n == 2
    assert line == (
        "3 workers asked for, but GPUs 0,1 hold 2 (one slice of tensor_parallel_size 1 "
        "each, never shared); starting 2"
    )
    slots.env_for("a", planned=2), slots.env_for("b", planned=2)
    # The deadline guard asking for one more later: none left.
    assert slots.room(1)[0] == 0


def test_a_slice_larger_than_the_gpus_shown_is_refused() -> None:
    recipe = {"model": {"engine": "vllm", "options": {"tensor_parallel_size": 4}}}
    with pytest.raises(
        RecipeError,
        match=r"tensor_parallel_size 4: each worker needs 4 GPUs, but this machine shows 2 \(0,1\)",
    ):
        WorkerSlots.detect(recipe, {}, gpus=["0", "1"])


def test_no_gpu_gives_torch_and_python_workers_nothing_new() -> None:
    for engine in ("torch", "python"):
        slots = WorkerSlots.detect({"model": {"engine": engine}}, {}, gpus=[], cpus=range(8))
        assert slots.capacity is None and slots.room(64) == (64, None)
        assert slots.env_for("w0", planned=4) == {}


def test_hyperthread_siblings_count_as_one_core(tmp_path: Path) -> None:
    # 2 packages × 2 cores × 2 threads, numbered as Linux does: siblings are n and n+4.
    for cpu in range(8):
        topo = tmp_path / f"cpu{cpu}" / "topology"
        topo.mkdir(parents=True)
        (topo / "physical_package_id").write_text(f"{(cpu % 4) // 2}\n")
        (topo / "core_id").write_text(f"{cpu % 2}\n")
    assert physical_cores(range(8), sys_cpu=tmp_path) == [0, 1, 2, 3]
    # No topology files: every logical CPU counts.
    assert physical_cores([3, 1], sys_cpu=tmp_path / "none") == [1, 3]


def test_cpu_lists_are_written_as_vllm_parses_them() -> None:
    assert cpu_ranges([0, 1, 2, 3, 8, 9]) == "0-3,8-9"
    assert cpu_ranges([5]) == "5"
    assert cpu_ranges([4, 2, 0]) == "0,2,4"
    assert core_bind(list(range(8)), index=1, parts=2, tp=1) == "4-7"
    assert core_bind(list(range(8)), index=0, parts=2, tp=2) == "0-1|2-3"  # "|" between ranks
    assert core_bind(list(range(3)), index=2, parts=3, tp=1) == "2"
    assert core_bind(list(range(2)), index=0, parts=3, tp=1) is None  # fewer cores than workers


def test_vllm_workers_on_a_cpu_each_bind_their_own_cores() -> None:
    slots = WorkerSlots.detect(VLLM, {}, gpus=[], cpus=range(8))
    binds = [slots.env_for(w, planned=2).get(VLLM_BIND_ENV) for w in ("w0", "w1")]
    assert binds == ["0-3", "4-7"]
    assert slots.given["w1"][SLOT_ENV] == "cpus=4-7"  # what its heartbeat will say
    # One worker: vLLM's own choice, as before.
    assert WorkerSlots.detect(VLLM, {}, gpus=[], cpus=range(8)).env_for("w", planned=1) == {}
    # A binding the user set is theirs.
    mine = WorkerSlots.detect(VLLM, {VLLM_BIND_ENV: "0-1"}, gpus=[], cpus=range(8))
    assert mine.env_for("w", planned=2) == {}
    # On GPUs the GPU slice is what counts.
    assert VLLM_BIND_ENV not in WorkerSlots.detect(VLLM, {}, gpus=["0", "1"]).env_for(
        "w", planned=2
    )


def test_the_local_pool_hands_each_vllm_worker_its_cores(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "in.jsonl").write_text('{"text": "a"}\n')
    (tmp_path / "r.yaml").write_text(
        "name: v\ninput: {path: in.jsonl}\ntask: generate\n"
        "model: {engine: vllm, name: some/model}\nstore: ./runs\n"
    )
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv(VLLM_BIND_ENV, raising=False)
    pool = LocalPool(prepare_run(load_recipe(tmp_path / "r.yaml")), gpus=[])
    pool._planned = 2  # what start(2) sets before it spawns
    binds = [pool.worker_env(w).get(VLLM_BIND_ENV) for w in ("w0", "w1")]
    cores = physical_cores(os.sched_getaffinity(0))
    if len(cores) >= 2:  # this machine: "0" and "1"
        assert None not in binds
        first, second = (parse_cpus(b or "") for b in binds)
        assert first and second and not first & second and first | second <= set(cores)
    else:
        assert binds == [None, None]


def test_slices_held_by_another_processs_workers_are_never_handed_out() -> None:
    slots = WorkerSlots.detect({"model": {"engine": "vllm"}}, {}, gpus=["0", "1", "2", "3"])
    slots.elsewhere = ["gpus=0", "gpus=1", "cpus=0-3"]  # a first pool's two workers
    assert slots.free_slices() == ["2", "3"]
    assert slots.room(2) == (2, None)
    assert [slots.env_for(w, planned=2)["CUDA_VISIBLE_DEVICES"] for w in ("a", "b")] == ["2", "3"]
    assert slots.room(1) == (
        0,
        "1 more worker(s) asked for, but GPUs 0,1,2,3 hold 4 (one slice of "
        "tensor_parallel_size 1 each, never shared) and 4 are in use by this run's live "
        "workers; starting 0",
    )
    # A slice of tensor_parallel_size 2 is free only when none of its GPUs is held.
    wide = WorkerSlots.detect(
        {"model": {"options": {"tensor_parallel_size": 2}}}, {}, gpus=["0", "1", "2", "3"]
    )
    wide.elsewhere = ["gpus=1"]
    assert wide.free_slices() == ["2,3"]
    assert wide.room(2)[0] == 1


def test_vllm_cpu_workers_of_another_pool_keep_their_cores() -> None:
    slots = WorkerSlots.detect(VLLM, {}, gpus=[], cpus=range(8))
    slots.elsewhere = ["cpus=0-1|2-3"]  # one worker of tensor_parallel_size 2 elsewhere
    # One worker added here binds the free cores, even alone.
    assert slots.env_for("w", planned=1)[VLLM_BIND_ENV] == "4-7"
    # None free: all the cores are split anew (shared, as an oversubscribed machine must).
    full = WorkerSlots.detect(VLLM, {}, gpus=[], cpus=range(4))
    full.elsewhere = ["cpus=0-3"]
    assert full.env_for("w", planned=2)[VLLM_BIND_ENV] == "0-1"


def test_cpu_bind_lists_parse_back_and_garbage_counts_for_nothing() -> None:
    assert parse_cpus("0-3|8,9") == {0, 1, 2, 3, 8, 9}
    assert parse_cpus("x,5") == {5}


def test_only_live_workers_of_this_host_hold_a_slot() -> None:
    now, me = 1000.0, os.getpid()

    def beat(wid: str, **kw: object) -> Heartbeat:
        doc = {"worker_id": wid, "host": "h", "pid": me, "last_seen": now - 1, "slot": "gpus=0"}
        return Heartbeat(**{**doc, **kw})  # type: ignore[arg-type]

    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    beats = {
        "live": beat("live"),
        "mine": beat("mine", slot="gpus=9"),  # this pool's own: it knows its slots
        "ended": beat("ended", state="stopped", slot="gpus=1"),
        "stale": beat("stale", last_seen=now - 91, slot="gpus=2"),
        "killed": beat("killed", pid=gone.pid, slot="gpus=3"),
        "other-host": beat("other-host", host="elsewhere", slot="gpus=4"),
        "unpinned": beat("unpinned", slot=None),
    }
    assert live_slots(beats, skip={"mine"}, host="h", now=now) == ["gpus=0"]


def test_the_pools_first_heartbeat_is_no_earlier_life_of_the_worker(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "in.jsonl").write_text('{"text": "a"}\n')
    (tmp_path / "r.yaml").write_text(
        "name: v\ninput: {path: in.jsonl}\ntask: generate\n"
        "model: {engine: vllm, name: some/model}\nstore: ./runs\n"
    )
    monkeypatch.chdir(tmp_path)
    store = prepare_run(load_recipe(tmp_path / "r.yaml"))
    # What LocalPool writes the moment it spawns a pinned worker: this very process.
    placeholder = {"state": "starting", "pid": os.getpid(), "host": socket.gethostname(),
                   "started_at": time.time() - 30, "slot": "gpus=0"}  # fmt: skip
    store.heartbeat("w-new", placeholder)
    monkeypatch.setenv(SLOT_ENV, "gpus=0")
    worker = Worker(store, worker_id="w-new")
    assert (worker.prior_s, worker.info.preemptions) == (0.0, 0)
    assert worker._heartbeat_doc()["slot"] == "gpus=0"  # the slot stays on record
    # Another process's heartbeat under that id is an earlier life that did not end.
    store.heartbeat("w-old", {**placeholder, "pid": os.getpid() + 100_000})
    assert Worker(store, worker_id="w-old").info.preemptions == 1


def test_the_start_phase_is_over_once_the_shards_are_done() -> None:
    """A worker can load, finish every shard and exit between two polls: no 'starting'."""
    import dataclasses

    from scheduler.backends.local import _phase
    from scheduler.store import RunStatus

    fields = {f.name: f for f in dataclasses.fields(RunStatus)}
    base = {n: 0 for n, f in fields.items() if f.type in ("int", "float")}
    status = RunStatus(
        **{**base, "run_id": "r", "recipe_name": "r", "store": "s", "backend": "local",
           "state": "running", "created_at": None, "eta_s": None, "deadline_at": None,
           "budget_usd": None, "shards_total": 2, "shards_done": 1},
    )  # fmt: skip
    assert _phase(status, "m") == "starting workers"  # nobody alive, shards left
    assert _phase(dataclasses.replace(status, shards_done=2), "m") is None
