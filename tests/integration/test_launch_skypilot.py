"""``skybatch launch`` against the real SkyPilot SDK, offline.

* ``--dry-run`` for every shipped cloud recipe: each worker's task YAML passes SkyPilot's
  own schema validation and ``sky.Task.from_yaml_str`` (with the planned candidates, spot
  and recovery settings), and a planted secret never shows up.
* A real launch on this machine (no cloud credentials): the one-line "run `sky check`"
  answer comes back with exit code 5 and no traceback, without starting an API server
  (SkyPilot's cache and its own credential check say no cloud), and exactly the same
  through SkyPilot's local API server when an endpoint is set: started under a spinner,
  ports taken for a moment retried, and stopped again. A cached enabled cloud or a
  running server always goes to the server.

SkyPilot validates candidates against its catalog (``~/.sky/catalogs/v8/<cloud>/vms.csv``),
which it downloads on first use; there is no network here, so :func:`sky_catalog` writes
that file from the shipped price snapshot, which was taken from the same catalog.
"""

from __future__ import annotations

import csv
import json
import logging
import os
import re
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from scheduler.cli import main

REPO = Path(__file__).resolve().parents[2]
PRICES = REPO / "pricing" / "data" / "gpu_prices.csv"
TOKEN = "hf_PLANTEDtoken0123456789abcdef"
OTHER = "sk-PLANTEDother0123456789"
CLOUD_RECIPES = sorted(
    p
    for p in (REPO / "recipes").glob("*.yaml")
    if "://" in str((yaml.safe_load(p.read_text()) or {}).get("store", ""))
)
_COLUMNS = ["InstanceType", "AcceleratorName", "AcceleratorCount", "vCPUs", "MemoryGiB",
            "GpuInfo", "Price", "SpotPrice", "Region", "AvailabilityZone"]  # fmt: skip


@pytest.fixture(autouse=True)
def _leave_no_trace() -> Iterator[None]:
    """Undo what importing SkyPilot and opening s3:// inputs leave behind in this process.

    ``import sky`` adds a stderr handler to the root logger; a dry run may open an s3://
    input without credentials, and fsspec caches that client by its arguments, so a later
    test (a moto server) would get a client with no keys.
    """
    handlers = list(logging.getLogger().handlers)
    yield
    logging.getLogger().handlers[:] = handlers
    s3fs = pytest.importorskip("s3fs")
    s3fs.S3FileSystem.clear_instance_cache()


@pytest.fixture
def sky_catalog() -> Path:
    """SkyPilot's catalog files for every cloud of the snapshot, under the test's HOME."""
    rows = list(csv.DictReader(PRICES.open()))
    base = Path.home() / ".sky" / "catalogs" / "v8"
    for cloud in sorted({r["cloud"] for r in rows}):
        (base / cloud).mkdir(parents=True, exist_ok=True)
        with (base / cloud / "vms.csv").open("w", newline="") as f:
            w = csv.writer(f)
            w.writerow(_COLUMNS)
            for r in rows:
                if r["cloud"] != cloud:
                    continue
                acc = {"A100-40GB": "A100"}.get(r["accelerator"], r["accelerator"])
                zone = r["region"] + ("-a" if cloud == "gcp" else "a")
                w.writerow([r["instance_type"], acc, r["accelerator_count"], r["vcpus"],
                            r["memory_gib"], "", r["price_per_hour"], r["spot_price_per_hour"],
                            r["region"], zone])  # fmt: skip
    return base


def _cli(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[str, str]:
    main(argv)
    out = capsys.readouterr()
    return out.out, out.err


def test_there_are_cloud_recipes() -> None:
    assert CLOUD_RECIPES, "recipes/ ships no recipe with an object-store `store`"


@pytest.mark.parametrize("recipe", CLOUD_RECIPES, ids=lambda p: p.stem)
def test_dry_run_yaml_is_valid_skypilot(
    recipe: Path,
    sky_catalog: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import sky

    from scheduler.backends.skypilot import validate_task_config

    monkeypatch.setenv("HF_TOKEN", TOKEN)
    monkeypatch.setenv("MY_API_KEY", OTHER)
    out, err = _cli(
        ["launch", str(recipe), "--dry-run", "--json", "--secret", "MY_API_KEY"], capsys
    )
    data = json.loads(out)
    text_out, text_err = _cli(
        ["launch", str(recipe), "--dry-run", "--all", "--secret", "MY_API_KEY"], capsys
    )
    short_out, _ = _cli(["launch", str(recipe), "--dry-run", "--secret", "MY_API_KEY"], capsys)
    for stream in (out, err, text_out, text_err, short_out):
        assert TOKEN not in stream and OTHER not in stream
    plan = data["plan"]
    # The short form: each distinct task once (one here), header and table as comments.
    (short,) = short_out.split("---\n")
    assert short.startswith("# skybatch launch --dry-run")
    assert short.rstrip().endswith(("yes", "no"))
    validate_task_config(yaml.safe_load(short))
    sky.Task.from_yaml_str(short)
    docs_text = text_out.split("---\n")
    assert len(docs_text) == plan["workers"] == len(list(yaml.safe_load_all(text_out)))
    planned = {(o["cloud"], o["region"], o["instance_type"]) for o in plan["offerings"]}
    for i, doc_text in enumerate(docs_text):
        doc: dict[str, Any] = yaml.safe_load(doc_text)
        validate_task_config(doc)  # SkyPilot's task + resources JSON schemas
        # launchable as printed: the shipped code is on disk, and setup installs that file
        [(remote, source)] = doc["file_mounts"].items()
        assert Path(source).is_file() and remote in doc["setup"]
        assert doc["envs"]["SKYBATCH_WORKER_INDEX"] == str(i)
        assert doc["secrets"] == {
            "HF_TOKEN": "<redacted: from $HF_TOKEN at launch>",
            "MY_API_KEY": "<redacted: from $MY_API_KEY at launch>",
        }
        task = sky.Task.from_yaml_str(doc_text)
        resources = list(task.resources)
        seen = {(str(r.cloud).lower(), r.region, r.instance_type) for r in resources}
        assert seen == planned
        for r in resources:
            assert r.use_spot is plan["spot"]
            assert r.job_recovery == {
                "strategy": "EAGER_NEXT_REGION",
                "max_restarts_on_errors": 0,  # the budget is counted in the store
                "recover_on_exit_codes": [3, 75],
            }
            assert r.accelerators is not None
            assert sum(r.accelerators.values()) == plan["accelerators_per_worker"]


def _api_servers(port: int) -> list[int]:
    import psutil

    found = []
    for proc in psutil.process_iter(attrs=["pid", "cmdline"]):
        cmd = " ".join(proc.info["cmdline"] or [])
        if "sky.server.server" in cmd and f"--port={port}" in cmd:
            found.append(proc.info["pid"])
    return found


def _server_log(tmp_path: Path) -> str:
    """The tail of the test's API server log, for a failure message."""
    log = tmp_path / "sky-runtime" / ".sky" / "api_server" / "server.log"
    return log.read_text(errors="replace")[-3000:] if log.exists() else "(no server.log)"


def _through_the_server(port: int) -> dict[str, str]:
    """An endpoint set in the environment, even the local one, always goes to the server:
    how these tests reach the server path on a machine without a cloud."""
    return {"SKYPILOT_API_SERVER_ENDPOINT": f"http://127.0.0.1:{port}"}


def _launch_argv(tmp_path: Path, port: int, **extra_env: str) -> tuple[list[str], dict[str, str]]:
    (tmp_path / "r.yaml").write_text(
        "name: cloudy\n"
        'input: {path: "s3://bucket/in.jsonl", id_column: id}\n'
        "task: score\n"
        'model: {engine: python, name: "fn.py:f"}\n'
        "store: s3://bucket/runs\n"
    )
    env = {
        **os.environ,
        "HF_TOKEN": TOKEN,
        # An API server of our own: its port and runtime folder are this test's alone.
        "SKYPILOT_API_SERVER_LOCAL_PORT": str(port),
        "SKY_RUNTIME_DIR": str(tmp_path / "sky-runtime"),
        **extra_env,
    }
    argv = [sys.executable, "-m", "scheduler.cli", "launch", "r.yaml", "--gpu", "L4",
            "--workers", "2", "--yes"]  # fmt: skip
    return argv, env


def _offline_launch(
    tmp_path: Path, port: int, **extra_env: str
) -> tuple[subprocess.CompletedProcess[str], float]:
    argv, env = _launch_argv(tmp_path, port, **extra_env)
    started = time.monotonic()
    proc = subprocess.run(argv, cwd=tmp_path, env=env, capture_output=True, text=True,
                          timeout=400)  # fmt: skip
    return proc, time.monotonic() - started


NO_CLOUD = (
    "skybatch: error: no cloud is enabled for SkyPilot: run `sky check` to set up "
    "credentials, or run on this machine with `skybatch run RECIPE`"
)


@pytest.mark.slow
@pytest.mark.parametrize("path", ["without a server", "through the server"])
def test_launch_without_a_cloud_says_so_in_one_line(
    tmp_path: Path, sky_api_port: int, path: str
) -> None:
    port = sky_api_port
    server = path == "through the server"
    proc, elapsed = _offline_launch(tmp_path, port, **(_through_the_server(port) if server else {}))
    lines = [ln for ln in proc.stderr.splitlines() if ln.strip()]
    assert proc.returncode == 5, proc.stderr + _server_log(tmp_path)
    assert lines[-1] == NO_CLOUD, _server_log(tmp_path)
    assert "Traceback" not in proc.stderr and proc.stdout == ""
    assert len(lines) <= 2  # the plan line, then the answer
    # Through the server: 10-70 s on a loaded 2-core machine (SkyPilot starts its API
    # server, a process per queue). Without: import sky and SkyPilot's check, ~5 s
    # (benchmarks/bench_no_cloud.py has the figures).
    assert elapsed < 300
    log = tmp_path / "sky-runtime" / ".sky" / "api_server" / "server.log"
    assert log.exists() is server, proc.stderr  # the fast answer starts no server
    assert _api_servers(port) == []
    for stream in (proc.stdout, proc.stderr):
        assert TOKEN not in stream
    for root in (Path(os.environ["HOME"]), tmp_path):
        for path in root.rglob("*"):
            if path.is_file() and path.stat().st_size < 50_000_000:
                assert TOKEN.encode() not in path.read_bytes(), path


@pytest.mark.slow
def test_a_terminal_sees_a_spinner_while_skypilot_starts(tmp_path: Path, sky_api_port: int) -> None:
    port = sky_api_port
    # FORCE_COLOR makes rich treat the piped stderr as a terminal.
    proc, _elapsed = _offline_launch(tmp_path, port, FORCE_COLOR="1", **_through_the_server(port))
    assert proc.returncode == 5, proc.stderr + _server_log(tmp_path)
    plain = re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", proc.stderr)
    assert "Checking which clouds SkyPilot can use..." in plain
    assert "Starting SkyPilot (its local API server may take a few seconds)..." in plain
    assert plain.rstrip().splitlines()[-1].strip() == NO_CLOUD
    assert "Traceback" not in plain
    assert _api_servers(port) == []


@pytest.mark.slow
@pytest.mark.parametrize("which", ["server", "queue manager"])
def test_a_port_taken_for_a_moment_is_retried(
    tmp_path: Path, sky_api_port: int, sky_queue_port_of: Callable[[int], int], which: str
) -> None:
    """A port the server needs is held (bound, not listening) until the first server gives up.

    The queue manager's port is derived from the server's and lies in the ephemeral range:
    CI once lost it to another connection.
    """
    port = sky_api_port
    held, says = (
        (port, "is not available")
        if which == "server"
        else (sky_queue_port_of(port), "is already in use by another process")
    )
    log = tmp_path / "sky-runtime" / ".sky" / "api_server" / "server.log"
    argv, env = _launch_argv(tmp_path, port, **_through_the_server(port))
    holder = socket.socket()
    holder.bind(("127.0.0.1", held))
    try:
        proc = subprocess.Popen(argv, cwd=tmp_path, env=env, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True)  # fmt: skip
        deadline = time.monotonic() + 200
        while says not in (log.read_text() if log.exists() else ""):
            assert proc.poll() is None and time.monotonic() < deadline, _server_log(tmp_path)
            time.sleep(0.05)
    finally:
        holder.close()
    out, err = proc.communicate(timeout=400)
    assert proc.returncode == 5, err + _server_log(tmp_path)
    assert [ln for ln in err.splitlines() if ln.strip()][-1] == NO_CLOUD
    assert out == "" and "Traceback" not in err
    assert _api_servers(port) == []


@pytest.mark.slow
def test_a_port_another_program_holds_is_named(tmp_path: Path, sky_api_port: int) -> None:
    port = sky_api_port
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", port))
        proc, _elapsed = _offline_launch(tmp_path, port, **_through_the_server(port))
    lines = [ln for ln in proc.stderr.splitlines() if ln.strip()]
    assert proc.returncode == 5
    assert lines[-1] == (
        f"skybatch: error: SkyPilot's API server did not start: port {port} is in use by "
        "another program; stop it, or move SkyPilot's local server (and the queue port it "
        "derives) with SKYPILOT_API_SERVER_LOCAL_PORT"
    )
    assert len(lines) <= 2 and "Traceback" not in proc.stderr


def test_the_task_run_command_runs_a_worker_where_it_landed(tmp_path: Path) -> None:
    """The exact ``run:`` script of a built task, executed by bash, runs a real worker."""
    from scheduler.backends.skypilot import build_worker_job
    from scheduler.recipe import recipe_from_dict
    from scheduler.runs import prepare_run
    from scheduler.store import LaunchOption, Offering

    (tmp_path / "fn.py").write_text("def f(rows):\n    return [{'n': 1} for _ in rows]\n")
    (tmp_path / "rows.jsonl").write_text(
        "".join(json.dumps({"id": f"r{i}", "text": "t"}) + "\n" for i in range(6))
    )
    recipe = recipe_from_dict(
        {
            "name": "landed",
            "input": {"path": str(tmp_path / "rows.jsonl"), "id_column": "id"},
            "task": "score",
            "model": {"engine": "python", "name": f"{tmp_path / 'fn.py'}:f"},
            "shards": {"rows_per_shard": 3},
        }
    )
    store_url = str(tmp_path / "store with 'quotes' & spaces")
    store = prepare_run(recipe, store_url=store_url)
    option = LaunchOption(
        "L4",
        spot=True,
        offerings=(
            Offering("aws", "us-east-1", "g6.xlarge", 0.4),
            Offering("gcp", "us-east4", "g2-standard-4", 0.3),
        ),
    )
    job = build_worker_job(
        recipe=recipe, run_id=store.run_id, store_url=store_url, worker_index=0, option=option
    )
    env = {
        **os.environ,
        **job.config["envs"],
        "SKYPILOT_CLUSTER_INFO": json.dumps({"cloud": "GCP", "region": "us-east4"}),
    }
    # as SkyPilot does before run: the task's file_mounts land under the VM's home
    for remote, local in job.config["file_mounts"].items():
        target = Path(os.path.expanduser(remote))
        if not target.exists():
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy(local, target)
    # an earlier incarnation of w0 vanished mid-shard: SkyPilot recovered the job
    store.heartbeat("w0", {"state": "running", "preemptions": 0})
    proc = subprocess.run(["bash", "-c", job.config["run"]], env=env, cwd=tmp_path,
                          capture_output=True, text=True, timeout=300)  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert len(store.done_shards()) == 2
    beat = store.workers()["w0"]
    assert beat.preemptions == 1
    assert (beat.cloud, beat.region, beat.usd_per_hour, beat.spot) == (
        "gcp",
        "us-east4",
        0.3,
        True,
    )


def test_launched_jobs_are_recorded_in_the_store_and_duckdb(tmp_path: Path) -> None:
    import pricing
    from scheduler.backends.skypilot import build_worker_job, job_statuses, record_jobs
    from scheduler.recipe import recipe_from_dict
    from scheduler.store import LaunchOption, RunStore

    recipe = recipe_from_dict(
        {
            "name": "rec",
            "input": {"path": "s3://b/x.jsonl"},
            "task": "score",
            "model": {"engine": "python", "name": "m:f"},
        }
    )
    store = RunStore(str(tmp_path), "rec-1")
    option = LaunchOption("L4", spot=True)
    jobs = [
        build_worker_job(
            recipe=recipe, run_id="rec-1", store_url="s3://b/r", worker_index=i, option=option
        )
        for i in range(2)
    ]
    record_jobs(store, jobs, {"w0": 17, "w1": 18}, spot=True)
    doc = store.read_meta("jobs")
    assert {w: d["job_id"] for w, d in doc["workers"].items()} == {"w0": 17, "w1": 18}
    rows = pricing.list_jobs("rec-1")
    assert [(r["worker_index"], r["job_id"]) for r in rows] == [(0, "17"), (1, "18")]
    # a store without jobs asks SkyPilot nothing
    assert job_statuses(RunStore(str(tmp_path), "other")) == []


@pytest.mark.slow
def test_an_api_server_the_user_started_is_left_running(tmp_path: Path, sky_api_port: int) -> None:
    port = sky_api_port
    env = {**os.environ, "SKYPILOT_API_SERVER_LOCAL_PORT": str(port),
           "SKY_RUNTIME_DIR": str(tmp_path / "sky-runtime")}  # fmt: skip
    start = "from sky.server import common; common.check_server_healthy_or_start_fn()"
    subprocess.run([sys.executable, "-c", start], env=env, check=True, timeout=300,
                   capture_output=True)  # fmt: skip
    try:
        assert _api_servers(port)
        proc, _elapsed = _offline_launch(tmp_path, port)
        assert proc.returncode == 5 and proc.stderr.splitlines()[-1] == NO_CLOUD
        assert _api_servers(port), "skybatch stopped an API server it did not start"
    finally:
        stop = "from sky.client import sdk; sdk.api_stop()"
        subprocess.run([sys.executable, "-c", stop], env=env, timeout=120, capture_output=True)
    assert _api_servers(port) == []


def test_a_server_that_dies_is_explained_from_its_log(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from scheduler.backends.skypilot import _session as sp

    monkeypatch.setenv("SKY_RUNTIME_DIR", str(tmp_path))
    died = RuntimeError(
        "SkyPilot API server process exited unexpectedly.\n"
        "View logs at: ~/.sky/api_server/server.log"
    )
    flat = "SkyPilot API server process exited unexpectedly. View logs at: ~/.sky/api_server/server.log"
    assert sp._why(died) == flat  # no log yet: SkyPilot's words
    log = tmp_path / ".sky" / "api_server" / "server.log"
    log.parent.mkdir(parents=True)
    log.write_text("INFO: Initializing\nTraceback (most recent call last):\n  ...\n"
                   "sqlite3.OperationalError: database is locked\n\n")  # fmt: skip
    assert sp._why(died) == f"{flat} The log ends: sqlite3.OperationalError: database is locked"
    assert sp._why(ValueError("bad\nthing")) == "bad thing"  # other errors: unchanged

    calls: list[int] = []

    def dies_twice() -> None:
        calls.append(1)
        raise died

    monkeypatch.setattr(sp.time, "sleep", lambda _s: None)
    with pytest.raises(RuntimeError):
        sp._start_server_retrying_taken_ports(dies_twice)
    assert len(calls) == 1  # a server that died of something else would only die again
    taken = {
        "46580": "ERROR:__main__:Port 46580 is not available, exiting.\n"
        "RuntimeError: Port 46580 is not available\n",
        # the queue manager's port, derived from the server's (the failure CI saw)
        "51130": "RuntimeError: SkyPilot API server fails to start as port 51130 is already "
        "in use by another process.\n",
    }
    for port, text in taken.items():
        log.write_text(text)
        calls.clear()
        with pytest.raises(RuntimeError):
            sp._start_server_retrying_taken_ports(dies_twice)
        assert len(calls) == 3  # a taken port: two retries, not a loop
        assert port in sp._why(died) and "is in use by another program" in sp._why(died)

    def dies_once() -> None:
        calls.append(1)
        if len(calls) == 1:
            raise died

    calls.clear()
    sp._start_server_retrying_taken_ports(dies_once)
    assert len(calls) == 2

    def refuses() -> None:
        calls.append(1)
        raise PermissionError("not allowed")

    calls.clear()
    with pytest.raises(PermissionError):
        sp._start_server_retrying_taken_ports(refuses)
    assert len(calls) == 1  # only a server that died is retried


_PROBES = """
import json
from sky import check, global_user_state
from sky.clouds.cloud import CloudCapability
from scheduler.backends.skypilot._offline import no_cloud_can_be_enabled

def raises(*args, **kwargs):
    raise RuntimeError("SkyPilot changed")

def exits(*args, **kwargs):
    raise SystemExit(1)

out = {"nothing enabled": no_cloud_can_be_enabled()}
real_cache, real_check = global_user_state.get_cached_enabled_clouds, check.check_capability
for name, fake in {"cache raises": raises, "cache is a string": lambda *a: "AWS",
                   "cache is None": lambda *a: None}.items():
    global_user_state.get_cached_enabled_clouds = fake
    out[name] = no_cloud_can_be_enabled()
global_user_state.get_cached_enabled_clouds = real_cache
for name, fake in {"check exits": exits, "check raises": raises,
                   "check is a list": lambda *a, **k: []}.items():
    check.check_capability = fake
    out[name] = no_cloud_can_be_enabled()
check.check_capability = real_check
# As `sky check` records an enabled cloud, with SkyPilot's own function.
global_user_state.set_enabled_clouds(["AWS"], CloudCapability.COMPUTE, "default")
out["aws cached"] = no_cloud_can_be_enabled()
print(json.dumps(out))
"""


@pytest.mark.slow
def test_only_a_sure_no_goes_without_the_server(tmp_path: Path, sky_api_port: int) -> None:
    """Whatever SkyPilot's internals do unexpectedly, and a cached cloud, mean "ask the server"."""
    _argv, env = _launch_argv(tmp_path, sky_api_port)
    proc = subprocess.run([sys.executable, "-c", _PROBES], env=env, capture_output=True,
                          text=True, timeout=300)  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    got = json.loads(proc.stdout.splitlines()[-1])
    assert got == {
        "nothing enabled": True,
        "cache raises": False,
        "cache is a string": False,
        "cache is None": False,
        "check exits": False,
        "check raises": False,
        "check is a list": False,
        "aws cached": False,
    }
    # A fresh SkyPilot state: an endpoint set (even the local one) means "ask its server";
    # the same state without it is a sure no.
    fresh = {**env, "SKY_RUNTIME_DIR": str(tmp_path / "fresh-runtime")}
    probe = (
        "from scheduler.backends.skypilot._offline import no_cloud_can_be_enabled as f; print(f())"
    )
    answers = []
    for extra in (_through_the_server(sky_api_port), {}):
        proc = subprocess.run([sys.executable, "-c", probe], env={**fresh, **extra},
                              capture_output=True, text=True, timeout=300)  # fmt: skip
        answers.append(proc.stdout.strip() or proc.stderr)
    assert answers == ["False", "True"]
    assert _api_servers(sky_api_port) == []


_ENABLED = """
import json
from sky import global_user_state
from sky.clouds.cloud import CloudCapability
from scheduler.backends.skypilot import SkyPilotSession

global_user_state.set_enabled_clouds(["AWS"], CloudCapability.COMPUTE, "default")
with SkyPilotSession(cloud_required=True) as session:
    print(json.dumps({"started_server": session.started_server}))
"""


@pytest.mark.slow
def test_a_cached_enabled_cloud_goes_to_the_server(tmp_path: Path, sky_api_port: int) -> None:
    _argv, env = _launch_argv(tmp_path, sky_api_port)
    proc = subprocess.run([sys.executable, "-c", _ENABLED], env=env, capture_output=True,
                          text=True, timeout=400)  # fmt: skip
    assert proc.returncode == 0, proc.stderr + _server_log(tmp_path)
    assert json.loads(proc.stdout.splitlines()[-1]) == {"started_server": True}
    assert (tmp_path / "sky-runtime" / ".sky" / "api_server" / "server.log").exists()
    assert _api_servers(sky_api_port) == []
