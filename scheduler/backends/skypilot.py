"""The SkyPilot backend: one managed job per worker, spot with recovery across regions.

Each worker of a run becomes one SkyPilot managed job whose task is built (by
:mod:`scheduler.backends._skytask`, re-exported here) as plain task-YAML data, so
``launch --dry-run`` can print exactly what would be launched, and turned into a
``sky.Task`` only at launch time, when the secret values are filled in::

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

import os
import re
import sys
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from scheduler.backends._skytask import (
    DEFAULT_SECRET_NAMES,
    MAX_CANDIDATES,
    RECOVER_EXIT_CODES,
    WorkerJob,
    build_worker_job,
    candidates,
    job_name,
    one_line,
    pip_spec,
    render_yaml,
    require_object_store,
    secret_names_from_env,
    secret_values,
    to_task,
    validate_task_config,
    worker_argv,
)
from scheduler.errors import LaunchError
from scheduler.store import RunStore

__all__ = [
    "DEFAULT_SECRET_NAMES",
    "MAX_CANDIDATES",
    "NO_CLOUD_MESSAGE",
    "RECOVER_EXIT_CODES",
    "JobState",
    "SkyPilotSession",
    "WorkerJob",
    "build_worker_job",
    "cancel_jobs",
    "candidates",
    "describe_job",
    "job_name",
    "job_statuses",
    "pip_spec",
    "render_yaml",
    "require_object_store",
    "secret_names_from_env",
    "secret_values",
    "to_task",
    "validate_task_config",
    "worker_argv",
]

NO_CLOUD_MESSAGE = (
    "no cloud is enabled for SkyPilot: run `sky check` to set up credentials, "
    "or run on this machine with `skybatch run RECIPE`"
)


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


# ---------------------------------------------------------------------- talking to SkyPilot


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


_SERVER_DIED = "exited unexpectedly"  # SkyPilot's words when its new local server dies
_PORT_TAKEN = re.compile(r"Port (\d+) is not available")  # the server log's, then


def _start_server_with_one_retry(start: Any) -> None:
    """Run SkyPilot's "make sure a server answers" once more if its port was taken.

    A local API server exits at start-up when its port is taken, and on a busy machine the
    port can be held for a moment by an unrelated outgoing connection (SkyPilot's default
    port lies in Linux's ephemeral range). One retry after a pause rides that out; any other
    start-up death (bad config, a broken install) would only fail again, so it is not
    retried, and a port that another program really holds fails twice; :func:`_why` says
    which.
    """
    try:
        start()
    except Exception as e:
        reason = _server_log_reason() if _SERVER_DIED in str(e) else None
        if reason is None or not _PORT_TAKEN.search(reason):
            raise
        time.sleep(2.0)
        start()


def _server_log_reason() -> str | None:
    """The last line of the local API server's log, where it says why it exited."""
    try:
        from sky.skylet import constants, runtime_utils

        path = runtime_utils.expanduser(constants.API_SERVER_LOGS)
        with open(path, encoding="utf-8", errors="replace") as f:
            lines = [ln.strip() for ln in f.read()[-20_000:].splitlines() if ln.strip()]
    except Exception:  # no log (or another SkyPilot layout): the caller keeps SkyPilot's words
        return None
    return lines[-1] if lines else None


def _why(e: BaseException) -> str:
    """SkyPilot's start-up failure on one line, with the reason from the server's log."""
    text = one_line(e)
    if _SERVER_DIED not in text:
        return text
    reason = _server_log_reason()
    if reason is None:
        return text
    port = _PORT_TAKEN.search(reason)
    if port:
        return (
            f"port {port.group(1)} is in use by another program; stop it, or pick a free "
            "port with SKYPILOT_API_SERVER_LOCAL_PORT"
        )
    return f"{text} The log ends: {reason[:200]}"


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
                _start_server_with_one_retry(server_common.check_server_healthy_or_start_fn)
                self.started_server = not was_up and server_common.is_api_server_local(endpoint)
            except LaunchError:
                self._close()
                raise
            except Exception as e:
                self._close()
                raise LaunchError(f"SkyPilot's API server did not start: {_why(e)}") from e
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
            raise LaunchError(f"SkyPilot could not list enabled clouds: {one_line(e)}") from e
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
        ids: dict[str, int] = {}
        try:
            with _spinner(f"Submitting {len(jobs)} managed job(s) to SkyPilot..."):
                for job, task in tasks:
                    requests.append((job, sky.jobs.launch(task, name=job.name)))
                for job, request in requests:
                    job_ids, _handle = sdk.get(request)
                    if not job_ids:
                        raise LaunchError(f"SkyPilot returned no job id for {job.name}")
                    ids[job.worker_id] = int(job_ids[0])
        except LaunchError as e:
            raise LaunchError(str(e), launched=ids) from e
        except Exception as e:
            if type(e).__name__ == "NoCloudAccessError":
                raise LaunchError(NO_CLOUD_MESSAGE, launched=ids) from e
            raise LaunchError(
                f"SkyPilot could not launch the workers: {one_line(e)}", launched=ids
            ) from e
        return ids

    def queue(self, job_ids: Sequence[int]) -> list[dict[str, Any]]:
        """SkyPilot's managed-job records for ``job_ids`` (plain dicts)."""
        import sky
        from sky.client import sdk

        try:
            result = sdk.get(sky.jobs.queue_v2(refresh=False, job_ids=list(job_ids)))
        except Exception as e:
            raise LaunchError(f"SkyPilot could not read the job queue: {one_line(e)}") from e
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
                f"SkyPilot could not cancel jobs {list(job_ids)}: {one_line(e)}"
            ) from e


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


def _main(argv: Sequence[str]) -> int:
    if not argv or argv[0] != "worker":
        print(
            "usage: python -m scheduler.backends.skypilot worker --store URL ...", file=sys.stderr
        )
        return 2
    from scheduler import worker

    def previous(store_url: str, run_id: str, worker_id: str) -> Mapping[str, Any] | None:
        try:
            return RunStore(store_url, run_id).workers().get(worker_id)
        except Exception:  # a flaky read must not keep the worker from starting
            return None

    return worker.main(worker_argv(argv[1:], os.environ, previous=previous))


if __name__ == "__main__":
    sys.exit(_main(sys.argv[1:]))
