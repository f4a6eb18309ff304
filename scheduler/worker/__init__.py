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

from scheduler.worker._main import main
from scheduler.worker._state import EXIT_DONE as EXIT_DONE
from scheduler.worker._state import EXIT_ENGINE as EXIT_ENGINE
from scheduler.worker._state import EXIT_FAILED as EXIT_FAILED
from scheduler.worker._state import EXIT_STOPPED as EXIT_STOPPED
from scheduler.worker._state import EXIT_STORE as EXIT_STORE
from scheduler.worker._state import (
    MODEL_ENV,
    SLOT_ENV,
    StopFlag,
    WorkerInfo,
    default_worker_id,
)
from scheduler.worker._state import LoadInterrupted as LoadInterrupted
from scheduler.worker._worker import Worker

__all__ = ["MODEL_ENV", "SLOT_ENV", "StopFlag", "Worker", "WorkerInfo", "default_worker_id", "main"]
