"""The pool of local worker processes behind :mod:`scheduler.backends.local`.

:class:`LocalPool` starts ``python -m scheduler.worker`` processes against a run, restarts
one that crashes (a bounded number of times), and stops them all within the spot notice
window (SIGTERM, then SIGKILL after ``timeout_s``). Each worker gets its own slice of this
machine's GPUs (or, for vLLM on a CPU, its own cores), never one a live worker of the run
holds, whichever process started it; more workers than free slices are capped with one
line (:mod:`._slots` says why). Worker logs go to ``<store>/<run>/logs/<worker>.log`` for a
local store (a temporary directory otherwise).
"""

from __future__ import annotations

import contextlib
import dataclasses
import itertools
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from scheduler.backends._slots import WorkerSlots, live_slots
from scheduler.backends._worker_log import WorkerLog
from scheduler.errors import SkybatchError
from scheduler.store import RunStore
from scheduler.worker import EXIT_ENGINE, EXIT_STOPPED, EXIT_STORE, SLOT_ENV, default_worker_id

__all__ = ["LocalPool"]

# One sequence per process: two pools in one process (a test, the TUI running two runs)
# never hand out the same index, and the pid in the id separates drivers on one host.
_WORKER_INDEX = itertools.count()


@contextlib.contextmanager
def _interrupt_after() -> Iterator[None]:
    """Hold a Ctrl-C that arrives inside the block until the block is done.

    Between ``Popen`` returning and the pool recording the process, an interrupt would
    leave a worker nobody stops. Only the main thread can take signals (the dashboard
    runs the pool in a thread, where there is nothing to hold).
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    held: list[int] = []
    previous = signal.signal(signal.SIGINT, lambda signum, frame: held.append(signum))
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)
        if held:
            raise KeyboardInterrupt


@dataclass
class _Proc:
    worker_id: str
    popen: subprocess.Popen[bytes]
    log: WorkerLog
    usd_per_hour: float
    started_at: float = field(default_factory=time.time)


@dataclass
class LocalPool:
    """Worker processes for one run on this machine."""

    store: RunStore
    env: dict[str, str] | None = None
    max_restarts: int = 3
    heartbeat_s: float = 2.0
    usd_per_hour: float = 0.0
    procs: dict[str, _Proc] = field(default_factory=dict)
    fatal_error: str | None = None
    fatal_store_error: str | None = None
    restarts: int = 0
    #: This machine's GPUs (``CUDA_VISIBLE_DEVICES`` entries); None: found on first start.
    gpus: list[str] | None = None
    _planned: int = 1  # how many workers will share this machine's cores
    _slots: WorkerSlots | None = None
    _capped: str | None = None  # the last cap line said, so the guard's retries stay quiet

    def _log_dir(self) -> Path:
        if self.store.local:
            path = Path(self.store.path("logs"))
        else:
            path = Path(tempfile.gettempdir()) / "skybatch-logs" / self.store.run_id
        path.mkdir(parents=True, exist_ok=True)
        return path

    def slots(self) -> WorkerSlots:
        """Which GPUs or cores each worker gets, found once per pool from run.json."""
        if self._slots is None:
            env = {**os.environ, **(self.env or {})}
            self._slots = WorkerSlots.detect(self.store.run_info().recipe, env, gpus=self.gpus)
        return self._slots

    def held_elsewhere(self) -> list[str]:
        """Slots of this run's live workers on this host that this pool did not start."""
        beats = self.store.workers()
        return live_slots(beats, skip=self.procs, host=socket.gethostname(), now=time.time())

    def _claim_slot(self, proc: _Proc, slot: str) -> None:
        """Write a new pinned worker's first heartbeat now, naming its slot: until the
        worker has started and beats itself, another pool would see the slot as free."""
        doc = {
            "state": "starting", "pid": proc.popen.pid, "host": socket.gethostname(),
            "started_at": proc.started_at, "usd_per_hour": proc.usd_per_hour,
            "rows_done": 0, "slot": slot,
        }  # fmt: skip
        try:
            self.store.heartbeat(proc.worker_id, doc)
        except (OSError, SkybatchError) as e:  # the worker's own heartbeat will say it
            print(
                f"skybatch: could not record worker {proc.worker_id}'s slot: {e}", file=sys.stderr
            )

    def worker_env(self, worker_id: str) -> dict[str, str]:
        """The environment worker ``worker_id`` starts with (the same on a restart)."""
        env = {**os.environ, **(self.env or {})}
        env.setdefault("HF_HUB_OFFLINE", "1")
        env.setdefault("TOKENIZERS_PARALLELISM", "false")
        # Share the cores between all the workers instead of oversubscribing them.
        threads = max(1, (os.cpu_count() or 1) // max(1, self._planned))
        env.setdefault("OMP_NUM_THREADS", str(threads))
        env.update(self.slots().env_for(worker_id, planned=self._planned))
        return env

    def _spawn(self, worker_id: str, usd_per_hour: float) -> _Proc:
        env = self.worker_env(worker_id)
        cmd = [
            sys.executable, "-m", "scheduler.worker",
            "--store", self.store.url, "--run-id", self.store.run_id,
            "--worker-id", worker_id, "--heartbeat-s", str(self.heartbeat_s),
            "--usd-per-hour", str(usd_per_hour),
        ]  # fmt: skip
        popen = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env)
        assert popen.stdout is not None
        return _Proc(
            worker_id, popen, WorkerLog(self._log_path(worker_id), popen.stdout), usd_per_hour
        )

    def _log_path(self, worker_id: str) -> Path:
        try:
            return self._log_dir() / f"{worker_id}.log"
        except OSError:  # a full disk cannot take the folder: the driver keeps the tail
            return Path(os.devnull)

    def last_lines(self, n: int = 5) -> dict[str, list[str]]:
        """The last lines each worker printed, by worker id (kept by the driver)."""
        return {w: p.log.last_lines(n) for w, p in self.procs.items() if p.log.last_lines(n)}

    def start(self, n: int) -> list[str]:
        """Start ``n`` workers; returns their ids."""
        return self.add(n)

    def add(self, k: int, *, usd_per_hour: float | None = None) -> list[str]:
        """Start ``k`` more workers (the deadline guard's lever); returns their ids.

        Fewer start when this machine's GPUs hold fewer (one line on stderr says so).
        """
        slots = self.slots()
        if slots.pinned:  # another process's pool may hold slots of this run here
            slots.elsewhere = self.held_elsewhere()
        k, capped = slots.room(k)
        if capped is not None and capped != self._capped:
            self._capped = capped
            print(f"skybatch: {capped}", file=sys.stderr, flush=True)
            self.store.log_event("workers_capped", capped)
        ids = []
        self._planned = max(self._planned, len(self.procs) + k)
        for _ in range(k):
            worker_id = default_worker_id(next(_WORKER_INDEX))
            price = self.usd_per_hour if usd_per_hour is None else usd_per_hour
            with _interrupt_after():  # a started process is always recorded, so stop() finds it
                self.procs[worker_id] = proc = self._spawn(worker_id, price)
            slot = slots.given.get(worker_id, {}).get(SLOT_ENV)
            if slot:
                self._claim_slot(proc, slot)
            ids.append(worker_id)
        return ids

    def alive(self) -> int:
        """How many workers are running."""
        return sum(1 for p in self.procs.values() if p.popen.poll() is None)

    def pids(self) -> dict[str, int]:
        """Process ids of the running workers, by worker id."""
        return {w: p.popen.pid for w, p in self.procs.items() if p.popen.poll() is None}

    def poll(self) -> list[str]:
        """Reap exited workers and restart crashed ones; returns what happened, in words."""
        happened: list[str] = []
        for worker_id, proc in list(self.procs.items()):
            code = proc.popen.poll()
            if code is None or proc.log.closed:
                continue
            proc.log.close()
            if code in (0, EXIT_STOPPED):
                continue
            if code == EXIT_STORE:
                # Unreachable or full: restarting cannot help, and the run cannot go on.
                self.fatal_store_error = proc.log.last_line() or (
                    f"worker {worker_id}: the store {self.store.url} cannot be used"
                )
                happened.append(self.fatal_store_error)
                continue
            if code == EXIT_ENGINE:
                beat = self.store.workers().get(worker_id)
                error = beat.error if beat is not None else None
                self.fatal_error = error or f"worker {worker_id} could not start"
                happened.append(f"worker {worker_id} could not start: {self.fatal_error}")
                continue
            if self.restarts >= self.max_restarts:
                self.fatal_error = (
                    f"worker {worker_id} crashed (exit {code}) and the restart budget "
                    f"({self.max_restarts}) is spent; see {self._log_dir()}/{worker_id}.log"
                )
                happened.append(self.fatal_error)
                continue
            self.restarts += 1
            self.procs[worker_id] = self._spawn(worker_id, proc.usd_per_hour)
            msg = f"worker {worker_id} exited with {code}; restarted ({self.restarts}/{self.max_restarts})"
            self.store.log_event("worker_restarted", msg, worker=worker_id, exit_code=code)
            happened.append(msg)
        return happened

    def restart_idle(self) -> int:
        """Start again every worker that has exited (after a lease expiry, say)."""
        count = 0
        for worker_id, proc in list(self.procs.items()):
            if proc.popen.poll() is not None:
                if not proc.log.closed:
                    proc.log.close()
                self.procs[worker_id] = self._spawn(worker_id, proc.usd_per_hour)
                count += 1
        return count

    def stop(self, timeout_s: float = 30.0) -> None:
        """SIGTERM every worker, wait up to ``timeout_s``, then SIGKILL the rest.

        Returns only when every worker process has exited: another Ctrl-C while waiting
        (an impatient user) kills the rest at once instead of leaving them behind. A
        worker that could not say so itself is marked stopped in its heartbeat, so the
        run reads "stopped" now rather than "running" until the heartbeat goes stale.
        """
        for proc in self.procs.values():
            if proc.popen.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    proc.popen.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + timeout_s
        pending = list(self.procs.values())
        while pending:
            proc = pending[0]
            try:
                proc.popen.wait(max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                proc.popen.kill()
                continue
            except KeyboardInterrupt:
                deadline = time.monotonic()  # a second Ctrl-C: no more waiting
                for other in pending:
                    if other.popen.poll() is None:
                        other.popen.kill()
                continue
            pending.pop(0)
            if not proc.log.closed:
                proc.log.close()
        self._settle_heartbeats()

    def _settle_heartbeats(self) -> None:
        """Mark the heartbeats of exited workers that still read as live ``stopped``.

        A worker stopped before its first heartbeat gets one here, so a run interrupted
        in its first second reads "stopped" (it was started), not "pending".
        """
        try:
            beats = self.store.workers()
            for worker_id, proc in self.procs.items():
                beat = beats.get(worker_id)
                if beat is None:
                    doc = {"pid": proc.popen.pid, "started_at": proc.started_at}
                    self.store.heartbeat(worker_id, {**doc, "state": "stopped", "rows_done": 0})
                elif not beat.ended:
                    doc = dataclasses.asdict(beat)
                    doc.pop("worker_id"), doc.pop("last_seen")
                    self.store.heartbeat(worker_id, {**doc, "state": "stopped"})
        except (OSError, SkybatchError) as e:  # the store is gone: it will go stale instead
            print(f"skybatch: could not mark stopped workers: {e}", file=sys.stderr)
