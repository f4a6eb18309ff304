"""The launch, watch and cancel commands through the real CLI (no cloud needed)."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from scheduler.errors import BudgetError, DeadlineMissed, LaunchError, PlanError, StoreError
from scheduler.store import RunStore

REPO = Path(__file__).resolve().parents[2]


def _cli(*args: str, cwd: Path, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "scheduler.cli", *args],
        cwd=cwd, capture_output=True, text=True, timeout=timeout, env=os.environ.copy(),
    )  # fmt: skip


def _recipe(tmp: Path, *, store: str = "./runs", rows: int = 12, delay_s: float = 0.0) -> Path:
    (tmp / "fn.py").write_text(
        "import time\n\ndef f(rows, delay_s=0.0):\n"
        "    time.sleep(delay_s * len(rows))\n"
        "    return [{'n': len(r['text'])} for r in rows]\n"
    )
    with (tmp / "rows.jsonl").open("w") as f:
        for i in range(rows):
            f.write(json.dumps({"id": f"r{i}", "text": f"text {i}"}) + "\n")
    path = tmp / "recipe.yaml"
    path.write_text(
        "name: fl\ninput: {path: rows.jsonl, id_column: id}\ntask: score\n"
        f'model: {{engine: python, name: "fn.py:f", batch_size: 2, options: {{delay_s: {delay_s}}}}}\n'
        f"shards: {{rows_per_shard: 2}}\nstore: {store}\nschedule: {{clouds: [aws, gcp]}}\n"
    )
    return path


@pytest.mark.parametrize("command", ["launch", "watch", "cancel"])
def test_commands_have_help_with_an_example(command: str, tmp_path: Path) -> None:
    proc = _cli(command, "--help", cwd=tmp_path)
    assert proc.returncode == 0
    assert "Example" in proc.stdout and f"skybatch {command}" in proc.stdout


@pytest.mark.slow
def test_dry_run_prints_a_header_each_distinct_task_once_and_a_worker_table(
    tmp_path: Path,
) -> None:
    _recipe(tmp_path, store="s3://bucket/runs")
    args = ("launch", "recipe.yaml", "--dry-run", "--gpu", "L4", "--workers", "3")
    proc = _cli(*args, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    head = proc.stdout.split("\nname: ", 1)[0].splitlines()
    assert all(line.startswith("#") for line in head)
    assert any(line.startswith("# plan     3× L4") for line in head)
    assert any(re.match(r"# run id   fl-[0-9a-f]{10}$", line) for line in head)
    (doc,) = list(yaml.safe_load_all(proc.stdout))  # three workers, one task
    assert doc["envs"]["SKYBATCH_WORKER_INDEX"] == "0"
    table = proc.stdout.rsplit("# worker", 1)[1].splitlines()[1:]
    assert [line.split()[1] for line in table] == ["w0", "w1", "w2"]
    every = _cli(*args, "--all", cwd=tmp_path)
    docs = list(yaml.safe_load_all(every.stdout))
    assert [d["envs"]["SKYBATCH_WORKER_INDEX"] for d in docs] == ["0", "1", "2"]
    assert every.stdout.count("---\n") == 2
    assert {c["infra"].split("/")[0] for c in docs[0]["resources"]["any_of"]} <= {"aws", "gcp"}
    written = sorted(p.name for p in tmp_path.iterdir() if p.name != "home")  # HOME: conftest
    assert written == ["fn.py", "recipe.yaml", "rows.jsonl"]


@pytest.mark.slow
def test_dry_run_says_why_it_has_no_run_id_instead_of_making_one_up(tmp_path: Path) -> None:
    recipe = _recipe(tmp_path, store="s3://bucket/runs")
    recipe.write_text(recipe.read_text().replace("rows.jsonl", "missing.jsonl"))
    proc = _cli("launch", "recipe.yaml", "--dry-run", "--gpu", "L4", "-w", "1", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "-dryrun" not in proc.stdout
    assert re.search(
        r"^# run id   could not be derived here: the input cannot be read \(input not found: "
        r"\S*missing.jsonl; check input.path",
        proc.stdout,
        re.M,
    )
    assert re.search(r"^#\s+the tasks say RUN-ID-NOT-DERIVED: pass --run-id ID", proc.stdout, re.M)
    data = json.loads(_cli("launch", "recipe.yaml", "--dry-run", "--gpu", "L4", "-w", "1",
                           "--json", cwd=tmp_path).stdout)  # fmt: skip
    assert data["run_id"] is None and "input not found" in data["run_id_problem"]
    proc = _cli("launch", "recipe.yaml", "--all", "--gpu", "L4", "-w", "1", cwd=tmp_path)
    assert proc.returncode == 2 and "--all goes with --dry-run" in proc.stderr


def test_cloud_launch_refuses_a_local_store(tmp_path: Path) -> None:
    _recipe(tmp_path)
    proc = _cli("launch", "recipe.yaml", "--gpu", "L4", "--workers", "1", "--yes", cwd=tmp_path)
    assert proc.returncode == StoreError.exit_code == 3
    assert re.fullmatch(
        r"skybatch: error: store \S+/runs is a local path, which cloud workers cannot reach; "
        r"give an object-store URL \(--store s3://bucket/runs or gs://bucket/runs\), or run "
        r"locally with --backend local\n",
        proc.stderr,
    )


def test_launch_without_yes_and_without_a_terminal_refuses(tmp_path: Path) -> None:
    _recipe(tmp_path)
    proc = _cli("launch", "recipe.yaml", "--backend", "local", cwd=tmp_path)
    assert proc.returncode == 2
    assert "pass --yes to launch without asking (CI)" in proc.stderr
    assert not (tmp_path / "runs").exists()


@pytest.mark.slow
def test_cancel_stops_a_local_launch_and_a_later_launch_resumes(tmp_path: Path) -> None:
    _recipe(tmp_path, rows=40, delay_s=0.5)
    args = [sys.executable, "-m", "scheduler.cli", "launch", "recipe.yaml", "--backend", "local",
            "--yes", "--json", "--run-id", "cx", "--no-guard"]  # fmt: skip
    driver = subprocess.Popen(args, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              text=True, env=os.environ.copy())  # fmt: skip
    try:
        store = RunStore(str(tmp_path / "runs"), "cx")
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and not store.done_shards():
            time.sleep(0.5)
        assert store.done_shards(), "no shard committed in time"
        proc = _cli("cancel", "cx", "--store", "runs", "--json", cwd=tmp_path)
        assert proc.returncode == 0, proc.stderr
        assert json.loads(proc.stdout)["cancelled"] is True
        out, _err = driver.communicate(timeout=120)
    finally:
        if driver.poll() is None:
            driver.kill()
            driver.wait()
    first = json.loads(out)
    assert driver.returncode == 1 and first["state"] == "cancelled"
    assert first["rows_done"] < 40
    # launching again resumes: only the missing shards run
    proc = _cli("launch", "recipe.yaml", "--backend", "local", "--yes", "--json", "--run-id", "cx",
                "-w", "2", cwd=tmp_path)  # fmt: skip
    again = json.loads(proc.stdout)
    assert proc.returncode == 0 and again["state"] == "done" and again["rows_out"] == 40


def test_ci_workflow_and_its_documented_exit_codes() -> None:
    flow = yaml.safe_load((REPO / "recipes" / "ci" / "nightly.yml").read_text())
    triggers = flow[True]  # YAML 1.1 reads the key `on` as true
    assert re.fullmatch(r"[\d*/,-]+( [\d*/,-]+){4}", triggers["schedule"][0]["cron"])
    runs = " ".join(step.get("run", "") for job in flow["jobs"].values() for step in job["steps"])
    assert "skybatch launch" in runs and "--wait" in runs and "--yes" in runs
    assert "'nightly-{date}'" in runs and "--summary-md" in runs
    readme = (REPO / "recipes" / "ci" / "README.md").read_text()
    codes = dict(re.findall(r"^\| (\d) \| ([^|]+)\|", readme, flags=re.M))
    assert sorted(codes) == [str(c) for c in range(8)]
    assert "budget" in codes[str(BudgetError.exit_code)]
    assert "deadline" in codes[str(DeadlineMissed.exit_code)]
    assert "sky check" in codes[str(LaunchError.exit_code)]
    assert "plan" in codes[str(PlanError.exit_code)]


@pytest.mark.slow
def test_watch_follows_a_run_to_its_end_with_the_launch_exit_code(tmp_path: Path) -> None:
    _recipe(tmp_path, rows=16, delay_s=0.2)
    runner = subprocess.Popen(
        [sys.executable, "-m", "scheduler.cli", "run", "recipe.yaml", "--run-id", "wt",
         "--no-progress"],
        cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=os.environ.copy(),
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 60
        while not (tmp_path / "runs" / "wt" / "run.json").exists():
            assert time.monotonic() < deadline, "the run was never created"
            time.sleep(0.2)
        proc = _cli("watch", "wt", "--store", "runs", "--poll", "0.5", "--json",
                    "--summary-md", "w.md", cwd=tmp_path)  # fmt: skip
    finally:
        runner.wait(timeout=120)
    data = json.loads(proc.stdout)
    assert proc.returncode == 0, proc.stderr
    assert data["state"] == "done" and data["rows_out"] == 16 and data["exit_code"] == 0
    assert "skybatch run `wt`" in (tmp_path / "w.md").read_text()


@pytest.mark.slow
def test_plan_n_launches_that_option_and_no_fitting_plan_exits_4(tmp_path: Path) -> None:
    recipe = str(REPO / "recipes" / "summarize-vllm.yaml")
    plan = json.loads(_cli("plan", recipe, "--json", cwd=tmp_path).stdout)
    proc = _cli("launch", recipe, "--dry-run", "--json", "--plan", "1", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    chosen = json.loads(proc.stdout)["plan"]
    keys = ("accelerator", "accelerators_per_worker", "spot", "workers", "offerings")
    assert {k: chosen[k] for k in keys} == {k: plan["options"][1][k] for k in keys}
    # one task YAML for all the workers of one option, and a row for each in the table
    text = json.loads(proc.stdout)["yaml"]
    assert len(list(yaml.safe_load_all(text))) == 1
    assert len(text.rsplit("# worker", 1)[1].splitlines()) - 1 == chosen["workers"]
    proc = _cli("launch", recipe, "--dry-run", "--plan", "99", cwd=tmp_path)
    assert proc.returncode == 2 and "--plan 99: the plan has options 0.." in proc.stderr
    proc = _cli("launch", recipe, "--dry-run", "--deadline", "5m", cwd=tmp_path)
    assert proc.returncode == PlanError.exit_code == 4
    assert proc.stderr.startswith("skybatch: error: no plan finishes within 5m")


@pytest.mark.slow
def test_status_of_a_cloud_run_without_skypilot_jobs_still_shows_the_store(
    tmp_path: Path, sky_api_port: int
) -> None:
    store = RunStore(str(tmp_path / "runs"), "cloudrun-1")
    store.create(
        {"recipe": {"name": "x"}, "recipe_name": "x", "backend": "skypilot"},
        [{"shard_id": "s0", "file": "f", "row_offset": 0, "row_count": 5}],
    )
    store.write_meta("jobs", {"backend": "skypilot", "workers": {"w0": {"job_id": 1}}})
    port = sky_api_port
    env = {**os.environ, "SKYPILOT_API_SERVER_LOCAL_PORT": str(port),
           "SKY_RUNTIME_DIR": str(tmp_path / "rt")}  # fmt: skip
    proc = subprocess.run(
        [sys.executable, "-m", "scheduler.cli", "status", "cloudrun-1", "--store", "runs"],
        cwd=tmp_path, capture_output=True, text=True, timeout=300, env=env,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert "rows    0/5" in proc.stdout
    assert re.search(r"^  jobs    SkyPilot could not read the job queue: .+$", proc.stdout, re.M)
    assert "Traceback" not in proc.stderr
    import psutil

    servers = [
        p.pid
        for p in psutil.process_iter(attrs=["cmdline"])
        if f"--port={port}" in " ".join(p.info["cmdline"] or [])
    ]
    assert servers == []  # the API server status started was stopped again
