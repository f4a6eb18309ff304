"""A conversation with SkyPilot's API server, and what to say when it fails.

``import sky`` takes about 3 s, so it happens only inside the methods that talk to
SkyPilot. :class:`SkyPilotSession` shows a spinner while SkyPilot starts its local API
server, turns "no cloud enabled" into one :class:`LaunchError` line, and stops an API
server it started (leaving one the user started alone). A session made with
``cloud_required=True`` (``launch``) first asks :func:`no_cloud_can_be_enabled` and, when
SkyPilot surely has no cloud, says so without starting a server (seconds instead of ~40 s).
"""

from __future__ import annotations

import re
import sys
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any

from scheduler.backends.skypilot._offline import no_cloud_can_be_enabled
from scheduler.backends.skypilot._task import WorkerJob, one_line, to_task
from scheduler.errors import LaunchError

__all__ = ["NO_CLOUD_MESSAGE", "QUEUE_FIELDS", "SkyPilotSession"]

#: Every ``queue_v2`` field the jobs module reads. SkyPilot 0.14's default field set leaves
#: out cloud, region, start time and failure reason: they must be asked for.
QUEUE_FIELDS = (
    "job_id",
    "status",
    "recovery_count",
    "cloud",
    "region",
    "cluster_resources_full",
    "submitted_at",
    "start_at",
    "end_at",
    "job_duration",
    "failure_reason",
)

NO_CLOUD_MESSAGE = (
    "no cloud is enabled for SkyPilot: run `sky check` to set up credentials, "
    "or run on this machine with `skybatch run RECIPE`"
)


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
# The server log's words when a port it needs is held: its own port, then the port of its
# request-queue manager, which SkyPilot derives from the server's port and which always lies
# in 50000-59999, inside Linux's ephemeral range (32768-60999).
_PORT_TAKEN = re.compile(
    r"Port (\d+) is not available|port (\d+) is already in use by another process"
)
_RETRY_PAUSES_S = (2.0, 5.0)  # then give up: a port held this long is held by a program


def _taken_port(reason: str) -> str | None:
    """The port the server's log says was taken, if that is why it exited."""
    m = _PORT_TAKEN.search(reason)
    return (m.group(1) or m.group(2)) if m else None


def _start_server_retrying_taken_ports(start: Any) -> None:
    """Run SkyPilot's "make sure a server answers" again while a port it needs was taken.

    A local API server exits at start-up when its port, or its queue manager's port, is
    taken. Both lie in Linux's ephemeral range by default, so on a busy machine an unrelated
    outgoing connection can hold one for a moment. Two retries, after 2 s and 5 s, ride that
    out; any other start-up death (bad config, a broken install) would only fail again, so
    it is not retried, and a port that another program really holds fails every time;
    :func:`_why` then names it.
    """
    for pause in (*_RETRY_PAUSES_S, None):
        try:
            start()
            return
        except Exception as e:
            reason = _server_log_reason() if _SERVER_DIED in str(e) else None
            if pause is None or reason is None or _taken_port(reason) is None:
                raise
            time.sleep(pause)


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
    port = _taken_port(reason)
    if port:
        return (
            f"port {port} is in use by another program; stop it, or move SkyPilot's local "
            "server (and the queue port it derives) with SKYPILOT_API_SERVER_LOCAL_PORT"
        )
    return f"{text} The log ends: {reason[:200]}"


class SkyPilotSession:
    """A conversation with SkyPilot's API server.

    On entry it imports SkyPilot and makes sure an API server answers, starting the local
    one if none does (under a spinner); on exit it stops the server if this session started
    it, so a ``skybatch`` command leaves no process behind. Every SkyPilot failure leaves
    as a one-line :class:`LaunchError`. With ``cloud_required`` (a launch), entry raises
    :data:`NO_CLOUD_MESSAGE` before starting a server when no cloud can be enabled.
    """

    def __init__(self, *, quiet: bool = False, cloud_required: bool = False) -> None:
        self.quiet = quiet
        self.cloud_required = cloud_required
        self.started_server = False
        self._silent: Any = None

    def __enter__(self) -> SkyPilotSession:
        if self.cloud_required:
            with _spinner("Checking which clouds SkyPilot can use..."):
                nothing = no_cloud_can_be_enabled()
            if nothing:
                raise LaunchError(NO_CLOUD_MESSAGE)
        with _spinner("Starting SkyPilot (its local API server may take a few seconds)..."):
            try:
                from sky import sky_logging
                from sky.server import common as server_common

                # SkyPilot's own progress lines would break the one-line contract.
                self._silent = sky_logging.silent()
                self._silent.__enter__()
                endpoint = server_common.get_server_url()
                was_up = self._healthy(endpoint)
                _start_server_retrying_taken_ports(server_common.check_server_healthy_or_start_fn)
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

    def queue(
        self, job_ids: Sequence[int], *, fields: Sequence[str] | None = None
    ) -> list[dict[str, Any]]:
        """SkyPilot's managed-job records for ``job_ids`` (plain dicts), with ``fields``
        (default: :data:`QUEUE_FIELDS`, every field skybatch reads)."""
        if fields is None:
            fields = QUEUE_FIELDS
        import sky
        from sky.client import sdk

        try:
            # 0.14's default fields leave out cloud, region, times and failure reasons.
            request = sky.jobs.queue_v2(refresh=False, job_ids=list(job_ids), fields=fields)
            result = sdk.get(request)
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
