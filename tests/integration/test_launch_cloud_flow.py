"""The cloud launch path end to end, with SkyPilot replaced at its seam.

``launch --backend skypilot --wait`` with a fake session standing in for SkyPilot's API
server: each "managed job" runs the task's real ``run`` script in a subprocess with the
environment a SkyPilot VM gives it (the task's envs, its secrets, ``SKYPILOT_CLUSTER_INFO``).
The store and the input live in S3 (moto on loopback). This covers what the offline tests
cannot: jobs recorded in the store and DuckDB, the watch loop reading the job queue,
workers reporting where they landed and its price, the summary — and that a planted secret
reaches the workers but never the store.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
from dataclasses import replace
from pathlib import Path
from typing import Any, ClassVar

import pytest

from scheduler.launch import LaunchRequest, launch
from scheduler.store import RunStore

TOKEN = "hf_PLANTEDcloudflow0123456789"


class FakeSkyPilot:
    """SkyPilot's session seam: jobs are subprocesses running the task's ``run`` script."""

    # Like SkyPilot's jobs controller, the job table outlives one session.
    launched: ClassVar[list[dict[str, Any]]] = []
    procs: ClassVar[dict[int, subprocess.Popen[bytes]]] = {}
    submitted: ClassVar[dict[int, float]] = {}

    def __init__(self) -> None:
        self.next_id = 100 + len(self.procs)

    def __enter__(self) -> FakeSkyPilot:
        return self

    def __exit__(self, *exc: object) -> None:
        for proc in self.procs.values():
            if proc.poll() is None:
                proc.terminate()
                proc.wait(30)

    def enabled_clouds(self) -> list[str]:
        return ["aws"]

    def launch(self, jobs: list[Any], secrets: dict[str, str]) -> dict[str, int]:
        ids = {}
        for job in jobs:
            cand = job.config["resources"].get("any_of", [job.config["resources"]])[0]
            cloud, region = cand["infra"].split("/")
            env = {
                **os.environ,
                **job.config["envs"],
                **{name: secrets[name] for name in job.secret_names},
                "SKYPILOT_CLUSTER_INFO": json.dumps({"cloud": cloud.upper(), "region": region}),
            }
            for remote, local in job.config.get("file_mounts", {}).items():
                # What SkyPilot does before setup: the mounts land under the VM's home.
                target = Path(os.path.expanduser(remote))
                if target.exists() and target.samefile(local):
                    continue  # this "VM" shares the launcher's home
                target.parent.mkdir(parents=True, exist_ok=True)
                copy = shutil.copytree if Path(local).is_dir() else shutil.copy
                copy(local, target)
            self.next_id += 1
            self.procs[self.next_id] = subprocess.Popen(
                ["bash", "-c", job.config["run"]], env=env,
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            )  # fmt: skip
            self.submitted[self.next_id] = time.time()
            ids[job.worker_id] = self.next_id
            FakeSkyPilot.launched.append({"job": job.name, "secrets": sorted(secrets)})
        return ids

    def queue(self, job_ids: list[int]) -> list[dict[str, Any]]:
        out = []
        for jid in job_ids:
            code = self.procs[jid].poll()
            status = "RUNNING" if code is None else ("SUCCEEDED" if code == 0 else "FAILED")
            out.append({"job_id": jid, "status": status, "cloud": "AWS",
                        "region": "us-east-1", "submitted_at": self.submitted[jid],
                        "start_at": self.submitted[jid] + 2.0, "end_at": None, "recovery_count": 1})  # fmt: skip
        return out

    def cancel(self, job_ids: list[int]) -> None:
        for jid in job_ids:
            self.procs[jid].terminate()


@pytest.mark.slow
def test_cloud_launch_wait_runs_jobs_records_them_and_keeps_secrets_out(
    tmp_path: Path, s3_server: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    import boto3

    import pricing

    bucket = s3_server.new_bucket()
    s3 = boto3.client("s3", endpoint_url=s3_server.endpoint_url)
    rows = "".join(json.dumps({"id": f"d{i}", "text": f"doc {i}"}) + "\n" for i in range(30))
    s3.put_object(Bucket=bucket, Key="in/docs.jsonl", Body=rows.encode())
    (tmp_path / "fn.py").write_text(
        "def f(rows):\n    return [{'n': len(r['text'])} for r in rows]\n"
    )
    (tmp_path / "r.yaml").write_text(
        "name: cloudflow\n"
        f'input: {{path: "s3://{bucket}/in/docs.jsonl", id_column: id}}\n'
        f'task: score\nmodel: {{engine: python, name: "{tmp_path / "fn.py"}:f"}}\n'
        f"shards: {{rows_per_shard: 5}}\nstore: s3://{bucket}/runs\n"
        "schedule: {clouds: [aws], budget_usd: 100}\n"
    )
    monkeypatch.setenv("HF_TOKEN", TOKEN)
    req = LaunchRequest(
        recipe_path=str(tmp_path / "r.yaml"), backend="skypilot", gpu="L4", workers=2,
        wait=True, yes=True, run_id="flow-{date}", poll_s=0.5,
    )  # fmt: skip
    lines: list[str] = []
    result = launch(req, echo=lines.append, confirm=lambda q: True, session_factory=FakeSkyPilot)
    assert result.outcome is not None
    assert result.outcome.exit_code == 0, result.outcome.summary
    assert result.outcome.summary["rows_out"] == 30
    assert sorted(result.jobs) == ["w0", "w1"]
    assert all(entry["secrets"] == ["HF_TOKEN"] for entry in FakeSkyPilot.launched)
    store = RunStore(f"s3://{bucket}/runs", result.run_id)
    doc = store.read_meta("jobs")
    assert {w: d["job_id"] for w, d in doc["workers"].items()} == result.jobs
    assert [r["job_id"] for r in pricing.list_jobs(result.run_id)] == [
        str(result.jobs["w0"]),
        str(result.jobs["w1"]),
    ]
    beats = store.workers()
    assert {(b.cloud, b.spot) for b in beats.values()} == {("aws", True)}
    assert all(b.usd_per_hour > 0 for b in beats.values())
    # the secret went to the workers' environment only: not one object in the bucket holds it
    everything = b""
    for obj in s3.list_objects_v2(Bucket=bucket)["Contents"]:
        everything += s3.get_object(Bucket=bucket, Key=obj["Key"])["Body"].read()
    assert TOKEN.encode() not in everything
    assert all(TOKEN not in line for line in lines)
    # what the run measured went back to DuckDB for the next plan
    with pricing.connect(read_only=True) as con:
        hist = con.execute(
            "SELECT cloud, workers, rows, preemptions, startup_s, spot FROM run_history "
            "WHERE run_id = ?",
            [result.run_id],
        ).fetchall()
    assert hist == [("aws", 2, 30, 2, 2.0, True)]
    # spend is billed from submission, as SkyPilot bills provisioning too
    assert 0 < result.outcome.spend_usd < 1.0
    assert result.outcome.to_json()["state"] == "done"
    # re-triggered (same run id): the run is done, so no new job is paid for
    before = len(FakeSkyPilot.launched)
    again = launch(req, echo=lines.append, confirm=lambda q: True, session_factory=FakeSkyPilot)
    assert len(FakeSkyPilot.launched) == before and again.jobs == result.jobs
    assert again.outcome is not None and again.outcome.exit_code == 0
    # the next night: 5 more documents in the bucket; --incremental runs only those
    more = "".join(json.dumps({"id": f"d{i}", "text": f"doc {i}"}) + "\n" for i in range(30, 35))
    s3.put_object(Bucket=bucket, Key="in/docs.jsonl", Body=(rows + more).encode())
    nightly = replace(req, run_id="night2", incremental=True)
    inc = launch(nightly, echo=lines.append, confirm=lambda q: True, session_factory=FakeSkyPilot)
    assert inc.outcome is not None and inc.outcome.exit_code == 0
    assert inc.outcome.summary["rows_in"] == 5 and inc.outcome.summary["rows_out"] == 5
    info = RunStore(f"s3://{bucket}/runs", "night2").read_run_info()
    assert info["input_path"].startswith(f"s3://{bucket}/runs/_inputs/cloudflow-")
    assert info["incremental"]["previous_runs"] == [result.run_id]


class RecordingSkyPilot:
    """A session that only records what would be launched."""

    def __init__(self) -> None:
        self.jobs: list[Any] = []

    def launch(self, jobs: list[Any], secrets: dict[str, str]) -> dict[str, int]:
        self.jobs.extend(jobs)
        return {job.worker_id: 500 + job.worker_index for job in jobs}


def test_guard_adds_on_demand_workers_with_on_demand_prices(tmp_path: Path) -> None:
    import pricing
    from scheduler.backends.skypilot import SkyPilotBackend
    from scheduler.recipe import recipe_from_dict
    from scheduler.store import LaunchOption, Offering

    recipe = recipe_from_dict(
        {
            "name": "od",
            "input": {"path": "s3://b/x.jsonl"},
            "task": "score",
            "model": {"engine": "vllm", "name": "m"},
        }
    )
    offers = [o for o in pricing.list_offerings(accelerators=["L4"], clouds=["aws"])
              if o.price(True) is not None and o.price(False) is not None][:2]  # fmt: skip
    option = LaunchOption(
        "L4",
        gpus_per_worker=offers[0].accelerator_count,
        spot=True,
        offerings=tuple(
            Offering(o.cloud, o.region, o.instance_type, float(o.price(True) or 0.0))
            for o in offers
        ),
    )
    session = RecordingSkyPilot()
    scaler = SkyPilotBackend(RunStore(str(tmp_path), "od-1"), recipe, option, session)
    assert scaler.add(1, spot=True) == 1 and scaler.add(2, spot=False) == 2
    spot_job, *od_jobs = session.jobs
    assert [j.worker_id for j in session.jobs] == ["w0", "w1", "w2"]
    assert spot_job.config["resources"]["use_spot"] is True
    for job in od_jobs:
        assert job.config["resources"]["use_spot"] is False
        assert "--spot" not in job.config["run"]
        prices = json.loads(job.config["run"].split("--prices ")[1].split("'")[1])
        assert sorted(prices.values()) == sorted(o.price(False) for o in offers)
    assert scaler.job_ids == {"w0": 500, "w1": 501, "w2": 502}


class OnlyAwsEnabled(RecordingSkyPilot):
    """A SkyPilot where only AWS passed ``sky check``; jobs are recorded, not run."""

    def __enter__(self) -> OnlyAwsEnabled:
        return self

    def __exit__(self, *exc: object) -> None:
        return None

    def enabled_clouds(self) -> list[str]:
        return ["aws"]

    def queue(self, job_ids: list[int]) -> list[dict[str, Any]]:
        return [{"job_id": j, "status": "PENDING"} for j in job_ids]


def test_a_launch_plans_only_over_enabled_clouds_and_says_what_it_dropped(
    tmp_path: Path, s3_server: Any
) -> None:
    import boto3

    bucket = s3_server.new_bucket()
    s3 = boto3.client("s3", endpoint_url=s3_server.endpoint_url)
    rows = "".join(json.dumps({"id": f"d{i}", "text": f"doc {i}"}) + "\n" for i in range(4))
    s3.put_object(Bucket=bucket, Key="in/docs.jsonl", Body=rows.encode())
    (tmp_path / "fn.py").write_text("def f(rows):\n    return [{'n': 1} for r in rows]\n")
    (tmp_path / "r.yaml").write_text(
        "name: placed\n"
        f'input: {{path: "s3://{bucket}/in/docs.jsonl", id_column: id}}\n'
        f'task: score\nmodel: {{engine: python, name: "{tmp_path / "fn.py"}:f"}}\n'
        f"store: s3://{bucket}/runs\nschedule: {{clouds: [gcp, aws]}}\n"
    )
    session = OnlyAwsEnabled()
    lines: list[str] = []
    req = LaunchRequest(recipe_path=str(tmp_path / "r.yaml"), gpu="L4", workers=1, yes=True)
    result = launch(req, echo=lines.append, confirm=lambda q: True, session_factory=lambda: session)
    assert (
        "placement: dropped gcp: not enabled in SkyPilot (run `sky check gcp` to set it up)"
        in lines
    )
    assert {o.cloud for o in result.option.offerings} == {"aws"}
    (job,) = session.jobs
    resources = job.config["resources"]
    infras = [c["infra"] for c in resources.get("any_of", [resources])]
    assert infras and all(i.startswith("aws/") for i in infras)
    assert not any(line.startswith("warning: store") for line in lines)  # s3 with aws workers
