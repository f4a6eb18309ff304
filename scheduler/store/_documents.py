"""The run's JSON documents as typed, frozen values, each parsed in exactly one place.

A run's documents are written by different processes (the launching machine, every worker
VM) and read by many more (``status``, the TUI, the guard, the SkyPilot backend), so the
shape of each is defined here once::

    run.json               RunInfo        recipe, input (fingerprint, rows), plan, launch option
    workers/<id>.json      Heartbeat      where a worker runs, what it costs, how far it got
    claims/<shard>.json    Claim          the advisory lease on a shard
    meta/jobs.json         JobsDoc        SkyPilot managed jobs by worker id (JobRecord each)

:class:`~scheduler.store._option.LaunchOption` is the option a launch runs; run.json
records it under ``launch.option`` (:mod:`scheduler.store._option`). A document that
cannot be read raises :class:`~scheduler.errors.StoreError` naming the file and the field;
unknown fields are ignored (a newer writer may add some).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from scheduler.errors import StoreError
from scheduler.store._fields import _int, _num, _obj, _opt_str, parse_time
from scheduler.store._option import LaunchOption

__all__ = ["Claim", "Heartbeat", "JobRecord", "JobsDoc", "RunInfo"]


# ---------------------------------------------------------------------- run.json


@dataclass(frozen=True)
class RunInfo:
    """``run.json``: what the run was created from. ``raw`` keeps every field as written."""

    run_id: str
    backend: str
    recipe: Mapping[str, Any]
    recipe_name: str
    recipe_source: str | None
    input_path: str
    input_fingerprint: str | None
    recipe_digest: str | None
    rows_total: int | None
    rows_per_shard: int | None
    model_revision: str | None
    created_at: float | None
    deadline_at: float | None
    option: LaunchOption | None
    raw: Mapping[str, Any] = field(repr=False, compare=False, default_factory=dict)

    @property
    def schedule(self) -> Mapping[str, Any]:
        return dict(self.recipe.get("schedule") or {})

    @property
    def limits(self) -> Mapping[str, Any]:
        return dict(self.recipe.get("limits") or {})

    @property
    def id_column(self) -> str:
        """The input's id column (``id`` unless the recipe names another)."""
        return str((self.recipe.get("input") or {}).get("id_column") or "id")

    @property
    def incremental(self) -> Mapping[str, Any] | None:
        """What ``--incremental`` recorded (earlier runs, rows reused, the new input)."""
        value = self.raw.get("incremental")
        return value if isinstance(value, Mapping) else None

    @property
    def budget_usd(self) -> float | None:
        value = self.schedule.get("budget_usd")
        return None if value is None else float(value)

    @classmethod
    def from_json(cls, doc: Any, *, where: str = "run.json") -> RunInfo:
        d = _obj(doc, where)
        recipe = d.get("recipe") or {}
        if not isinstance(recipe, Mapping):
            raise StoreError(f"{where}: field 'recipe' is not an object")
        return cls(
            run_id=str(d.get("run_id") or ""),
            backend=str(d.get("backend") or "local"),
            recipe=recipe,
            recipe_name=str(recipe.get("name") or d.get("recipe_name") or "?"),
            recipe_source=_opt_str(d, "recipe_source"),
            input_path=str(d.get("input_path") or ""),
            input_fingerprint=_opt_str(d, "input_fingerprint"),
            recipe_digest=_opt_str(d, "recipe_digest"),
            rows_total=None if d.get("rows_total") is None else _int(d, "rows_total", where),
            rows_per_shard=(
                None if d.get("rows_per_shard") is None else _int(d, "rows_per_shard", where)
            ),
            model_revision=_opt_str(d, "model_revision"),
            created_at=parse_time(d.get("created_at")),
            deadline_at=parse_time(d.get("deadline_at")),
            option=_run_option(d, where),
            raw=d,
        )


def _run_option(d: Mapping[str, Any], where: str) -> LaunchOption | None:
    """The option the run was launched with; else the plan's chosen option; else None."""
    launched = (d.get("launch") or {}).get("option")
    if launched:
        return LaunchOption.from_json(launched, where=f"{where}: launch.option")
    plan = d.get("plan") or {}
    options, chosen = plan.get("options") or [], plan.get("chosen")
    if isinstance(chosen, int) and 0 <= chosen < len(options):
        return LaunchOption.from_json(options[chosen], where=f"{where}: plan.options[{chosen}]")
    return None


# ---------------------------------------------------------------------- heartbeats and claims


@dataclass(frozen=True)
class Heartbeat:
    """``workers/<id>.json``: a worker's last word on where it runs and how far it got."""

    worker_id: str
    state: str = "running"
    pid: int | None = None
    host: str | None = None
    accelerator: str | None = None
    cloud: str | None = None
    region: str | None = None
    instance_type: str | None = None
    spot: bool = False
    usd_per_hour: float = 0.0
    preemptions: int = 0
    started_at: float | None = None
    last_seen: float | None = None
    prior_s: float = 0.0  # billed seconds of earlier lives of this worker id
    prior_usd: float = 0.0  # what those earlier lives cost
    rows_done: int = 0
    rows_per_s: float = 0.0
    shards_done: int = 0
    current_shard: str | None = None
    error: str | None = None
    #: The exit code of the worker process, in its last heartbeat (None while it runs).
    exit_code: int | None = None
    #: The local slot the worker is pinned to (``gpus=<CUDA_VISIBLE_DEVICES>`` or
    #: ``cpus=<VLLM_CPU_OMP_THREADS_BIND>``), so another pool on this host leaves it be;
    #: None when unpinned (a cloud worker, heartbeats written before it was kept).
    slot: str | None = None

    @property
    def ended(self) -> bool:
        """The worker said goodbye (found nothing left, was stopped, or failed)."""
        return self.state in ("exited", "stopped", "failed")

    @property
    def life_s(self) -> float:
        """Seconds of this life, start to last heartbeat."""
        if self.started_at is None or self.last_seen is None:
            return 0.0
        return max(0.0, self.last_seen - self.started_at)

    @classmethod
    def from_json(cls, worker_id: str, doc: Any, *, where: str = "heartbeat") -> Heartbeat:
        d = _obj(doc, where)
        pid = d.get("pid")
        return cls(
            worker_id=worker_id,
            state=str(d.get("state") or "running"),
            pid=pid if isinstance(pid, int) else None,
            host=_opt_str(d, "host"),
            accelerator=_opt_str(d, "accelerator"),
            cloud=_opt_str(d, "cloud"),
            region=_opt_str(d, "region"),
            instance_type=_opt_str(d, "instance_type"),
            spot=bool(d.get("spot", False)),
            usd_per_hour=_num(d, "usd_per_hour", where),
            preemptions=_int(d, "preemptions", where),
            started_at=parse_time(d.get("started_at")),
            last_seen=parse_time(d.get("last_seen")),
            prior_s=_num(d, "prior_s", where),
            prior_usd=_num(d, "prior_usd", where),
            rows_done=_int(d, "rows_done", where),
            rows_per_s=_num(d, "rows_per_s", where),
            shards_done=_int(d, "shards_done", where),
            current_shard=_opt_str(d, "current_shard"),
            error=_opt_str(d, "error"),
            exit_code=None if d.get("exit_code") is None else _int(d, "exit_code", where),
            slot=_opt_str(d, "slot"),
        )


@dataclass(frozen=True)
class Claim:
    """``claims/<shard>.json``: the advisory lease on a shard (see the store README)."""

    shard_id: str
    worker: str
    attempt: int
    token: str
    expires_at: float
    failures: int = 0
    last_error: str | None = None
    released: bool = False
    #: How long the lease lasts without a rewrite (None in claims written before it was kept).
    ttl_s: float | None = None

    @classmethod
    def from_json(cls, shard_id: str, doc: Any, *, where: str = "claim") -> Claim:
        d = _obj(doc, where)
        return cls(
            shard_id=str(d.get("shard_id") or shard_id),
            worker=str(d.get("worker") or ""),
            attempt=_int(d, "attempt", where),
            token=str(d.get("token") or ""),
            expires_at=_num(d, "expires_at", where),
            failures=_int(d, "failures", where),
            last_error=_opt_str(d, "last_error"),
            released=bool(d.get("released", False)),
            ttl_s=float(d["ttl_s"]) if isinstance(d.get("ttl_s"), int | float) else None,
        )


# ---------------------------------------------------------------------- meta/jobs.json


@dataclass(frozen=True)
class JobRecord:
    """One worker's SkyPilot managed job, as launch recorded it."""

    job_id: int
    worker_index: int = 0
    name: str = ""
    spot: bool = False
    launched_at: str | None = None
    #: SkyPilot's terminal failure of the job and its reason, once someone has seen it.
    failed: str | None = None
    failure_reason: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "job_id": self.job_id,
            "worker_index": self.worker_index,
            "name": self.name,
            "spot": self.spot,
            "launched_at": self.launched_at,
            "failed": self.failed,
            "failure_reason": self.failure_reason,
        }


@dataclass(frozen=True)
class JobsDoc:
    """``meta/jobs.json``: every managed job launched for the run, by worker id."""

    backend: str = "skypilot"
    workers: Mapping[str, JobRecord] = field(default_factory=dict)

    @property
    def job_ids(self) -> dict[str, int]:
        """Worker id → managed job id."""
        return {w: j.job_id for w, j in self.workers.items()}

    def with_jobs(self, jobs: Mapping[str, JobRecord]) -> JobsDoc:
        """A copy with ``jobs`` added (or replaced) by worker id."""
        return JobsDoc(self.backend, {**self.workers, **jobs})

    @classmethod
    def from_json(cls, doc: Any, *, where: str = "meta/jobs.json") -> JobsDoc:
        if doc is None:
            return cls()
        d = _obj(doc, where)
        workers = d.get("workers") or {}
        out: dict[str, JobRecord] = {}
        for w, j in _obj(workers, f"{where}: workers").items():
            rec = _obj(j, f"{where}: workers.{w}")
            if rec.get("job_id") is None:
                raise StoreError(f"{where}: workers.{w}: field 'job_id' is missing")
            out[str(w)] = JobRecord(
                job_id=_int(rec, "job_id", where),
                worker_index=_int(rec, "worker_index", where),
                name=str(rec.get("name") or ""),
                spot=bool(rec.get("spot")),
                launched_at=_opt_str(rec, "launched_at"),
                failed=_opt_str(rec, "failed"),
                failure_reason=_opt_str(rec, "failure_reason"),
            )
        return cls(str(d.get("backend") or "skypilot"), out)

    def to_json(self) -> dict[str, Any]:
        return {
            "backend": self.backend,
            "workers": {w: j.to_json() for w, j in self.workers.items()},
        }
