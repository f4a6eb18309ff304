"""The VM entry point: ``python -m scheduler.backends.skypilot worker --store URL ...``.

SkyPilot runs this as the task's ``run`` command. It maps SkyPilot's environment (task id,
cluster info) onto the worker's options (:func:`worker_argv`), hands over to
:func:`scheduler.worker.main`, and then turns the worker's exit code into the one SkyPilot
should act on (:func:`restart_verdict`). A worker planned as several engine replicas
(``--replicas N``) starts one such entry per replica, each on its own GPUs
(:mod:`scheduler.backends.replicas`), and each replica keeps its own restart budget.

The restart policy, under SkyPilot 0.14's rules (``sky/jobs/recovery_strategy.py``: an exit
code in ``recover_on_exit_codes`` is recovered on a new VM without counting; any other
non-zero exit counts against ``max_restarts_on_errors``; a lost VM is always recovered)::

    worker exit                       VM exit      SkyPilot (max_restarts_on_errors: 0)
    0  nothing left to claim          0            SUCCEEDED
    3  stopped by SIGTERM (spot)      3            recovered: a preemption, no budget used
    1  an error, budget left          75           recovered; the store counts the restart
    1  an error, budget spent         1            FAILED, not restarted
    2  bad input / engine won't load  2            FAILED, not restarted: no new GPU can fix it

SkyPilot's own counter would restart exit 2 like any other, re-provisioning a GPU each
time, so it is set to 0 and the budget (``limits.retries`` restarts per worker) is kept in
the store, as ``meta/restarts-<worker>.json``, where a recovered life finds it.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence

from scheduler.backends.replicas import TP_ENV, run_replicas, split_replica_flags
from scheduler.backends.skypilot._task import EXIT_RETRY, worker_argv
from scheduler.errors import UsageError
from scheduler.store import Heartbeat, RunStore
from scheduler.worker import EXIT_ENGINE, EXIT_FAILED

__all__ = ["main", "restart_verdict"]


def restart_verdict(code: int, *, used: int, budget: int) -> int:
    """The exit code SkyPilot sees for the worker's ``code``, given restarts ``used``."""
    if code == EXIT_FAILED and used < budget:
        return EXIT_RETRY
    return code


def _option(argv: Sequence[str], name: str) -> str | None:
    args = list(argv)
    return args[args.index(name) + 1] if name in args[:-1] else None


def _judge(code: int, argv: Sequence[str]) -> int:
    """Apply :func:`restart_verdict` with the budget counted in the store."""
    if code != EXIT_FAILED:
        return code
    store_url, run_id = _option(argv, "--store"), _option(argv, "--run-id")
    worker_id = _option(argv, "--worker-id")
    budget = int(_option(argv, "--max-restarts") or 0)
    if not (store_url and run_id and worker_id):
        return code
    name = f"restarts-{worker_id}"
    try:
        store = RunStore(store_url, run_id)
        used = int((store.read_meta(name) or {}).get("count") or 0)
        verdict = restart_verdict(code, used=used, budget=budget)
        if verdict == EXIT_RETRY:
            store.write_meta(name, {"count": used + 1, "budget": budget})
            store.log_event("restart", f"{worker_id}: restart {used + 1} of {budget} on errors")
    except Exception as e:  # no store, no count: do not spend GPUs on an unknown budget
        print(f"skybatch: restart budget unreadable ({e}); not restarting", file=sys.stderr)
        return code
    return verdict


def main(argv: Sequence[str]) -> int:
    if not argv or argv[0] != "worker":
        print(
            "usage: python -m scheduler.backends.skypilot worker --store URL ...", file=sys.stderr
        )
        return EXIT_ENGINE
    from scheduler import worker

    try:
        split = split_replica_flags(argv[1:])
        if split.replicas > 1:
            command = [sys.executable, "-m", "scheduler.backends.skypilot", "worker"]
            return run_replicas(split, command=command, env=os.environ)
    except UsageError as e:  # the task's flags do not fit this machine: one line, no restart
        print(f"skybatch: {e}", file=sys.stderr)
        return EXIT_ENGINE
    if split.tp > 1:
        os.environ.setdefault(TP_ENV, str(split.tp))

    def previous(store_url: str, run_id: str, worker_id: str) -> Heartbeat | None:
        try:
            return RunStore(store_url, run_id).workers().get(worker_id)
        except Exception:  # a flaky read must not keep the worker from starting
            return None

    code = worker.main(worker_argv(split.rest, os.environ, previous=previous))
    return _judge(code, split.rest)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
