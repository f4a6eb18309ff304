"""How the deadline guard adds workers: managed jobs on SkyPilot, or processes here.

:class:`SkyScaler` launches more worker jobs for a run (recording their ids in the store's
``meta/jobs.json`` and DuckDB's ``jobs`` table); :class:`LocalScaler` adds processes to a
:class:`~scheduler.backends.local.LocalPool`. :func:`make_guard` builds the
:class:`~scheduler.launch.DeadlineGuard` of a run from its deadline, budget and the option's
prices (on-demand prices for the last stretch come from the catalog).
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from datetime import datetime, timezone
from typing import Any

from scheduler.errors import LaunchError
from scheduler.launch._guard import DeadlineGuard, GuardConfig
from scheduler.launch._request import LaunchRequest
from scheduler.recipe import Recipe
from scheduler.store import RunStore, parse_time

__all__ = ["LocalScaler", "SkyScaler", "make_guard", "ondemand_offerings", "record_jobs"]


class SkyScaler:
    """Adds workers to a run as SkyPilot managed jobs (the guard's lever in the cloud)."""

    def __init__(
        self,
        store: RunStore,
        recipe: Recipe,
        option: Mapping[str, Any],
        secret_names: tuple[str, ...],
        secrets: Mapping[str, str],
        session: Any,
    ) -> None:
        self.store = store
        self.recipe = recipe
        self.option = dict(option)
        self.secret_names = secret_names
        self.secrets = dict(secrets)
        self.session = session
        doc = store.read_meta("jobs") or {}
        self.jobs: dict[str, int] = {
            w: int(j["job_id"]) for w, j in (doc.get("workers") or {}).items()
        }
        self.states: dict[str, str] = {}

    @property
    def total(self) -> int:
        """Workers launched for this run, ever."""
        return len(self.jobs)

    def alive(self) -> int:
        """Jobs SkyPilot still runs (from the last queue read)."""
        if not self.states:
            return len(self.jobs)
        from scheduler.backends.skypilot import JobState

        return sum(
            1 for w in self.jobs if not JobState(w, 0, self.states.get(w, "PENDING")).is_terminal
        )

    def alive_or_unknown(self) -> int:
        """Jobs of this run SkyPilot still runs (a resumed launch only adds what is missing)."""
        if not self.jobs:
            return 0
        self.refresh()
        return self.alive()

    def refresh(self) -> None:
        """Read the managed-job queue for this run's jobs."""
        from scheduler.backends.skypilot import job_statuses

        self.states = {
            str(d["worker_id"]): str(d["status"])
            for d in job_statuses(self.jobs, session=self.session)
        }

    def add(self, k: int, *, spot: bool) -> int:
        """Launch ``k`` more worker jobs; record their ids in the store and DuckDB."""
        from scheduler.backends import skypilot as sp

        option = {**self.option, "spot": spot}
        if not spot and self.option.get("spot"):
            option["offerings"] = ondemand_offerings(self.option)
        # After the highest index ever used: a job whose submission failed may still have
        # left later ones running, and two jobs must never share a worker id.
        start = 1 + max((int(w[1:]) for w in self.jobs if w[1:].isdigit()), default=-1)
        jobs = [
            sp.build_worker_job(
                recipe=self.recipe,
                run_id=self.store.run_id,
                store_url=self.store.url,
                worker_index=start + i,
                option=option,
                secret_names=self.secret_names,
            )
            for i in range(k)
        ]
        try:
            ids = self.session.launch(jobs, self.secrets)
        except LaunchError as e:
            if e.launched:  # these run: record them, so status, cancel and resume see them
                record_jobs(self.store, jobs, e.launched, spot=spot)
                self.jobs.update(e.launched)
            raise
        record_jobs(self.store, jobs, ids, spot=spot)
        self.jobs.update(ids)
        return len(ids)


def ondemand_offerings(option: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The option's offerings priced on demand (from the catalog when it knows them)."""
    out = []
    try:
        import pricing

        for off in option.get("offerings") or []:
            match = [
                o
                for o in pricing.list_offerings(
                    accelerators=[str(option["accelerator"])],
                    clouds=[off["cloud"]],
                    regions=[off["region"]],
                )
                if o.instance_type == off["instance_type"] and o.price(False) is not None
            ]
            price = match[0].price(False) if match else None
            out.append({**off, "usd_per_hour": price if price is not None else off["usd_per_hour"]})
    except Exception:  # prices are advisory here; the plan's figures still apply
        return list(option.get("offerings") or [])
    return out


def record_jobs(store: RunStore, jobs: list[Any], ids: Mapping[str, int], *, spot: bool) -> None:
    """Record launched job ids with the run (meta ``jobs``) and in DuckDB's ``jobs`` table."""
    doc = store.read_meta("jobs") or {"backend": "skypilot", "workers": {}}
    now = datetime.now(timezone.utc).isoformat()
    for job in jobs:
        if job.worker_id in ids:
            doc["workers"][job.worker_id] = {
                "job_id": ids[job.worker_id],
                "worker_index": job.worker_index,
                "name": job.name,
                "spot": spot,
                "launched_at": now,
            }
    store.write_meta("jobs", doc)
    try:
        import pricing

        for job in jobs:
            if job.worker_id in ids:
                pricing.record_job(
                    run_id=store.run_id,
                    job_id=str(ids[job.worker_id]),
                    worker_index=job.worker_index,
                    cloud=None,
                    region=None,
                )
    except Exception as e:  # the store copy is the one that counts
        store.log_event("note", f"job ids not recorded in DuckDB: {e}")


class LocalScaler:
    """The guard's lever on this machine: a :class:`~scheduler.backends.local.LocalPool`."""

    def __init__(
        self, pool: Any, *, spot_usd_per_hour: float, ondemand_usd_per_hour: float
    ) -> None:
        self.pool = pool
        self.spot_usd_per_hour = spot_usd_per_hour
        self.ondemand_usd_per_hour = ondemand_usd_per_hour

    def alive(self) -> int:
        return int(self.pool.alive())

    def add(self, k: int, *, spot: bool) -> int:
        price = self.spot_usd_per_hour if spot else self.ondemand_usd_per_hour
        return len(self.pool.add(k, usd_per_hour=price))


def make_guard(
    store: RunStore, scaler: Any, option: Mapping[str, Any], req: LaunchRequest, *, cloud: bool
) -> DeadlineGuard | None:
    info = store.read_run_info()
    deadline_at = parse_time(info.get("deadline_at"))
    if not req.guard or deadline_at is None:
        return None
    recipe = info.get("recipe") or {}
    schedule = recipe.get("schedule") or {}
    offs = option.get("offerings") or [{}]
    price = float(offs[0].get("usd_per_hour") or req.usd_per_hour or 0.0)
    if cloud:
        ondemand = float((ondemand_offerings(option) or [{}])[0].get("usd_per_hour") or price)
        try:
            import pricing

            startup = float(pricing.startup_s(str(offs[0].get("cloud") or "aws")))
        except Exception:
            startup = 300.0
        stretch = 1800.0
    else:
        ondemand, startup = price, 3.0
        stretch = min(1800.0, 0.25 * max(0.0, deadline_at - time.time()))
    cfg = GuardConfig(
        deadline_at=deadline_at,
        budget_usd=schedule.get("budget_usd"),
        interval_s=req.guard_interval_s,
        max_workers=int(schedule.get("max_workers") or 16),
        spot_usd_per_hour=price,
        ondemand_usd_per_hour=ondemand,
        startup_s=startup,
        last_stretch_s=stretch,
        spot_allowed=schedule.get("spot", "prefer") != "never",
    )
    return DeadlineGuard(store, scaler, cfg)
