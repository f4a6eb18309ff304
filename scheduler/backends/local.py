"""The local backend: worker processes on this machine.

:class:`LocalPool` starts ``python -m scheduler.worker`` processes against a run, restarts
one that crashes (a bounded number of times), and stops them all within the spot notice
window (SIGTERM, then SIGKILL after ``timeout_s``). :func:`run_local` drives a whole run:
start workers, poll the store, draw the progress bar, and return when every shard is
committed, when the run is cancelled, or when workers cannot go on.

:class:`LocalBackend` is the :class:`~scheduler.backends.base.Backend` over a pool: the
guard's lever during ``launch --backend local``, ``watch`` and ``cancel`` of a local run
(SIGTERM to this host's workers), and, detached, the TUI's local launch: the run is
prepared once, then ``python -m scheduler.backends.local --store URL --run-id ID`` drives
its workers in a session of its own, so the run goes on when the TUI quits.

Each worker gets its own slice of this machine's GPUs (or, for vLLM on a CPU, its own
cores), never one a live worker of the run holds, whichever process started it; more
workers than free slices are capped with one line (:mod:`._slots` says why).

Worker logs go to ``<store>/<run>/logs/<worker>.log`` for a local store (a temporary
directory otherwise), and the error of a worker that could not start is read back from its
heartbeat, so a bad model name reaches the user as one line.
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
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from scheduler.backends._slots import WorkerSlots, live_slots
from scheduler.backends._worker_log import WorkerLog
from scheduler.errors import EngineError, SkybatchError, StoreUnavailable
from scheduler.store import RunStatus, RunStore, clean_orphans, read_status
from scheduler.units import duration_text
from scheduler.worker import EXIT_ENGINE, EXIT_STOPPED, EXIT_STORE, SLOT_ENV, default_worker_id

__all__ = ["LocalBackend", "LocalPool", "main", "run_local"]

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


def _progress_bar(status: RunStatus) -> Any:
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, SpinnerColumn, TextColumn

    console = _stderr_console()
    return Progress(
        SpinnerColumn(),
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("rows · {task.fields[rate]} rows/s · ETA {task.fields[eta]}"),
        TextColumn("· dead {task.fields[dead]} · {task.fields[elapsed]}"),
        console=console,
        transient=False,
        disable=not console.is_terminal,
    )


def _stderr_console() -> Any:
    from rich.console import Console

    return Console(stderr=True)


def _phase(status: RunStatus, model: str) -> str | None:
    """What the run is waiting on before its first rows, in words (None once it runs)."""
    alive = [w for w in status.workers if w.alive]
    if status.shards_done == status.shards_total or any(w.state == "running" for w in alive):
        return None  # (a worker can load, finish and exit between two polls)
    if any(w.state == "starting" for w in alive):
        return f"loading {model}"
    return "starting workers"


def _record_failure(store: RunStore, reason: str) -> None:
    """Say in the store why the run could not go on: ``status``, ``--json`` and the
    dashboard read it back (``meta/failure``) and show the run as failed."""
    store.write_meta("failure", {"reason": reason, "at": time.time()})
    store.log_event("failed", reason)


def run_local(
    store: RunStore,
    *,
    workers: int = 1,
    progress: bool = True,
    stop: threading.Event | None = None,
    poll_s: float = 0.5,
    usd_per_hour: float = 0.0,
    env: dict[str, str] | None = None,
    on_tick: Callable[[RunStatus, LocalPool], None] | None = None,
) -> RunStatus:
    """Run the workers of a prepared run here until it ends; returns the final status.

    ``on_tick`` is called after every poll (the deadline guard hooks in there).
    ``stop`` stops the workers cleanly and returns; Ctrl-C does the same and then lets the
    ``KeyboardInterrupt`` through so the caller can exit 130. The run can be resumed later.
    """
    stop = stop or threading.Event()
    if store.read_meta("cancel") is not None:
        store.clear_meta("cancel")  # starting again is how a cancelled run resumes
        store.log_event("resumed", "run resumed after a cancel")
    store.clear_meta("failure")  # so is a failed one: this session's workers decide anew
    status = read_status(store)
    if status.shards_done == status.shards_total:
        return status
    run_info = store.run_info()
    retries = int(run_info.limits.get("retries", 3))
    pool = LocalPool(
        store, env=env, max_restarts=max(1, retries) * max(1, workers), usd_per_hour=usd_per_hour
    )
    bar = None
    task = None
    idle_restarts = 0
    model = str((run_info.recipe.get("model") or {}).get("name") or "the model")
    began = time.monotonic()
    said: str | None = ""  # the last phase printed where there is no bar; None: running
    # Everything from the first worker on sits inside the try: a Ctrl-C at any moment
    # (while workers spawn, while the bar starts, while models load) stops them all.
    try:
        started = len(pool.start(workers))
        store.log_event("workers_started", f"{started} local worker(s) started", workers=started)
        bar = _progress_bar(status) if progress else None
        if bar is not None and bar.disable:
            bar = None
        if bar is not None:
            bar.start()
            task = bar.add_task(
                "starting workers …",
                total=status.rows_total,
                completed=status.rows_done,
                rate="0.0",
                eta=duration_text(None),
                dead=status.rows_dead,
                elapsed=duration_text(0),
            )
        while True:
            if stop.wait(poll_s):
                break
            for line in pool.poll():
                if bar is not None:
                    bar.console.print(f"[yellow]{line}")
            status = read_status(store)
            # Phases describe the start only: once a worker ran, the bar says the rest.
            phase = None if said is None else _phase(status, model)
            if phase == "starting workers" and said and said != phase:
                phase = said  # phases only go forward: a restart while loading still loads
            if bar is not None and task is not None:
                bar.update(
                    task,
                    description=f"{phase} …" if phase else store.run_id,
                    completed=status.rows_done,
                    rate=f"{status.rows_per_s:.1f}",
                    eta=duration_text(status.eta_s),
                    dead=status.rows_dead,
                    elapsed=duration_text(time.monotonic() - began),
                )
            elif progress and phase != said:  # no terminal: one line per change, no bar
                said = phase
                if phase:
                    print(f"skybatch: {phase} …", file=sys.stderr, flush=True)
            if phase is None:
                said = None
            if on_tick is not None:
                on_tick(status, pool)
            if status.shards_done == status.shards_total:
                break
            if pool.fatal_store_error:
                if store.local:  # a full or read-only disk may still take this small file
                    with contextlib.suppress(SkybatchError, OSError):
                        _record_failure(store, pool.fatal_store_error)
                raise StoreUnavailable(pool.fatal_store_error)
            if pool.fatal_error:
                _record_failure(store, pool.fatal_error)
                raise EngineError(pool.fatal_error)
            if store.read_meta("cancel") is not None:
                store.log_event("cancelled", "run cancelled; workers stopped")
                break
            if pool.alive() == 0:
                # Every worker found nothing claimable, yet shards remain: their leases
                # belong to workers that are gone. Start again once they can be taken.
                idle_restarts += 1
                if idle_restarts > max(3, retries + 1) * 10:
                    why = (
                        f"run {store.run_id}: workers keep exiting with "
                        f"{status.shards_total - status.shards_done} shards left; see "
                        f"{pool._log_dir()}"
                    )
                    _record_failure(store, why)
                    raise SkybatchError(why)
                time.sleep(min(5.0, poll_s * 4))
                pool.restart_idle()
    except KeyboardInterrupt:
        stop.set()
        raise  # after the finally: the workers are stopped and their leases released
    except StoreUnavailable:
        # The workers' own words (their log may be on the disk that failed).
        for worker_id, lines in pool.last_lines(3).items():
            for line in lines:
                print(f"  {worker_id}: {line}", file=sys.stderr)
        raise
    finally:
        pool.stop()
        if bar is not None:
            bar.stop()
    final = read_status(store)
    if final.shards_done == final.shards_total:
        # Files of attempts that lost or died (a crash, a full disk) can go now.
        with contextlib.suppress(SkybatchError, OSError):
            clean_orphans(store)
    return final


class LocalBackend:
    """The workers of a run as processes on this machine (see :class:`Backend`).

    ``pool`` is the :class:`LocalPool` a driver (``run_local``) already runs; without one,
    workers the guard adds get a pool of their own that stops when :meth:`close` is called.
    ``detach`` makes :meth:`start` spawn a driver process in its own session instead (the
    TUI), kept in ``children``.
    """

    name = "local"
    remote = False

    def __init__(
        self,
        store: RunStore,
        *,
        usd_per_hour: float = 0.0,
        pool: LocalPool | None = None,
        detach: bool = False,
        python: str = sys.executable,
    ) -> None:
        self.store = store
        self.usd_per_hour = usd_per_hour
        self.pool = pool or LocalPool(store, usd_per_hour=usd_per_hour)
        self._own_pool = pool is None
        self.detach = detach
        self.python = python
        self.children: list[subprocess.Popen[bytes]] = []

    @property
    def launched(self) -> int:
        """Workers this run has had (heartbeats, and processes not yet heard from)."""
        return len(set(self.store.workers()) | set(self.pool.procs))

    def start(self, workers: int) -> int:
        """Start ``workers`` workers here, or (detached) a driver process that does."""
        if not self.detach:
            return len(self.pool.start(workers))
        log_dir = self.pool._log_dir()
        cmd = [
            self.python, "-m", "scheduler.backends.local",
            "--store", self.store.url, "--run-id", self.store.run_id,
            "--workers", str(max(1, workers)), "--usd-per-hour", str(self.usd_per_hour),
        ]  # fmt: skip
        with open(log_dir / "driver.log", "ab") as log:
            child = subprocess.Popen(
                cmd,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # survives the TUI quitting (and its Ctrl-C)
            )
        self.children.append(child)
        return workers

    def alive(self) -> int:
        """Workers running: this pool's processes, or fresh heartbeats, whichever says more
        (a worker started a moment ago has not beaten yet; one from another driver has)."""
        beating = sum(1 for w in read_status(self.store).workers if w.alive)
        return max(self.pool.alive(), beating)

    def add(self, k: int, *, spot: bool) -> int:
        """Start ``k`` more workers (spot or not is the same here)."""
        return len(self.pool.add(k))

    def ended(self) -> bool:
        """Never on its own: a local run's driver restarts its workers; the store decides."""
        return False

    def cancel(self) -> list[str]:
        """SIGTERM this host's live workers: they release their shard and exit."""
        host = socket.gethostname()
        alive = {w.worker_id for w in read_status(self.store).workers if w.alive}
        stopped = []
        for worker_id, beat in self.store.workers().items():
            # Only fresh heartbeats from this host: an old pid may belong to another process.
            if worker_id in alive and beat.host == host and beat.pid is not None:
                try:
                    os.kill(beat.pid, signal.SIGTERM)
                    stopped.append(f"{worker_id} (pid {beat.pid})")
                except (ProcessLookupError, PermissionError):
                    continue
        return stopped

    def billed_usd(self) -> float | None:
        """None: the heartbeats' $/h × uptime is the bill."""
        return None

    def jobs(self) -> list[dict[str, Any]]:
        """No records beyond the heartbeats."""
        return []

    def close(self) -> None:
        """Stop the workers this object started itself (not a driver's pool)."""
        if self._own_pool:
            self.pool.stop()


def main(argv: Sequence[str] | None = None) -> int:
    """Drive the workers of a prepared run here (the TUI's detached local launch)."""
    import argparse

    p = argparse.ArgumentParser(prog="python -m scheduler.backends.local")
    p.add_argument("--store", required=True)
    p.add_argument("--run-id", required=True)
    p.add_argument("--workers", type=int, default=1)
    p.add_argument("--usd-per-hour", type=float, default=0.0)
    args = p.parse_args(argv)
    from scheduler.runs import record_history, summarize

    store = RunStore(args.store, args.run_id)
    started = time.monotonic()
    try:
        run_local(store, workers=args.workers, progress=False, usd_per_hour=args.usd_per_hour)
    except KeyboardInterrupt:
        return 130
    except SkybatchError as e:
        print(f"skybatch: error: {e}", file=sys.stderr)
        return 1
    summary = summarize(store, wall_s=time.monotonic() - started)
    record_history(store, summary, backend="local")
    return 0 if summary["state"] == "done" else 1


if __name__ == "__main__":
    sys.exit(main())
