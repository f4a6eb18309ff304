"""SkyPilot task YAML for one worker's managed job, built as plain data (no ``import sky``).

:func:`build_worker_job` makes the task of worker *i* of a run: resource candidates from the
plan's offerings (``any_of``), ``use_spot``, ``job_recovery``, envs, secrets as placeholders,
a setup step that installs the shipped wheel of this code (``file_mounts``) with the worker's
requirements and checks them (``_wheel``, ``_setup``), and a run command in which every
recipe-derived value is shell-quoted. :func:`render_yaml` prints them for ``--dry-run``;
:func:`to_task` makes the ``sky.Task`` with the real secret values, in memory, at launch.
:func:`worker_argv` runs on the VM: it turns the run command into ``scheduler.worker``
arguments with the cloud/region SkyPilot chose and that offering's $/h.
See :mod:`scheduler.backends.skypilot` for the YAML shape and the recovery policy.
"""

from __future__ import annotations

import json
import os
import re
import shlex
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import yaml

from scheduler.backends.replicas import replica_flags
from scheduler.backends.skypilot._placement import model_mount
from scheduler.backends.skypilot._setup import setup_script, worker_extras
from scheduler.backends.skypilot._wheel import Wheel, shipped_wheel
from scheduler.errors import LaunchError, StoreError, UsageError
from scheduler.recipe import Recipe
from scheduler.store import Heartbeat, LaunchOption
from scheduler.worker import EXIT_STOPPED

__all__ = [
    "DEFAULT_SECRET_NAMES",
    "EXIT_RETRY",
    "MAX_CANDIDATES",
    "RECOVER_EXIT_CODES",
    "WorkerJob",
    "build_worker_job",
    "candidates",
    "job_name",
    "one_line",
    "render_yaml",
    "require_object_store",
    "secret_names_from_env",
    "secret_values",
    "to_task",
    "validate_task_config",
    "worker_argv",
]

#: The VM's exit code for a failure a restart may fix, within the recipe's retry budget
#: (EX_TEMPFAIL). The entry point counts these in the store; see ``_entry``.
EXIT_RETRY = 75
#: Exit codes SkyPilot recovers on a new VM: the worker's after a SIGTERM (spot notice,
#: cancel) and :data:`EXIT_RETRY`. Every other non-zero exit is final, because
#: ``max_restarts_on_errors`` is 0: SkyPilot's own counter cannot tell a bad recipe (exit 2,
#: which no restart fixes) from a transient error, so skybatch keeps that budget itself.
RECOVER_EXIT_CODES = (EXIT_STOPPED, EXIT_RETRY)
#: Secrets passed to workers when they are set in the launching environment.
DEFAULT_SECRET_NAMES = ("HF_TOKEN",)
#: Most resource candidates put in one task (the optimizer walks them all).
MAX_CANDIDATES = 16
# Accelerator names normalised by pricing/ whose SkyPilot name differs.
_SKY_ACCELERATOR = {"A100-40GB": "A100"}
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


def one_line(e: BaseException) -> str:
    """SkyPilot's message on one line (it often puts the hint, e.g. a log path, on line 2)."""
    text = _ANSI.sub("", str(e)).strip()
    parts = [line.strip() for line in text.splitlines() if line.strip()]
    line = " ".join(parts) or type(e).__name__
    return line if len(line) <= 400 else line[:397] + "..."


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


def candidates(option: LaunchOption) -> list[dict[str, Any]]:
    """SkyPilot resource candidates from a plan option's offerings (cheapest first)."""
    accelerators = f"{_sky_accelerator(option.accelerator)}:{option.gpus_per_worker}"
    out: list[dict[str, Any]] = []
    seen: set[tuple[str, str, str]] = set()
    for off in sorted(option.offerings, key=lambda o: o.usd_per_hour):
        key = (off.cloud, off.region, off.instance_type)
        if key in seen:
            continue
        seen.add(key)
        cand: dict[str, Any] = {"infra": f"{off.cloud}/{off.region}" if off.region else off.cloud}
        if off.instance_type:
            cand["instance_type"] = off.instance_type
        cand["accelerators"] = accelerators
        out.append(cand)
        if len(out) >= MAX_CANDIDATES:
            break
    return out or [{"accelerators": accelerators}]


def _prices(option: LaunchOption) -> dict[str, float]:
    """$/h of one worker by ``cloud/region``, so a worker reports what it really costs.

    The VM cannot tell which candidate instance type it is; where a region has several,
    SkyPilot's optimizer takes the cheapest, so that is the price. (The launcher re-prices
    each life by the instance type SkyPilot's queue names.)
    """
    out: dict[str, float] = {}
    for o in option.offerings:
        key = f"{o.cloud}/{o.region}"
        out[key] = min(out.get(key, o.usd_per_hour), o.usd_per_hour)
    return out


def build_worker_job(
    *,
    recipe: Recipe,
    run_id: str,
    store_url: str,
    worker_index: int,
    option: LaunchOption,
    secret_names: Sequence[str] = (),
    wheel: Wheel | None = None,
) -> WorkerJob:
    """The managed-job task of worker ``worker_index`` of a run, as task-YAML data.

    Every value that comes from the recipe or the plan and reaches a shell is quoted with
    :func:`shlex.quote`; secrets appear only as placeholders. ``wheel`` is the code the VM
    installs (default: :func:`shipped_wheel`, the running skybatch), shipped in
    ``file_mounts`` so the printed task is launchable as it stands.
    """
    worker_id = f"w{worker_index}"
    name = job_name(run_id, worker_index)
    spot = option.spot
    accelerator = option.accelerator
    count = option.gpus_per_worker
    resources: dict[str, Any] = {
        "use_spot": spot,
        "job_recovery": {
            "strategy": "EAGER_NEXT_REGION",
            "max_restarts_on_errors": 0,
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
        "--max-restarts",
        str(int(recipe.limits.retries)),
    ]
    if spot:
        argv.append("--spot")
    argv += replica_flags(option)  # engines per worker, each on its own GPUs
    run = " ".join(shlex.quote(a) for a in argv)
    wheel = wheel or shipped_wheel()
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
    model_files, model_envs = model_mount(recipe)  # a model on this machine travels too
    envs.update(model_envs)
    config["file_mounts"] = {wheel.remote_path: str(wheel.path), **model_files}
    config["setup"] = setup_script(wheel, worker_extras(recipe.model.engine, store_url))
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
        raise LaunchError(f"task {config.get('name')}: {one_line(e)}") from e


def to_task(job: WorkerJob, secrets: Mapping[str, str]) -> Any:
    """The ``sky.Task`` of a job, with the real secret values (kept in memory only)."""
    import sky

    config = json.loads(json.dumps(job.config))
    if job.secret_names:
        config["secrets"] = {n: secrets[n] for n in job.secret_names}
    try:
        return sky.Task.from_yaml_config(config)
    except ValueError as e:
        raise LaunchError(f"task {job.name}: {one_line(e)}") from e


# ---------------------------------------------------------------------- on the worker VM


def _cluster_infra(env: Mapping[str, str]) -> tuple[str | None, str | None]:
    """Cloud and region of this VM from SkyPilot's ``SKYPILOT_CLUSTER_INFO``."""
    try:
        info = json.loads(env.get("SKYPILOT_CLUSTER_INFO") or "{}")
    except ValueError:
        return None, None
    cloud = info.get("cloud")
    return (str(cloud).lower() if cloud else None), info.get("region")


def worker_argv(
    argv: Sequence[str],
    env: Mapping[str, str],
    *,
    previous: Callable[[str, str, str], Heartbeat | None] | None = None,
) -> list[str]:
    """Translate the task's run command into ``scheduler.worker`` arguments.

    Adds where the job landed (cloud/region) and that offering's $/h, so heartbeats and
    spend reflect the candidate SkyPilot actually chose. ``previous(store, run_id,
    worker_id)`` returns this worker's last heartbeat: one that did not end cleanly means
    SkyPilot recovered this job (a preemption), which the new heartbeat counts.
    """
    import argparse

    p = argparse.ArgumentParser(prog="python -m scheduler.backends.skypilot worker")
    p.add_argument("--store", required=True)
    p.add_argument("--run-id", required=True)
    p.add_argument("--worker-id", required=True)
    p.add_argument("--accelerator", default=None)
    p.add_argument("--prices", default="{}")
    p.add_argument("--spot", action="store_true")
    p.add_argument("--max-restarts", type=int, default=0)  # the entry point's, not the worker's
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
    beat = previous(args.store, args.run_id, args.worker_id) if previous else None
    if beat is not None:
        # "stopped" is the spot notice (SIGTERM): also a preemption. "failed" restarts
        # are errors, and a worker that "exited" found nothing left and is not restarted.
        lost = beat.state not in ("exited", "failed")
        out += ["--preemptions", str(beat.preemptions + int(lost))]
    return out
