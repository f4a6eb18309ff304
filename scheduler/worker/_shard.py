"""One shard attempt: read → infer in batches → write out + dead → verify → commit.

:class:`ShardWork` is the part of :class:`~scheduler.worker.Worker` that runs a claimed
shard (see the state machine in the package docstring): batches that run out of memory
are halved, a batch that raises is retried row by row, what still fails is a dead row,
and a shard that failed too often is committed as dead (a poison shard).
"""

from __future__ import annotations

import contextlib
import threading
import time
from typing import Any

from scheduler.engines.base import Engine, Result, Row, RowFailure, is_out_of_memory
from scheduler.errors import EngineError, InputError, StoreUnavailable
from scheduler.inputs import Input, ShardSpec
from scheduler.recipe import Recipe
from scheduler.store import (
    DoneMarker,
    Lease,
    RunStore,
    digest_ids,
    utcnow,
)
from scheduler.units import duration_text
from scheduler.worker._output import _input_dead, _storable
from scheduler.worker._state import StopFlag, _ShardTimeout, _Stats, _Stopped

__all__ = ["ShardWork"]


class ShardWork:
    """Runs one claimed shard; a base of :class:`~scheduler.worker.Worker`, which sets these."""

    store: RunStore
    worker_id: str
    recipe: Recipe
    input: Input
    stop: threading.Event | StopFlag
    stats: _Stats
    lease: Lease | None
    engine: Engine | None
    batch_size: int
    id_column: str
    run_revision: str | None

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
