"""The worker: load the engine, beat, claim shard after shard until none is left or stopped.

:class:`Worker` holds one run's recipe, input and manifest and one loaded engine; its
heartbeat thread renews the current lease, and one shard at a time is run by its base
:class:`~scheduler.worker._shard.ShardWork`.
"""

from __future__ import annotations

import contextlib
import os
import socket
import sys
import threading
import time
from collections.abc import Callable
from typing import Any

from scheduler.engines.base import Engine
from scheduler.errors import InputError, SkybatchError, StoreUnavailable
from scheduler.inputs import Input, ShardSpec, open_input
from scheduler.recipe import Recipe, recipe_from_dict
from scheduler.store import (
    Heartbeat,
    Lease,
    RunStore,
    utcnow,
    validate_worker_id,
)
from scheduler.worker._shard import ShardWork
from scheduler.worker._state import (
    EXIT_DONE,
    EXIT_ENGINE,
    EXIT_STOPPED,
    EXIT_STORE,
    MODEL_ENV,
    SLOT_ENV,
    LoadInterrupted,
    StopFlag,
    WorkerInfo,
    _earlier_life,
    _Stats,
    _Stopped,
)

__all__ = ["Worker"]


class Worker(ShardWork):
    """Processes shards of one run until none is left to claim or it is told to stop."""

    def __init__(
        self,
        store: RunStore,
        *,
        worker_id: str,
        info: WorkerInfo | None = None,
        engine_factory: Callable[[Recipe], Engine] | None = None,
        heartbeat_s: float = 5.0,
        stop: threading.Event | StopFlag | None = None,
    ) -> None:
        self.store = store
        # Checked before anything is written: the id names files in the store.
        self.worker_id = validate_worker_id(worker_id)
        self.info = info or WorkerInfo()
        self.stop: threading.Event | StopFlag = stop or StopFlag()
        self.heartbeat_s = heartbeat_s
        run = store.run_info()
        source = run.recipe_source or f"{store.location}/run.json"
        self.recipe = recipe_from_dict(dict(run.recipe), source=source)
        shipped = os.environ.get(MODEL_ENV)
        if shipped:
            model = self.recipe.model.model_copy(update={"name": os.path.expanduser(shipped)})
            self.recipe = self.recipe.model_copy(update={"model": model})
        # What the run was created with (pinned, or the local weights' hash): recorded on
        # rows whose engine cannot tell which revision it loaded.
        self.run_revision: str | None = run.model_revision
        # Only read(shard) is needed: do not rescan (or download) the whole input again.
        self.input: Input = open_input(self.recipe.input, run.input_path, count_rows=False)
        self.shards = [ShardSpec.from_dict(s) for s in store.read_manifest()]
        self.id_column = self.recipe.input.id_column or "id"
        self.batch_size = self.recipe.model.batch_size
        self.ttl_s = self.recipe.limits.lease_ttl
        self.stats = _Stats()
        self.started_at = utcnow().isoformat()
        self.slot = os.environ.get(SLOT_ENV) or None
        self.prior_s, self.prior_usd = self._carry_over_earlier_life(
            _earlier_life(store, worker_id)
        )
        self.state = "starting"
        self.loading = True  # until the engine is loaded, a stop request ends the load
        self.lease: Lease | None = None
        self.error: str | None = None
        # Set when the worker ends: the last heartbeat carries it, so a reader (the deadline
        # guard) can tell a failure no new worker can fix (2) from one a restart may fix.
        self.exit_code: int | None = None
        self._factory = engine_factory
        self.engine: Engine | None = None
        self._beat_lock = threading.Lock()

    def _carry_over_earlier_life(self, previous: Heartbeat | None) -> tuple[float, float]:
        """Billed seconds and dollars of earlier lives of this worker id; count a lost life.

        A worker restarted under the same id (a local restart, a SkyPilot recovery) would
        otherwise overwrite the earlier heartbeat and its billed time with it. A previous
        life that did not end cleanly (no ``exited``/``stopped`` state) was preempted or
        crashed: it counts as a preemption.
        """
        if previous is None:
            return 0.0, 0.0
        earlier = previous.prior_s + previous.life_s
        spent = previous.prior_usd + previous.usd_per_hour * previous.life_s / 3600.0
        lost = not previous.ended
        self.info.preemptions = max(self.info.preemptions, previous.preemptions + int(lost))
        return earlier, spent

    # ------------------------------------------------------------------ heartbeat thread

    def _heartbeat_doc(self) -> dict[str, Any]:
        now = time.time()
        return {
            "state": self.state,
            "pid": os.getpid(),
            "host": socket.gethostname(),
            "accelerator": self.info.accelerator,
            "cloud": self.info.cloud,
            "region": self.info.region,
            "spot": self.info.spot,
            "usd_per_hour": self.info.usd_per_hour,
            "preemptions": self.info.preemptions,
            "started_at": self.started_at,
            "prior_s": round(self.prior_s, 3),
            "prior_usd": round(self.prior_usd, 6),
            "rows_done": self.stats.rows_done,
            "rows_per_s": round(self.stats.rate(now), 3),
            "shards_done": self.stats.shards_done,
            "current_shard": self.stats.current_shard,
            "batch_size": self.batch_size,
            "error": self.error,
            "exit_code": self.exit_code,
            **({"slot": self.slot} if self.slot else {}),
        }

    def beat(self) -> None:
        """Publish a heartbeat and renew the current lease."""
        with self._beat_lock:
            self.store.heartbeat(self.worker_id, self._heartbeat_doc())
            lease = self.lease
            if lease is not None and lease.expires_at - time.time() < self.ttl_s * 2 / 3:
                renewed = self.store.renew(lease, ttl_s=self.ttl_s)
                if renewed is not None and self.lease is lease:
                    self.lease = renewed

    def _heartbeat_loop(self, done: threading.Event) -> None:
        while not done.wait(self.heartbeat_s):
            try:
                self.beat()
            except Exception as e:  # a flaky store must not kill the worker
                if not done.is_set():  # after the end, the main thread has said it
                    print(
                        f"skybatch worker {self.worker_id}: heartbeat failed: {e}", file=sys.stderr
                    )

    # ------------------------------------------------------------------ main loop

    def run(self) -> int:
        """Work until nothing is left to claim; returns the process exit code."""
        done = threading.Event()
        try:
            return self._run(done)
        except StoreUnavailable as e:
            # The store is down or full: say so in one line and leave. The lease expires
            # on its own; nothing more can be written until the store is back.
            done.set()
            self.state, self.error, self.lease = "failed", str(e), None
            self.exit_code = EXIT_STORE
            with contextlib.suppress(Exception):
                self.store.heartbeat(self.worker_id, self._heartbeat_doc(), retry=False)
            print(f"skybatch worker {self.worker_id}: {e}", file=sys.stderr)
            return EXIT_STORE

    def _run(self, done: threading.Event) -> int:
        beater = threading.Thread(target=self._heartbeat_loop, args=(done,), daemon=True)
        self.beat()
        try:
            factory = self._factory
            if factory is None:
                from scheduler.engines import create_engine

                factory = create_engine
            if self.stop.is_set():
                raise LoadInterrupted
            self.engine = factory(self.recipe)
            self.loading = False
        except LoadInterrupted:
            self.loading = False
            return self._finish(done, "stopped", EXIT_STOPPED)
        except SkybatchError as e:
            return self._finish(done, "failed", EXIT_ENGINE, str(e))
        except Exception as e:
            return self._finish(
                done,
                "failed",
                EXIT_ENGINE,
                f"cannot load {self.recipe.model.name}: {type(e).__name__}: {e}",
            )
        if self.info.accelerator is None:
            self.info.accelerator = self.engine.describe().get("accelerator")
        self.state = "running"
        self.beat()
        beater.start()
        try:
            while not self.stop.is_set():
                picked = self._claim_next()
                if picked is None:
                    return self._finish(done, "exited", EXIT_DONE)
                lease, shard = picked
                self._process(lease, shard)
            return self._finish(done, "stopped", EXIT_STOPPED)
        except _Stopped:
            return self._finish(done, "stopped", EXIT_STOPPED)
        except InputError as e:
            return self._finish(done, "failed", EXIT_ENGINE, f"cannot read the input: {e}")
        finally:
            done.set()
            if self.engine is not None:
                self.engine.close()

    def _finish(
        self, done: threading.Event, state: str, code: int, error: str | None = None
    ) -> int:
        self.loading = False  # from here on a signal only sets the stop flag
        done.set()
        self.state, self.error, self.stats.current_shard = state, error, None
        self.lease, self.exit_code = None, code
        try:
            self.beat()
        except Exception as e:
            print(f"skybatch worker {self.worker_id}: last heartbeat failed: {e}", file=sys.stderr)
        if error:
            print(f"skybatch worker {self.worker_id}: {error}", file=sys.stderr)
        return code

    def _claim_next(self) -> tuple[Lease, ShardSpec] | None:
        """Claim the next shard, starting at a worker-specific offset to spread workers."""
        done = set(self.store.done_shards())
        pending = [s for s in self.shards if s.shard_id not in done]
        if not pending:
            return None
        start = sum(map(ord, self.worker_id)) % len(pending)
        for shard in pending[start:] + pending[:start]:
            if self.stop.is_set():
                return None
            lease = self.store.claim(shard.shard_id, self.worker_id, ttl_s=self.ttl_s)
            if lease is not None:
                return lease, shard
        return None
