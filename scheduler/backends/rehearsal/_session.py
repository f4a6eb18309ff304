"""A SkyPilot session that runs each managed job here, on sandboxed "VMs", by 0.14's rules.

:class:`RehearsalSession` has the methods of
:class:`~scheduler.backends.skypilot.SkyPilotSession` (``launch``, ``queue``, ``cancel``,
``enabled_clouds``, ``require_cloud``, a context manager), so the launch flow, the guard,
``watch`` and the spend all run unchanged on top of it. Each job is played by a thread that
does what SkyPilot's jobs controller does::

    PENDING ─► STARTING (new VM in the next candidate: file mounts, fresh venv, setup)
                 │ setup fails ─► restart rule ─► FAILED_SETUP
                 ▼
               RUNNING (run) ─► exit 0 ───────────────────────────► SUCCEEDED
                 │              exit in recover_on_exit_codes ────► RECOVERING ─► STARTING
                 │              other exit: counted against max_restarts_on_errors
                 │                          (within it: RECOVERING, else FAILED)
                 └ died from a signal: the VM was lost (a preemption) ─► RECOVERING
    cancel: SIGTERM to the job's processes ─► CANCELLED

A recovery always gets a new sandbox (EAGER_NEXT_REGION tears the cluster down) in the
next candidate of ``any_of``, so a rehearsal exercises more than one region.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from scheduler.backends.rehearsal._sandbox import Sandbox

__all__ = ["RehearsalSession"]

Echo = Callable[[str], None]
_TERMINAL = {"SUCCEEDED", "FAILED", "FAILED_SETUP", "FAILED_CONTROLLER", "CANCELLED"}
#: Clouds a rehearsal plans over when the recipe names none (no account is asked about).
_SKY_CLOUDS = ("aws", "azure", "gcp", "lambda", "nebius", "oci", "runpod")


@dataclass
class _Job:
    """One managed job's record, as SkyPilot's ``queue_v2`` shows it."""

    job_id: int
    job: Any  # a WorkerJob
    secrets: dict[str, str]
    status: str = "PENDING"
    recovery_count: int = 0
    cloud: str | None = None
    region: str | None = None
    submitted_at: float = field(default_factory=time.time)
    start_at: float | None = None
    end_at: float | None = None
    failure_reason: str | None = None
    sandbox: Sandbox | None = None
    cancelled: bool = False
    lives: list[dict[str, Any]] = field(default_factory=list)

    def record(self) -> dict[str, Any]:
        return {
            "job_id": self.job_id, "job_name": self.job.name, "status": self.status,
            "recovery_count": self.recovery_count, "cloud": self.cloud, "region": self.region,
            "submitted_at": self.submitted_at, "start_at": self.start_at,
            "end_at": self.end_at, "failure_reason": self.failure_reason,
            "job_duration": (self.end_at or time.time()) - self.start_at
            if self.start_at else None,
        }  # fmt: skip


def _candidates(resources: Mapping[str, Any]) -> list[tuple[str, str]]:
    """(cloud, region) of each candidate, in the task's order."""
    cands = resources.get("any_of") or [resources]
    out = []
    for c in cands:
        cloud, _, region = str(c.get("infra") or "aws/us-east-1").partition("/")
        out.append((cloud, region.split("/")[0] or "us-east-1"))
    return out


class RehearsalSession:
    """Managed jobs played on this machine, one sandboxed "VM" per life."""

    queue_every_s = 2.0  # a rehearsal's jobs end in seconds; watch reads the queue often

    def __init__(self, *, root: Path, echo: Echo, clouds: Sequence[str] | None = None,
                 grace_s: float = 20.0, linger_s: float = 120.0) -> None:  # fmt: skip
        self.root = root
        self.echo = echo
        self.clouds = list(clouds or _SKY_CLOUDS)
        self.grace_s = grace_s
        self.linger_s = linger_s
        self._jobs: dict[int, _Job] = {}
        self._threads: list[threading.Thread] = []
        self._lock = threading.Lock()
        self._said_standins = False

    def __enter__(self) -> RehearsalSession:
        self.echo(
            f"rehearsal: no cloud account is used; planning over the recipe's clouds "
            f"({', '.join(self.clouds)}), not only the enabled ones"
        )
        return self

    def __exit__(self, exc_type: object, *exc: object) -> None:
        # Managed jobs outlive a SkyPilot session; here they cannot outlive the command.
        # A finished run's workers exit by themselves within seconds (nothing left to
        # claim): wait for that, and cancel only what is still running then.
        deadline = time.monotonic() + (0.0 if exc_type is not None else self.linger_s)
        while time.monotonic() < deadline and self._live():
            time.sleep(0.2)
        if self._live():
            self.cancel(self._live())
        for t in self._threads:
            t.join(timeout=self.grace_s + 30)

    def _live(self) -> list[int]:
        return [j.job_id for j in self._jobs.values() if j.status not in _TERMINAL]

    # ------------------------------------------------------------------ SkyPilotSession's face

    def enabled_clouds(self) -> list[str]:
        """The clouds the rehearsal stands in for (all the recipe's: no account needed)."""
        return list(self.clouds)

    def require_cloud(self) -> list[str]:
        """As :meth:`SkyPilotSession.require_cloud`; a rehearsal always has its clouds."""
        return self.enabled_clouds()

    def launch(self, jobs: Sequence[Any], secrets: Mapping[str, str]) -> dict[str, int]:
        """Start every job's controller thread; returns worker id -> job id."""
        ids: dict[str, int] = {}
        for job in jobs:
            with self._lock:
                job_id = len(self._jobs) + 1
                rec = _Job(job_id=job_id, job=job,
                           secrets={n: secrets[n] for n in job.secret_names})  # fmt: skip
                self._jobs[job_id] = rec
            t = threading.Thread(target=self._control, args=(rec,), daemon=True,
                                 name=f"rehearsal-{job.name}")  # fmt: skip
            self._threads.append(t)
            t.start()
            ids[job.worker_id] = job_id
        return ids

    def queue(self, job_ids: Sequence[int]) -> list[dict[str, Any]]:
        """Records like SkyPilot's ``queue_v2`` for ``job_ids``."""
        return [self._jobs[j].record() for j in job_ids if j in self._jobs]

    def cancel(self, job_ids: Sequence[int]) -> None:
        """Cancel jobs: their worker gets SIGTERM (releases its shard), then the VM goes."""
        for j in job_ids:
            rec = self._jobs.get(j)
            if rec is None or rec.status in _TERMINAL:
                continue
            rec.cancelled = True
            if rec.sandbox is not None:
                rec.sandbox.stop(self.grace_s)

    # ------------------------------------------------------------------ for tests and the CLI

    def jobs(self) -> list[dict[str, Any]]:
        """Every job's record and its lives (setup seconds, packages, exit, where)."""
        return [{**r.record(), "worker_id": r.job.worker_id, "lives": list(r.lives)}
                for r in self._jobs.values()]  # fmt: skip

    def pid(self, worker_id: str) -> int | None:
        """The process id of ``worker_id``'s running script (its VM's process group)."""
        for r in self._jobs.values():
            if r.job.worker_id == worker_id and r.sandbox is not None and r.status == "RUNNING":
                return r.sandbox.pid()
        return None

    # ------------------------------------------------------------------ the controller

    def _control(self, rec: _Job) -> None:
        task = rec.job.config
        resources = task.get("resources") or {}
        policy = resources.get("job_recovery") or {}
        recover = {int(c) for c in policy.get("recover_on_exit_codes") or []}
        max_restarts = int(policy.get("max_restarts_on_errors") or 0)
        cands = _candidates(resources)
        restarts = 0
        life = 0
        while True:
            cloud, region = cands[life % len(cands)]
            life += 1
            outcome = self._one_life(rec, life, cloud, region)
            if outcome is None:  # cancelled, or the rehearsal itself could not start a VM
                return
            stage, code = outcome
            why = ""
            if stage == "run" and code == 0:
                rec.status, rec.end_at = "SUCCEEDED", time.time()
                return
            if code < 0 or code == 128 + 9:
                why = f"VM lost (signal {-code if code < 0 else 9}): recovering"
            elif code in recover:
                why = f"exit code {code} matched recover_on_exit_codes: recovering"
            else:
                restarts += 1
                if restarts > max_restarts:
                    status = "FAILED_SETUP" if stage == "setup" else "FAILED"
                    log = rec.lives[-1][f"{stage}_log"]
                    rec.failure_reason = (
                        f"Job exited with exit code {code} (user program failure); not restarted "
                        f"(max_restarts_on_errors: {max_restarts}). Log: {log}"
                    )
                    rec.status, rec.end_at = status, time.time()
                    self.echo(f"rehearsal: {rec.job.worker_id} {status}: {stage} exited {code}; "
                              f"last line: {_last_line(Path(log))}")  # fmt: skip
                    return
                why = f"exit code {code}: restart {restarts} of {max_restarts} on errors"
            rec.status = "RECOVERING"
            rec.recovery_count += 1
            nxt = cands[life % len(cands)]
            self.echo(
                f"rehearsal: {rec.job.worker_id} on {cloud}/{region}: {why}; new VM in "
                f"{nxt[0]}/{nxt[1]} (the next candidate; SkyPilot 0.14 may pick the same region)"
            )

    def _one_life(self, rec: _Job, life: int, cloud: str, region: str) -> tuple[str, int] | None:
        """Provision a sandbox, run setup then run; (stage, exit code), None when cancelled."""
        folder = self.root / rec.job.run_id / rec.job.worker_id / f"vm{life}-{cloud}-{region}"
        task_id = f"sky-managed-{int(rec.submitted_at)}_{rec.job.name}_{rec.job_id}-{life - 1}"
        box = Sandbox(folder, task=rec.job.config, cloud=cloud, region=region,
                      task_id=task_id, secrets=rec.secrets)  # fmt: skip
        entry: dict[str, Any] = {"life": life, "cloud": cloud, "region": region,
                                 "setup_log": str(folder / "setup.log"),
                                 "run_log": str(folder / "run.log")}  # fmt: skip
        rec.lives.append(entry)
        rec.status, rec.cloud, rec.region, rec.sandbox = "STARTING", cloud, region, box
        try:
            if rec.cancelled:
                return self._cancelled(rec, box)
            started = time.monotonic()
            box.provision()
            if not self._said_standins:
                self._said_standins = True
                for line in box.standins():
                    self.echo(f"rehearsal: stand-in: {line}")
            code = box.execute(str(rec.job.config.get("setup") or "true"), folder / "setup.log")
            entry["setup_s"] = round(time.monotonic() - started, 1)
            entry["installed"] = box.installed()
            entry["packages"] = len(entry["installed"])
            entry["setup_exit"] = code
            self.echo(
                f"rehearsal: {rec.job.worker_id} VM {life} ({cloud}/{region}): setup "
                f"{'ok' if code == 0 else f'exit {code}'} in {entry['setup_s']} s, "
                f"{entry['packages']} packages installed"
            )
            if rec.cancelled:
                return self._cancelled(rec, box)
            if code != 0:
                return "setup", code
            rec.status = "RUNNING"
            rec.start_at = rec.start_at or time.time()
            code = box.execute(str(rec.job.config.get("run") or "true"), folder / "run.log")
            entry["run_exit"] = code
            if rec.cancelled:
                return self._cancelled(rec, box)
            return "run", code
        except Exception as e:  # the rehearsal's own trouble (disk, venv): a failed start
            rec.failure_reason = f"the rehearsal could not start a VM: {type(e).__name__}: {e}"
            rec.status, rec.end_at = "FAILED_CONTROLLER", time.time()
            self.echo(f"rehearsal: {rec.job.worker_id}: {rec.failure_reason}")
            return None
        finally:
            box.discard()

    @staticmethod
    def _cancelled(rec: _Job, box: Sandbox) -> None:
        rec.status, rec.end_at = "CANCELLED", time.time()
        return None


def _last_line(log: Path) -> str:
    try:
        lines = [ln.strip() for ln in log.read_text(errors="replace").splitlines() if ln.strip()]
    except OSError:
        return "(no log)"
    return lines[-1][:300] if lines else "(empty log)"
