"""The SkyPilot :class:`~scheduler.backends.base.Backend`: one managed job per worker.

:class:`SkyPilotBackend` launches worker jobs for a run through a session (the seam in
:mod:`scheduler.backends.base`), records their ids in the store's ``meta/jobs.json`` and
DuckDB's ``jobs`` table (:func:`record_jobs`), reads the queue, cancels, and bills. An
on-demand worker added to a spot run gets on-demand prices (:func:`ondemand_offerings`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import replace
from datetime import datetime, timezone
from typing import Any

from scheduler.backends.skypilot._jobs import JobState, job_statuses
from scheduler.backends.skypilot._task import WorkerJob, build_worker_job
from scheduler.errors import LaunchError
from scheduler.recipe import Recipe
from scheduler.store import JobRecord, LaunchOption, Offering, RunStore

__all__ = ["SkyPilotBackend", "ondemand_offerings", "record_jobs"]


class SkyPilotBackend:
    """The workers of a run as SkyPilot managed jobs (see :class:`Backend`).

    ``recipe`` builds the tasks of added workers; None reads it from run.json when needed.
    """

    name = "skypilot"
    #: Workers run on other machines: the store and the input must be reachable from them.
    remote = True

    def __init__(
        self,
        store: RunStore,
        recipe: Recipe | None,
        option: LaunchOption,
        session: Any,
        *,
        secret_names: tuple[str, ...] = (),
        secrets: Mapping[str, str] | None = None,
    ) -> None:
        self.store = store
        self.recipe = recipe
        self.option = option
        self.secret_names = secret_names
        self.secrets = dict(secrets or {})
        self.session = session
        self.job_ids: dict[str, int] = store.read_jobs().job_ids
        self.states: dict[str, str] = {}
        self._last_jobs: list[dict[str, Any]] | None = None

    @property
    def launched(self) -> int:
        """Workers launched for this run, ever."""
        return len(self.job_ids)

    def start(self, workers: int) -> int:
        """Launch the jobs still missing for ``workers`` (a resumed run keeps its jobs)."""
        missing = workers - (self._alive_now() if self.job_ids else 0)
        return self.add(missing, spot=self.option.spot) if missing > 0 else 0

    def _alive_now(self) -> int:
        self.refresh()
        return self.alive()

    def alive(self) -> int:
        """Jobs SkyPilot still runs (from the last queue read)."""
        if not self.states:
            return len(self.job_ids)
        return sum(
            1 for w in self.job_ids if not JobState(w, 0, self.states.get(w, "PENDING")).is_terminal
        )

    def refresh(self) -> None:
        """Read the managed-job queue for this run's jobs; log each failure once, with
        SkyPilot's reason, so ``status``, the TUI's event log and CI see why."""
        self._last_jobs = job_statuses(self.store, session=self.session, option=self.option)
        self.states = {str(d["worker_id"]): str(d["status"]) for d in self._last_jobs}
        doc_now = self.store.read_jobs()
        seen: dict[str, JobRecord] = {}
        for doc in self._last_jobs:
            worker, status = str(doc["worker_id"]), str(doc["status"])
            record = doc_now.workers.get(worker)
            if not status.startswith("FAILED") or record is None or record.failed == status:
                continue
            reason = doc.get("failure_reason") or "no reason given"
            seen[worker] = replace(record, failed=status, failure_reason=doc.get("failure_reason"))
            self.store.log_event(
                "job_failed",
                f"{worker}: job {doc['job_id']} {status}: {reason}",
                level="warning",
                worker=worker,
                job_id=doc["job_id"],
                status=status,
                failure_reason=doc.get("failure_reason"),
            )
        if seen:  # recorded in the store, so the next reader (any process) logs it no more
            self.store.write_jobs(doc_now.with_jobs(seen))

    def ended(self) -> bool:
        """True when every job launched for the run has ended."""
        self.refresh()
        return bool(self.job_ids) and self.alive() == 0

    def jobs(self) -> list[dict[str, Any]]:
        """SkyPilot's queue records of the run's jobs, with spend (read now)."""
        self.refresh()
        return list(self._last_jobs or [])

    def billed_usd(self) -> float | None:
        """Spend over every job's lives, as :func:`job_statuses` prices them (from the
        last queue read; one is made when there was none)."""
        if self._last_jobs is None:
            self.refresh()
        return sum(float(d["spend_usd"]) for d in self._last_jobs or [])

    def cancel(self) -> list[str]:
        """Cancel every job of the run; returns their ids."""
        ids = sorted(self.job_ids.values())
        if ids:
            self.session.cancel(ids)
        return [str(i) for i in ids]

    def add(self, k: int, *, spot: bool) -> int:
        """Launch ``k`` more worker jobs; record their ids in the store and DuckDB."""
        if self.recipe is None:  # an existing run's: only adding workers needs it
            from scheduler.recipe import recipe_from_dict

            info = self.store.run_info()
            self.recipe = recipe_from_dict(
                dict(info.recipe), source=f"{self.store.location}/run.json"
            )
        option = self.option.with_(spot=spot)
        if not spot and self.option.spot:
            option = option.with_(offerings=ondemand_offerings(self.option))
        # After the highest index ever used: a job whose submission failed may still have
        # left later ones running, and two jobs must never share a worker id.
        start = 1 + max((int(w[1:]) for w in self.job_ids if w[1:].isdigit()), default=-1)
        jobs = [
            build_worker_job(
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
                self.job_ids.update(e.launched)
            raise
        record_jobs(self.store, jobs, ids, spot=spot)
        self.job_ids.update(ids)
        return len(ids)


def ondemand_offerings(option: LaunchOption) -> tuple[Offering, ...]:
    """The option's offerings priced on demand (from the catalog when it knows them)."""
    out = []
    try:
        import pricing

        for off in option.offerings:
            match = [
                o
                for o in pricing.list_offerings(
                    accelerators=[option.accelerator], clouds=[off.cloud], regions=[off.region]
                )
                if o.instance_type == off.instance_type and o.price(False) is not None
            ]
            price = match[0].price(False) if match else None
            out.append(
                Offering(off.cloud, off.region, off.instance_type, price or off.usd_per_hour)
            )
    except Exception:  # prices are advisory here; the plan's figures still apply
        return option.offerings
    return tuple(out)


def record_jobs(
    store: RunStore, jobs: Sequence[WorkerJob], ids: Mapping[str, int], *, spot: bool
) -> None:
    """Record launched job ids with the run (meta ``jobs``) and in DuckDB's ``jobs`` table."""
    now = datetime.now(timezone.utc).isoformat()
    records = {
        job.worker_id: JobRecord(ids[job.worker_id], job.worker_index, job.name, spot, now)
        for job in jobs
        if job.worker_id in ids
    }
    store.write_jobs(store.read_jobs().with_jobs(records))
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
