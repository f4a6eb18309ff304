"""``python -m scheduler.worker``: parse the flags, build the worker, map the ending to a code.

Signals stop the worker (a load in progress at once); a worker that cannot even start
records its exit code in a last heartbeat, so no one adds workers that would fail the
same way.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import signal
import sys
import threading
from collections.abc import Sequence

from scheduler.errors import SkybatchError, StoreUnavailable
from scheduler.store import (
    RunStore,
    utcnow,
)
from scheduler.worker._state import (
    EXIT_ENGINE,
    EXIT_STOPPED,
    EXIT_STORE,
    LoadInterrupted,
    StopFlag,
    WorkerInfo,
    _earlier_life,
    default_worker_id,
)
from scheduler.worker._worker import Worker

__all__ = ["main"]


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
