"""The VM entry point: ``python -m scheduler.backends.skypilot worker --store URL ...``.

SkyPilot runs this as the task's ``run`` command. It maps SkyPilot's environment (task id,
cluster info) onto the worker's options (:func:`worker_argv`) and hands over to
:func:`scheduler.worker.main`.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping, Sequence
from typing import Any

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

    def previous(store_url: str, run_id: str, worker_id: str) -> Mapping[str, Any] | None:
        try:
            return RunStore(store_url, run_id).workers().get(worker_id)
        except Exception:  # a flaky read must not keep the worker from starting
            return None

    return worker.main(worker_argv(argv[1:], os.environ, previous=previous))


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
