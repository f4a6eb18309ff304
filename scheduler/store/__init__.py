"""The run store: where a run lives, and the single source of truth for its progress.

The contract (layout, exclusive commit markers, advisory leases, reconciliation) is in
``README.md`` beside this file. Modules: ``_store`` (``RunStore``: claim, renew, release,
heartbeats, events), ``_creation`` (its create and resume checks, run.json, the manifest),
``_commits`` (its outputs and the exclusive commit), ``_types`` (value types and ids:
leases, markers, run ids), ``_documents`` (run.json, heartbeats, claims and the jobs
document as typed values, each parsed in one place, through ``_fields``), ``_option`` (the
launch option), ``_fs`` (fsspec resolution and raw, safe I/O) and ``_status`` (progress,
rates, ETA and spend derived from the store). Import from here, never from the private
modules.
"""

from __future__ import annotations

from scheduler.store._dead import dead_reason, read_dead_reasons
from scheduler.store._documents import (
    Claim,
    Heartbeat,
    JobRecord,
    JobsDoc,
    RunInfo,
)
from scheduler.store._fs import (
    open_store_root,
)
from scheduler.store._option import LaunchOption, Offering
from scheduler.store._repair import VerifyReport, clean_orphans, quarantine, verify_run
from scheduler.store._status import (
    WORKER_STALE_S,
    RunState,
    RunStatus,
    ShardState,
    WorkerStatus,
    parse_time,
    read_status,
)
from scheduler.store._store import (
    RunStore,
    iter_runs,
)
from scheduler.store._types import (
    DoneMarker,
    Lease,
    OutputFile,
    digest_ids,
    make_run_id,
    utcnow,
    validate_run_id,
    validate_worker_id,
)
from scheduler.store._verify import Problem, check_committed, raise_problems

__all__ = [
    "WORKER_STALE_S",
    "Claim",
    "DoneMarker",
    "Heartbeat",
    "JobRecord",
    "JobsDoc",
    "LaunchOption",
    "Lease",
    "Offering",
    "OutputFile",
    "Problem",
    "RunInfo",
    "RunState",
    "RunStatus",
    "RunStore",
    "ShardState",
    "VerifyReport",
    "WorkerStatus",
    "check_committed",
    "clean_orphans",
    "dead_reason",
    "digest_ids",
    "iter_runs",
    "make_run_id",
    "open_store_root",
    "parse_time",
    "quarantine",
    "raise_problems",
    "read_dead_reasons",
    "read_status",
    "utcnow",
    "validate_run_id",
    "validate_worker_id",
    "verify_run",
]
