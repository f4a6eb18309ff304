"""SkyPilot's managed-job queue, as skybatch reads it: states, spend and cancellation."""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from scheduler.backends.skypilot._session import SkyPilotSession
from scheduler.store import LaunchOption, RunStore

__all__ = ["JobState", "cancel_jobs", "describe_job", "job_statuses"]


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
    run: RunStore | Mapping[str, int],
    *,
    session: Any = None,
    option: LaunchOption | None = None,
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
        jobs = run.read_jobs().job_ids
        prices = {w: b.usd_per_hour for w, b in run.workers().items()}
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


def cancel_jobs(job_ids: Sequence[int], *, session: Any = None) -> None:
    """Cancel managed jobs by id."""
    if not job_ids:
        return
    if session is None:
        with SkyPilotSession() as s:
            s.cancel(job_ids)
    else:
        session.cancel(job_ids)
