"""SkyPilot's managed-job queue, as skybatch reads it: states, spend and cancellation.

SkyPilot reports no cost per job, so spend is priced here, per job, as the sum of its lives:

    each life the worker's heartbeats saw      its seconds × that life's own $/h
      (earlier lives: the heartbeat's prior_usd, priced when they ran; the current life:
       the candidate SkyPilot placed it on, by cloud, region and instance type)
    + each (re)launch's provisioning          start-up seconds × that price
    a job with no heartbeat yet                its running time × the planned price

so a recovery in a dearer region, the gap before a worker starts and an instance type
other than the first in its region are each priced as what they are.
"""

from __future__ import annotations

import re
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from scheduler.backends.skypilot._session import SkyPilotSession
from scheduler.store import Heartbeat, LaunchOption, RunStore

__all__ = ["JobState", "cancel_jobs", "describe_job", "job_spend", "job_statuses"]

# "1x(gpus=L4:1, cpus=4, mem=16, g6.xlarge, disk=256)": the one bare word is the type.
_INSTANCE_TYPE = re.compile(r"\((.*)\)")


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
    instance_type: str | None = None

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
            "instance_type": self.instance_type,
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
        instance_type=_instance_type(rec.get("cluster_resources_full")),
    )


def _instance_type(resources: Any) -> str | None:
    """The instance type in SkyPilot's ``cluster_resources_full`` string, if it names one."""
    match = _INSTANCE_TYPE.search(str(resources or ""))
    if not match:
        return None
    bare = [p.strip() for p in match.group(1).split(",") if p.strip() and "=" not in p]
    return bare[0] if bare else None


def _lives_of(worker_id: str, beats: Mapping[str, Heartbeat]) -> list[Heartbeat]:
    """The heartbeats of a job's worker (and of its engine replicas, ``w3-r0``…)."""
    return [b for w, b in beats.items() if w == worker_id or w.startswith(f"{worker_id}-r")]


def _startup_s(cloud: str | None) -> float:
    try:
        import pricing

        return float(pricing.startup_s(cloud or "aws"))
    except Exception:  # the catalog is advisory here
        return 300.0


def job_spend(
    state: JobState,
    lives: Sequence[Heartbeat],
    option: LaunchOption | None,
    *,
    now: float,
    startup_s: float | None = None,
) -> tuple[float, float]:
    """Billed seconds and dollars of one managed job (see the module docstring)."""
    planned = option.max_usd_per_hour if option is not None else 0.0
    placed = option.price_at(state.cloud, state.region, state.instance_type) if option else None
    end = state.ended_at or now
    provision_s = _startup_s(state.cloud) if startup_s is None else startup_s
    launches = 1 + state.recovery_count
    if not lives:
        if state.status.upper() == "PENDING" or not (state.started_at or state.submitted_at):
            return 0.0, 0.0
        start = state.started_at or state.submitted_at or end
        seconds = max(0.0, end - start)
        price = placed if placed is not None else planned
        return seconds, price * seconds / 3600.0
    # Engine replicas of one instance each report their share of its price.
    share = placed / option.replicas_per_worker if placed is not None and option else None
    seconds = usd = 0.0
    for beat in lives:
        # Earlier lives were priced when they ran; this one at where SkyPilot placed it.
        current = share if share is not None else beat.usd_per_hour
        running = beat.last_seen if beat.ended or state.is_terminal else end
        this_s = max(0.0, (running or end) - beat.started_at) if beat.started_at else 0.0
        seconds += beat.prior_s + this_s
        usd += beat.prior_usd + current * this_s / 3600.0
    instance = placed if placed is not None else sum(b.usd_per_hour for b in lives) or planned
    # Provisioning is paid once per (re)launch of the instance, whatever runs on it.
    seconds += launches * provision_s
    usd += launches * provision_s * instance / 3600.0
    return seconds, usd


def job_statuses(
    run: RunStore | Mapping[str, int],
    *,
    session: Any = None,
    option: LaunchOption | None = None,
) -> list[dict[str, Any]]:
    """Per-worker state of a run's managed jobs, as plain data for ``skybatch status``.

    ``run`` is the run's store (its ``meta/jobs.json`` names the jobs, its heartbeats the
    lives) or a mapping of worker id to job id. Each entry has SkyPilot's status, recovery
    count (preemptions and restarts), cloud/region/instance type, times, failure reason,
    and ``billed_s``/``spend_usd`` over every life (module docstring). ``option`` is the
    launched option (its prices by placement); by default the run's own.
    """
    beats: dict[str, Heartbeat] = {}
    if isinstance(run, RunStore):
        jobs = run.read_jobs().job_ids
        if jobs:
            beats = run.workers()
            option = option if option is not None else run.run_info().option
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
        billed_s, usd = job_spend(state, _lives_of(state.worker_id, beats), option, now=now)
        doc["billed_s"] = round(billed_s, 1)
        doc["spend_usd"] = round(usd, 4)
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
