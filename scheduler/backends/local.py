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
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any

from scheduler.backends._pool import LocalPool
from scheduler.errors import EngineError, SkybatchError, StoreUnavailable
from scheduler.store import RunStatus, RunStore, clean_orphans, read_status
from scheduler.units import duration_text

__all__ = ["LocalBackend", "LocalPool", "main", "run_local"]


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
