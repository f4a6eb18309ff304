"""The SkyPilot backend: one managed job per worker, spot with recovery across regions.

Each worker of a run becomes one SkyPilot managed job whose task is built here as plain
task-YAML data (so ``launch --dry-run`` can print exactly what would be launched) and turned
into a ``sky.Task`` only at launch time, when the secret values are filled in::

    resources:
      use_spot: true                      # as planned
      job_recovery:                       # same on every candidate (SkyPilot requires it)
        strategy: EAGER_NEXT_REGION       # preempted: try the next region/cloud at once
        max_restarts_on_errors: 3         # a crashing worker is restarted a bounded number of times
        recover_on_exit_codes: [3]        # the worker's "stopped by a signal" exit: recovered
                                          # without using up the error budget
      any_of: [{infra: aws/us-east-1, instance_type: p5.4xlarge, accelerators: H100:1}, ...]
    envs: {SKYBATCH_STORE: s3://..., SKYBATCH_RUN_ID: ..., SKYBATCH_WORKER_INDEX: "0", ...}
    secrets: {HF_TOKEN: <redacted: ...>}  # real values only in memory, at launch
    setup: pip install 'skybatch[vllm,s3]==<this version>'
    run: python -m scheduler.backends.skypilot worker --store '...' --run-id '...' ...

A preemption (the cluster vanishes) never counts against ``max_restarts_on_errors`` in
SkyPilot; a worker that gets the spot notice exits with code 3 after releasing its shard,
and ``recover_on_exit_codes`` makes that a recovery too.

``import sky`` takes about 3 s, so it happens only inside the functions that talk to
SkyPilot; building and printing tasks needs only PyYAML. :class:`SkyPilotSession` wraps
SkyPilot's client: it shows a spinner while SkyPilot starts its local API server, turns
"no cloud enabled" into one :class:`LaunchError` line, and stops an API server it started.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import sys
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from importlib import metadata
from typing import Any

import yaml

from scheduler.errors import LaunchError, StoreError, UsageError
from scheduler.recipe import Recipe
from scheduler.store import RunStore

__all__ = [
    "DEFAULT_SECRET_NAMES",
    "NO_CLOUD_MESSAGE",
    "RECOVER_EXIT_CODES",
    "JobState",
    "SkyPilotSession",
    "WorkerJob",
    "build_worker_job",
    "cancel_jobs",
    "describe_job",
    "job_name",
    "job_statuses",
    "launch_jobs",
    "render_yaml",
    "require_object_store",
    "secret_values",
    "validate_task_config",
]

#: The worker's exit code after a SIGTERM (spot notice, cancel): recovered, not an error.
RECOVER_EXIT_CODES = (3,)
#: Secrets passed to workers when they are set in the launching environment.
DEFAULT_SECRET_NAMES = ("HF_TOKEN",)
#: Most resource candidates put in one task (the optimizer walks them all).
MAX_CANDIDATES = 16
NO_CLOUD_MESSAGE = (
    "no cloud is enabled for SkyPilot: run `sky check` to set up credentials, "
    "or run on this machine with `skybatch run RECIPE`"
)
# Accelerator names normalised by pricing/ whose SkyPilot name differs.
_SKY_ACCELERATOR = {"A100-40GB": "A100"}
_ENGINE_EXTRA = {"torch": "torch", "vllm": "vllm", "python": None}
_STORE_EXTRA = {"s3": "s3", "gs": "gcs", "gcs": "gcs"}
_NAME_BAD = re.compile(r"[^A-Za-z0-9]+")
_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")


class _TaskDumper(yaml.SafeDumper):
    """Safe YAML with shell scripts as literal blocks, as a person would write them."""


def _str_representer(dumper: yaml.SafeDumper, data: str) -> yaml.ScalarNode:
    style = "|" if "\n" in data else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", data, style=style)


_TaskDumper.add_representer(str, _str_representer)


def _placeholder(name: str) -> str:
    return f"<redacted: from ${name} at launch>"


@dataclass(frozen=True)
class WorkerJob:
    """One worker's managed job: its task YAML (secrets as placeholders) and identity."""

    run_id: str
    worker_index: int
    worker_id: str
    name: str
    config: dict[str, Any]
    secret_names: tuple[str, ...] = ()

    def yaml(self) -> str:
        """The task YAML as printed by ``--dry-run`` (no secret values in it)."""
        return yaml.dump(self.config, Dumper=_TaskDumper, sort_keys=False, width=1000)


@dataclass(frozen=True)
class JobState:
    """One managed job as SkyPilot's queue reports it."""

    worker_id: str
    job_id: int
    status: str
    recovery_count: int = 0
    cloud: str | None = None
    region: str | None = None
    submitted_at: float | None = None
    started_at: float | None = None
    ended_at: float | None = None
    duration_s: float | None = None
    failure_reason: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def is_terminal(self) -> bool:
        """True when SkyPilot will not run this job again."""
        return self.status.upper() in _TERMINAL

    def to_json(self) -> dict[str, Any]:
        """Plain data, for ``status --json``."""
        return {
            "worker_id": self.worker_id,
            "job_id": self.job_id,
            "status": self.status,
            "recovery_count": self.recovery_count,
            "cloud": self.cloud,
            "region": self.region,
            "submitted_at": self.submitted_at,
            "started_at": self.started_at,
            "ended_at": self.ended_at,
            "duration_s": self.duration_s,
            "failure_reason": self.failure_reason,
        }


_TERMINAL = {
    "SUCCEEDED",
    "CANCELLED",
    "FAILED",
    "FAILED_SETUP",
    "FAILED_PRECHECKS",
    "FAILED_NO_RESOURCE",
    "FAILED_CONTROLLER",
}


# ---------------------------------------------------------------------- building tasks


def job_name(run_id: str, worker_index: int) -> str:
    """A SkyPilot-valid job name: letters/digits joined by single dashes."""
    base = _NAME_BAD.sub("-", f"skybatch-{run_id}").strip("-")[:52].strip("-")
    return f"{base}-w{worker_index}"


def require_object_store(store_url: str) -> None:
    """Refuse a local store for a cloud launch: cloud workers cannot see this disk."""
    if "://" not in store_url or store_url.startswith(("file://", "local://", "memory://")):
        raise StoreError(
            f"store {store_url} is a local path, which cloud workers cannot reach; "
            "give an object-store URL (--store s3://bucket/runs or gs://bucket/runs), "
            "or run locally with --backend local"
        )


def _sky_accelerator(name: str) -> str:
    return _SKY_ACCELERATOR.get(name, name)


def candidates(option: Mapping[str, Any]) -> list[dict[str, Any]]:
    """SkyPilot resource candidates from a plan option's offerings (cheapest first)."""
    acc = _sky_accelerator(str(option["accelerator"]))
    count = int(option.get("accelerators_per_worker") or 1)
    accelerators = f"{acc}:{count}"
    out: list[dict[str, Any]] = []
    seen: set[tuple[str, str, str]] = set()
    offerings = sorted(
        option.get("offerings") or [], key=lambda o: float(o.get("usd_per_hour") or 0.0)
    )
    for off in offerings:
        key = (str(off["cloud"]), str(off.get("region") or ""), str(off.get("instance_type") or ""))
        if key in seen:
            continue
        seen.add(key)
        cand: dict[str, Any] = {"infra": f"{key[0]}/{key[1]}" if key[1] else key[0]}
        if key[2]:
            cand["instance_type"] = key[2]
        cand["accelerators"] = accelerators
        out.append(cand)
        if len(out) >= MAX_CANDIDATES:
            break
    return out or [{"accelerators": accelerators}]


def _prices(option: Mapping[str, Any]) -> dict[str, float]:
    """$/h of one worker by ``cloud/region``, so a worker reports what it really costs."""
    out: dict[str, float] = {}
    for off in option.get("offerings") or []:
        if off.get("usd_per_hour") is not None:
            out[f"{off['cloud']}/{off.get('region') or ''}"] = float(off["usd_per_hour"])
    return out


def _version() -> str:
    try:
        return metadata.version("skybatch")
    except metadata.PackageNotFoundError:
        return "0.1.0"


def pip_spec(recipe: Recipe, store_url: str, *, version: str | None = None) -> str:
    """What the setup step installs: this skybatch version with the engine's extra.

    ``SKYBATCH_PIP_SPEC`` replaces the package part (e.g. a wheel URL or ``git+https://...``)
    for development builds that are not on PyPI; the extras are kept.
    """
    extras = [e for e in (_ENGINE_EXTRA.get(recipe.model.engine),) if e]
    proto = store_url.split("://", 1)[0] if "://" in store_url else ""
    if proto in _STORE_EXTRA:
        extras.append(_STORE_EXTRA[proto])
    extra = f"[{','.join(extras)}]" if extras else ""
    override = os.environ.get("SKYBATCH_PIP_SPEC")
    if override:
        return f"skybatch{extra} @ {override}" if "://" in override else override
    return f"skybatch{extra}=={version or _version()}"


def build_worker_job(
    *,
    recipe: Recipe,
    run_id: str,
    store_url: str,
    worker_index: int,
    option: Mapping[str, Any],
    secret_names: Sequence[str] = (),
    version: str | None = None,
) -> WorkerJob:
    """The managed-job task of worker ``worker_index`` of a run, as task-YAML data.

    Every value that comes from the recipe or the plan and reaches a shell is quoted with
    :func:`shlex.quote`; secrets appear only as placeholders.
    """
    worker_id = f"w{worker_index}"
    name = job_name(run_id, worker_index)
    spot = bool(option.get("spot"))
    accelerator = str(option["accelerator"])
    count = int(option.get("accelerators_per_worker") or 1)
    resources: dict[str, Any] = {
        "use_spot": spot,
        "job_recovery": {
            "strategy": "EAGER_NEXT_REGION",
            "max_restarts_on_errors": int(recipe.limits.retries),
            "recover_on_exit_codes": list(RECOVER_EXIT_CODES),
        },
    }
    cands = candidates(option)
    if len(cands) == 1:
        resources.update(cands[0])
    else:
        resources["any_of"] = cands
    argv = [
        "python",
        "-m",
        "scheduler.backends.skypilot",
        "worker",
        "--store",
        store_url,
        "--run-id",
        run_id,
        "--worker-id",
        worker_id,
        "--accelerator",
        f"{accelerator}:{count}" if count > 1 else accelerator,
        "--prices",
        json.dumps(_prices(option), sort_keys=True, separators=(",", ":")),
    ]
    if spot:
        argv.append("--spot")
    run = " ".join(shlex.quote(a) for a in argv)
    spec = pip_spec(recipe, store_url, version=version)
    setup = "set -e\npython -m pip install --quiet --upgrade pip\n" + (
        f"python -m pip install --quiet {shlex.quote(spec)}\n"
    )
    envs = {
        "SKYBATCH_STORE": store_url,
        "SKYBATCH_RUN_ID": run_id,
        "SKYBATCH_WORKER_ID": worker_id,
        "SKYBATCH_WORKER_INDEX": str(worker_index),
        "HF_HUB_ENABLE_HF_TRANSFER": "0",
    }
    config: dict[str, Any] = {
        "name": name,
        "resources": resources,
        "envs": envs,
    }
    names = tuple(dict.fromkeys(secret_names))
    if names:
        config["secrets"] = {n: _placeholder(n) for n in names}
    config["setup"] = setup
    config["run"] = run + "\n"
    return WorkerJob(
        run_id=run_id,
        worker_index=worker_index,
        worker_id=worker_id,
        name=name,
        config=config,
        secret_names=names,
    )


def render_yaml(jobs: Sequence[WorkerJob]) -> str:
    """Every job's task YAML as YAML documents separated by ``---`` (``--dry-run``)."""
    return "---\n".join(job.yaml() for job in jobs)


def secret_names_from_env(requested: Sequence[str] = ()) -> tuple[str, ...]:
    """The secrets to pass: the default ones that are set, plus every requested one."""
    names = [n for n in DEFAULT_SECRET_NAMES if os.environ.get(n)]
    names.extend(requested)
    for n in names:
        if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", n):
            raise UsageError(f"--secret {n!r}: not an environment variable name")
    return tuple(dict.fromkeys(names))


def secret_values(names: Sequence[str], env: Mapping[str, str] | None = None) -> dict[str, str]:
    """The secret values from the environment; a requested secret that is unset is an error."""
    env = os.environ if env is None else env
    missing = [n for n in names if not env.get(n)]
    if missing:
        raise UsageError(
            f"secret {missing[0]} is not set in this environment; export it before launching "
            "(it is passed to the workers as a SkyPilot secret and never written anywhere)"
        )
    return {n: env[n] for n in names}


def validate_task_config(config: Mapping[str, Any]) -> None:
    """Check task YAML data against SkyPilot's own task and resources schemas."""
    from sky.utils import common_utils, schemas

    # SkyPilot's helpers are untyped; keep mypy strict everywhere else.
    validate: Any = common_utils.validate_schema
    sky_schemas: Any = schemas
    data = json.loads(json.dumps(dict(config)))
    try:
        validate(data, sky_schemas.get_task_schema(), "Invalid task YAML: ")
        validate(
            data.get("resources") or {}, sky_schemas.get_resources_schema(), "Invalid resources: "
        )
    except ValueError as e:
        raise LaunchError(f"task {config.get('name')}: {_one_line(e)}") from e


def to_task(job: WorkerJob, secrets: Mapping[str, str]) -> Any:
    """The ``sky.Task`` of a job, with the real secret values (kept in memory only)."""
    import sky

    config = json.loads(json.dumps(job.config))
    if job.secret_names:
        config["secrets"] = {n: secrets[n] for n in job.secret_names}
    try:
        return sky.Task.from_yaml_config(config)
    except ValueError as e:
        raise LaunchError(f"task {job.name}: {_one_line(e)}") from e


# ---------------------------------------------------------------------- talking to SkyPilot


def _one_line(e: BaseException) -> str:
    """SkyPilot's message on one line (it often puts the hint, e.g. a log path, on line 2)."""
    text = _ANSI.sub("", str(e)).strip()
    parts = [line.strip() for line in text.splitlines() if line.strip()]
    line = " ".join(parts) or type(e).__name__
    return line if len(line) <= 400 else line[:397] + "..."


@contextmanager
def _spinner(message: str) -> Iterator[None]:
    """A rich spinner on stderr (nothing when stderr is not a terminal)."""
    from rich.console import Console

    console = Console(stderr=True)
    if console.is_terminal:
        with console.status(message):
            yield
    else:
        yield


class SkyPilotSession:
    """A conversation with SkyPilot's API server.

    On entry it imports SkyPilot and makes sure an API server answers, starting the local
    one if none does (under a spinner); on exit it stops the server if this session started
    it, so a ``skybatch`` command leaves no process behind. Every SkyPilot failure leaves
    as a one-line :class:`LaunchError`.
    """

    def __init__(self, *, quiet: bool = False) -> None:
        self.quiet = quiet
        self.started_server = False
        self._silent: Any = None

    def __enter__(self) -> SkyPilotSession:
        with _spinner("Starting SkyPilot (its local API server may take a few seconds)..."):
            try:
                from sky import sky_logging
                from sky.server import common as server_common

                # SkyPilot's own progress lines would break the one-line contract.
                self._silent = sky_logging.silent()
                self._silent.__enter__()
                endpoint = server_common.get_server_url()
                was_up = self._healthy(endpoint)
                server_common.check_server_healthy_or_start_fn()
                self.started_server = not was_up and server_common.is_api_server_local(endpoint)
            except LaunchError:
                self._close()
                raise
            except Exception as e:
                self._close()
                raise LaunchError(f"SkyPilot's API server did not start: {_one_line(e)}") from e
        return self

    @staticmethod
    def _healthy(endpoint: str) -> bool:
        from sky.server import common as server_common

        try:
            server_common.check_server_healthy(endpoint)
        except Exception:
            return False
        return True

    def __exit__(self, *exc: object) -> None:
        self._close()

    def _close(self) -> None:
        try:
            if self.started_server:
                from sky.client import sdk

                sdk.api_stop()
                self.started_server = False
        except Exception as e:  # stopping is best effort; say so, never mask the real error
            print(f"skybatch: warning: could not stop SkyPilot's API server: {e}", file=sys.stderr)
        finally:
            if self._silent is not None:
                self._silent.__exit__(None, None, None)
                self._silent = None

    def enabled_clouds(self) -> list[str]:
        """The clouds SkyPilot can launch on (``sky check`` sets them up)."""
        from sky.client import sdk

        try:
            with _spinner("Asking SkyPilot which clouds are enabled..."):
                clouds = sdk.get(sdk.enabled_clouds())
        except Exception as e:
            raise LaunchError(f"SkyPilot could not list enabled clouds: {_one_line(e)}") from e
        return [str(c).lower() for c in clouds or []]

    def require_cloud(self) -> list[str]:
        """The enabled clouds, or :data:`NO_CLOUD_MESSAGE` as a :class:`LaunchError`."""
        clouds = self.enabled_clouds()
        if not clouds:
            raise LaunchError(NO_CLOUD_MESSAGE)
        return clouds

    def launch(self, jobs: Sequence[WorkerJob], secrets: Mapping[str, str]) -> dict[str, int]:
        """Launch every job as a managed job; returns worker id -> managed job id."""
        import sky
        from sky.client import sdk

        tasks = [(job, to_task(job, secrets)) for job in jobs]
        requests = []
        try:
            with _spinner(f"Submitting {len(jobs)} managed job(s) to SkyPilot..."):
                for job, task in tasks:
                    requests.append((job, sky.jobs.launch(task, name=job.name)))
                ids: dict[str, int] = {}
                for job, request in requests:
                    job_ids, _handle = sdk.get(request)
                    if not job_ids:
                        raise LaunchError(f"SkyPilot returned no job id for {job.name}")
                    ids[job.worker_id] = int(job_ids[0])
        except LaunchError:
            raise
        except Exception as e:
            if type(e).__name__ == "NoCloudAccessError":
                raise LaunchError(NO_CLOUD_MESSAGE) from e
            raise LaunchError(f"SkyPilot could not launch the workers: {_one_line(e)}") from e
        return ids

    def queue(self, job_ids: Sequence[int]) -> list[dict[str, Any]]:
        """SkyPilot's managed-job records for ``job_ids`` (plain dicts)."""
        import sky
        from sky.client import sdk

        try:
            result = sdk.get(sky.jobs.queue_v2(refresh=False, job_ids=list(job_ids)))
        except Exception as e:
            raise LaunchError(f"SkyPilot could not read the job queue: {_one_line(e)}") from e
        records = result[0] if isinstance(result, tuple) else result
        out = []
        for rec in records or []:
            if hasattr(rec, "model_dump"):
                out.append(rec.model_dump())
            else:
                out.append(dict(rec))
        return out

    def cancel(self, job_ids: Sequence[int]) -> None:
        """Cancel managed jobs (the workers release their shards on SIGTERM)."""
        import sky
        from sky.client import sdk

        try:
            sdk.get(sky.jobs.cancel(job_ids=list(job_ids)))
        except Exception as e:
            raise LaunchError(
                f"SkyPilot could not cancel jobs {list(job_ids)}: {_one_line(e)}"
            ) from e


def launch_jobs(
    jobs: Sequence[WorkerJob], secrets: Mapping[str, str], *, session: SkyPilotSession | None = None
) -> dict[str, int]:
    """Launch ``jobs`` (after checking that a cloud is enabled); worker id -> job id."""
    if session is not None:
        session.require_cloud()
        return session.launch(jobs, secrets)
    with SkyPilotSession() as s:
        s.require_cloud()
        return s.launch(jobs, secrets)


def _job_state(worker_id: str, rec: Mapping[str, Any]) -> JobState:
    status = rec.get("status")
    status_text = str(getattr(status, "value", status) or "UNKNOWN")
    return JobState(
        worker_id=worker_id,
        job_id=int(rec.get("job_id") or 0),
        status=status_text,
        recovery_count=int(rec.get("recovery_count") or 0),
        cloud=(str(rec["cloud"]).lower() if rec.get("cloud") else None),
        region=rec.get("region"),
        submitted_at=rec.get("submitted_at"),
        started_at=rec.get("start_at"),
        ended_at=rec.get("end_at"),
        duration_s=rec.get("job_duration"),
        failure_reason=rec.get("failure_reason"),
    )


def job_statuses(
    run: RunStore | Mapping[str, int], *, session: SkyPilotSession | None = None
) -> list[dict[str, Any]]:
    """Per-worker state of a run's managed jobs, as plain data for ``skybatch status``.

    ``run`` is the run's store (its ``meta/jobs.json`` names the jobs) or a mapping of
    worker id to job id. Each entry has SkyPilot's status, recovery count (preemptions
    and restarts), cloud/region, times, and ``spend_usd``: the worker's $/h (from its
    heartbeat) × the time since submission, which includes provisioning and recoveries
    (SkyPilot reports no cost per job).
    """
    prices: dict[str, float] = {}
    if isinstance(run, RunStore):
        doc = run.read_meta("jobs") or {}
        jobs = {w: int(j["job_id"]) for w, j in (doc.get("workers") or {}).items()}
        prices = {w: float(b.get("usd_per_hour") or 0.0) for w, b in run.workers().items()}
    else:
        jobs = {w: int(j) for w, j in run.items()}
    if not jobs:
        return []
    by_id = {j: w for w, j in jobs.items()}
    if session is None:
        with SkyPilotSession() as s:
            records = s.queue(list(by_id))
    else:
        records = session.queue(list(by_id))
    now = time.time()
    out = []
    for rec in records:
        jid = int(rec.get("job_id") or 0)
        if jid not in by_id:
            continue
        state = _job_state(by_id[jid], rec)
        doc = state.to_json()
        start = state.submitted_at
        end = state.ended_at or now
        billed_s = max(0.0, end - start) if start else 0.0
        doc["billed_s"] = round(billed_s, 1)
        doc["spend_usd"] = round(prices.get(state.worker_id, 0.0) * billed_s / 3600.0, 4)
        out.append(doc)
    return sorted(out, key=lambda d: str(d["worker_id"]))


def describe_job(doc: Mapping[str, Any]) -> str:
    """One line for ``skybatch status``: ``w0  job 17  RUNNING  gcp/us-east4  2 recoveries  $1.20``."""
    where = f"{doc.get('cloud')}/{doc.get('region')}" if doc.get("cloud") else "(not placed yet)"
    rec = int(doc.get("recovery_count") or 0)
    line = (
        f"{doc.get('worker_id', '?'):<6} job {doc.get('job_id')}  {doc.get('status')}  {where}  "
        f"{rec} recover{'y' if rec == 1 else 'ies'}  ${float(doc.get('spend_usd') or 0.0):,.2f}"
    )
    if doc.get("failure_reason"):
        line += f"  ({str(doc['failure_reason']).splitlines()[0][:80]})"
    return line


def cancel_jobs(job_ids: Sequence[int], *, session: SkyPilotSession | None = None) -> None:
    """Cancel managed jobs by id."""
    if not job_ids:
        return
    if session is None:
        with SkyPilotSession() as s:
            s.cancel(job_ids)
    else:
        session.cancel(job_ids)


# ---------------------------------------------------------------------- on the worker VM


def _cluster_infra(env: Mapping[str, str]) -> tuple[str | None, str | None]:
    """Cloud and region of this VM from SkyPilot's ``SKYPILOT_CLUSTER_INFO``."""
    try:
        info = json.loads(env.get("SKYPILOT_CLUSTER_INFO") or "{}")
    except ValueError:
        return None, None
    cloud = info.get("cloud")
    return (str(cloud).lower() if cloud else None), info.get("region")


def worker_argv(argv: Sequence[str], env: Mapping[str, str]) -> list[str]:
    """Translate the task's run command into ``scheduler.worker`` arguments.

    Adds where the job landed (cloud/region) and that offering's $/h, so heartbeats and
    spend reflect the candidate SkyPilot actually chose.
    """
    import argparse

    p = argparse.ArgumentParser(prog="python -m scheduler.backends.skypilot worker")
    p.add_argument("--store", required=True)
    p.add_argument("--run-id", required=True)
    p.add_argument("--worker-id", required=True)
    p.add_argument("--accelerator", default=None)
    p.add_argument("--prices", default="{}")
    p.add_argument("--spot", action="store_true")
    args = p.parse_args(list(argv))
    cloud, region = _cluster_infra(env)
    prices = {str(k): float(v) for k, v in json.loads(args.prices or "{}").items()}
    price = prices.get(f"{cloud}/{region}")
    if price is None:  # landed outside the plan's list: assume the dearest planned price
        price = max(prices.values(), default=0.0)
    out = [
        "--store",
        args.store,
        "--run-id",
        args.run_id,
        "--worker-id",
        args.worker_id,
        "--usd-per-hour",
        str(price),
    ]
    if args.accelerator:
        out += ["--accelerator", args.accelerator]
    if cloud:
        out += ["--cloud", cloud]
    if region:
        out += ["--region", str(region)]
    if args.spot:
        out.append("--spot")
    return out


def _main(argv: Sequence[str]) -> int:
    if not argv or argv[0] != "worker":
        print(
            "usage: python -m scheduler.backends.skypilot worker --store URL ...", file=sys.stderr
        )
        return 2
    from scheduler import worker

    return worker.main(worker_argv(argv[1:], os.environ))


if __name__ == "__main__":
    sys.exit(_main(sys.argv[1:]))
