"""The VM entry point: ``python -m scheduler.backends.skypilot worker --store URL ...``.

SkyPilot runs this as the task's ``run`` command. It maps SkyPilot's environment (task id,
cluster info) onto the worker's options (:func:`worker_argv`) and hands over to
:func:`scheduler.worker.main`. A worker planned as several engine replicas
(``--replicas N``) starts one such worker per replica, each on its own GPUs
(:mod:`scheduler.backends.replicas`).
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping, Sequence
from typing import Any

from scheduler.backends.replicas import TP_ENV, run_replicas, split_replica_flags
from scheduler.backends.skypilot._task import worker_argv
from scheduler.store import RunStore

__all__ = ["main"]


def main(argv: Sequence[str]) -> int:
    if not argv or argv[0] != "worker":
        print(
            "usage: python -m scheduler.backends.skypilot worker --store URL ...", file=sys.stderr
        )
        return 2
    from scheduler import worker

    split = split_replica_flags(argv[1:])
    if split.replicas > 1:
        command = [sys.executable, "-m", "scheduler.backends.skypilot", "worker"]
        return run_replicas(split, command=command, env=os.environ)
    if split.tp > 1:
        os.environ.setdefault(TP_ENV, str(split.tp))

    def previous(store_url: str, run_id: str, worker_id: str) -> Mapping[str, Any] | None:
        try:
            return RunStore(store_url, run_id).workers().get(worker_id)
        except Exception:  # a flaky read must not keep the worker from starting
            return None

    return worker.main(worker_argv(split.rest, os.environ, previous=previous))


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
