"""Progress, rates, ETA and spend of a run, computed from its store.

Everything here is derived from the store (manifest, commit markers, claims, heartbeats,
meta documents); nothing is kept anywhere else, so any process (the CLI, the TUI, CI) on any
machine sees the same picture. The SkyPilot backend adds the managed-job queue on top.
"""

from __future__ import annotations

import enum
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from scheduler.store._documents import Heartbeat
from scheduler.store._fields import parse_time
from scheduler.store._session import Life, current_session, last_error_line
from scheduler.store._store import RunStore

__all__ = ["RunState", "RunStatus", "ShardState", "WorkerStatus", "parse_time", "read_status"]

#: A worker whose last heartbeat is older than this is considered gone.
WORKER_STALE_S = 90.0
#: Worker exit codes that no restart or new worker can fix: 2 is bad input or a recipe or
#: engine that will not load (``scheduler.worker``'s ``EXIT_ENGINE``; SkyPilot is told not
#: to restart it either). A run whose session has one must not be scaled up.
PERMANENT_EXIT_CODES = frozenset({2})


class RunState(str, enum.Enum):
    """Where a run stands. ``DONE`` and ``FAILED`` runs never change again on their own."""

    PENDING = "pending"  # created, nothing committed, no worker alive
    RUNNING = "running"  # at least one worker alive
    STOPPED = "stopped"  # some work left, no worker alive: resume to continue
    CANCELLED = "cancelled"  # cancelled by the user: resume to continue
    DONE = "done"  # every shard committed, dead rows within the error budget
    # every shard committed with too many dead rows or rows unaccounted for; or the
    # workers could not go on (a model that does not load): ``failure_reason`` says why
    FAILED = "failed"

    def is_terminal(self) -> bool:
        """True for states a run only leaves if a user starts it again."""
        return self in (RunState.DONE, RunState.FAILED)

    @property
    def glyph(self) -> str:
        """A symbol for the state, so it is never shown by colour alone."""
        return {
            "pending": "○",
            "running": "▶",
            "stopped": "⏸",
            "cancelled": "■",
            "done": "✔",
            "failed": "✘",
        }[self.value]


class ShardState(str, enum.Enum):
    """One shard's state, for the shard map."""

    PENDING = "pending"
    CLAIMED = "claimed"
    DONE = "done"
    FAILED = "failed"  # not done, and at least one attempt failed with an error


@dataclass(frozen=True)
class WorkerStatus:
    """One worker as its heartbeat describes it."""

    worker_id: str
    state: str
    alive: bool
    accelerator: str | None
    cloud: str | None
    region: str | None
    spot: bool
    usd_per_hour: float
    rows_done: int
    rows_per_s: float
    shards_done: int
    preemptions: int
    started_at: float | None
    last_seen: float | None
    current_shard: str | None
    prior_s: float = 0.0  # billed seconds of earlier lives of this worker id (restarts)
    prior_usd: float = 0.0  # what those earlier lives cost
    error: str | None = None  # why this life failed (its last error line)
    exit_code: int | None = None  # how this life's process exited (None while it runs)

    @property
    def failed_permanently(self) -> bool:
        """This life exited with a code no new worker can fix (:data:`PERMANENT_EXIT_CODES`)."""
        return self.exit_code in PERMANENT_EXIT_CODES

    @property
    def uptime_s(self) -> float:
        """Billed seconds: this life (start to last heartbeat) plus earlier lives."""
        if self.started_at is None or self.last_seen is None:
            return self.prior_s
        return self.prior_s + max(0.0, self.last_seen - self.started_at)

    @property
    def spend_usd(self) -> float:
        """What this worker has cost so far: $/h × billed hours, over every life."""
        return self.prior_usd + self.usd_per_hour * (self.uptime_s - self.prior_s) / 3600.0


@dataclass(frozen=True)
class RunStatus:
    """A run's progress at one moment."""

    run_id: str
    recipe_name: str
    store: str
    backend: str
    state: RunState
    created_at: str | None
    rows_total: int
    rows_done: int
    rows_out: int
    rows_dead: int
    shards_total: int
    shards_done: int
    shards_claimed: int
    shards_failed: int
    rows_per_s: float
    eta_s: float | None
    elapsed_s: float
    deadline_at: float | None
    budget_usd: float | None
    spend_usd: float
    usd_per_hour: float
    max_error_rate: float
    tokens_in: int
    tokens_out: int
    workers: list[WorkerStatus] = field(default_factory=list)
    shard_states: list[ShardState] = field(default_factory=list)
    failure_reason: str | None = None  # why a failed run failed, in one line
    session_rows_done: int = 0  # rows committed by the latest session's workers
    #: A worker of the latest session exited permanently (bad input, engine will not load):
    #: which one and why, in one line; more workers would fail the same way.
    permanent_failure: str | None = None

    @property
    def finished(self) -> bool:
        """Every shard committed (a failed run that is not finished can be resumed)."""
        return self.shards_total > 0 and self.shards_done == self.shards_total

    @property
    def shards_pending(self) -> int:
        """Shards neither committed nor leased."""
        return self.shards_total - self.shards_done - self.shards_claimed

    @property
    def fraction_done(self) -> float:
        """Share of rows committed, 0..1."""
        return self.rows_done / self.rows_total if self.rows_total else 0.0

    @property
    def error_rate(self) -> float:
        """Dead rows over rows committed so far."""
        return self.rows_dead / self.rows_done if self.rows_done else 0.0

    @property
    def balanced(self) -> bool:
        """Input rows = output rows + dead rows over the committed shards."""
        return self.rows_done == self.rows_out + self.rows_dead

    def to_json(self) -> dict[str, Any]:
        """The status as plain data (``skybatch status --json``)."""
        return {
            "run_id": self.run_id,
            "recipe": self.recipe_name,
            "store": self.store,
            "backend": self.backend,
            "state": self.state.value,
            "failure_reason": self.failure_reason,
            "rows_total": self.rows_total,
            "rows_done": self.rows_done,
            "rows_out": self.rows_out,
            "rows_dead": self.rows_dead,
            "shards_total": self.shards_total,
            "shards_done": self.shards_done,
            "shards_claimed": self.shards_claimed,
            "shards_pending": self.shards_pending,
            "shards_failed": self.shards_failed,
            "fraction_done": round(self.fraction_done, 6),
            "rows_per_s": round(self.rows_per_s, 3),
            "session_rows_done": self.session_rows_done,
            "eta_s": None if self.eta_s is None else round(self.eta_s, 1),
            "elapsed_s": round(self.elapsed_s, 1),
            "deadline_at": self.deadline_at,
            "budget_usd": self.budget_usd,
            "spend_usd": round(self.spend_usd, 4),
            "usd_per_hour": round(self.usd_per_hour, 4),
            "tokens_in": self.tokens_in,
            "tokens_out": self.tokens_out,
            "workers": [
                {**w.__dict__, "uptime_s": round(w.uptime_s, 1), "spend_usd": w.spend_usd}
                for w in self.workers
            ],
        }


def _worker(beat: Heartbeat, now: float) -> WorkerStatus:
    last_seen = beat.last_seen
    alive = last_seen is not None and now - last_seen < WORKER_STALE_S and not beat.ended
    return WorkerStatus(
        worker_id=beat.worker_id,
        state=beat.state if alive or beat.ended else "lost",
        alive=alive,
        accelerator=beat.accelerator,
        cloud=beat.cloud,
        region=beat.region,
        spot=beat.spot,
        usd_per_hour=beat.usd_per_hour,
        rows_done=beat.rows_done,
        rows_per_s=beat.rows_per_s,
        shards_done=beat.shards_done,
        preemptions=beat.preemptions,
        started_at=beat.started_at,
        last_seen=last_seen,
        current_shard=beat.current_shard,
        prior_s=beat.prior_s,
        prior_usd=beat.prior_usd,
        error=last_error_line(beat.error),
        exit_code=beat.exit_code,
    )


def read_status(store: RunStore, *, now: float | None = None) -> RunStatus:
    """Compute a run's status from its store."""
    now = time.time() if now is None else now
    info = store.run_info()
    manifest = store.read_manifest()
    markers = store.markers()
    claims = store.claims()
    workers = [_worker(beat, now) for _, beat in sorted(store.workers().items())]

    shard_states: list[ShardState] = []
    claimed = failed = 0
    for shard in manifest:
        sid = str(shard["shard_id"])
        claim = claims.get(sid)
        if sid in markers:
            shard_states.append(ShardState.DONE)
        elif claim and claim.expires_at > now:
            claimed += 1
            shard_states.append(ShardState.CLAIMED)
        elif claim and claim.failures > 0:
            failed += 1
            shard_states.append(ShardState.FAILED)
        else:
            shard_states.append(ShardState.PENDING)

    rows_total = sum(int(s["row_count"]) for s in manifest)
    rows_done = sum(m.rows_in for m in markers.values())
    rows_out = sum(m.rows_out for m in markers.values())
    rows_dead = sum(m.rows_dead for m in markers.values())
    alive = [w for w in workers if w.alive]
    # Rates from this session's rows and time only (a resume must not divide earlier
    # sessions' rows by its own time); the ETA from the recent, last-minute rate.
    session = current_session(workers, now=now)
    rows_per_s = session.recent_rows_per_s or session.avg_rows_per_s
    remaining = rows_total - rows_done
    if remaining <= 0:
        eta: float | None = 0.0
    elif rows_per_s > 0 and alive:
        eta = remaining / rows_per_s
    else:
        eta = None
    failure: str | None = None

    max_error_rate = float(info.limits.get("max_error_rate", 0.001))
    if manifest and all(str(s["shard_id"]) in markers for s in manifest):
        too_many = rows_done and rows_dead / rows_done > max_error_rate
        # Input rows = output + dead rows, or the run is not finished (the store contract, README.md beside this file): a
        # marker that does not add up means rows were lost, and resuming will not redo it.
        unbalanced = any(
            m.rows_in != int(sh["row_count"]) or m.rows_in != m.rows_out + m.rows_dead
            for sh in manifest
            for m in [markers[str(sh["shard_id"])]]
        )
        state = RunState.FAILED if too_many or unbalanced else RunState.DONE
    elif alive:
        state = RunState.RUNNING
    elif store.read_meta("cancel") is not None:  # read only when it decides the state
        state = RunState.CANCELLED
    elif failure := _failure(store) or session.failure():
        state = RunState.FAILED
    elif markers or workers:
        state = RunState.STOPPED
    else:
        state = RunState.PENDING

    return RunStatus(
        run_id=store.run_id,
        recipe_name=info.recipe_name,
        store=store.url,
        backend=info.backend,
        state=state,
        created_at=info.raw.get("created_at"),
        rows_total=rows_total,
        rows_done=rows_done,
        rows_out=rows_out,
        rows_dead=rows_dead,
        shards_total=len(manifest),
        shards_done=len(markers),
        shards_claimed=claimed,
        shards_failed=failed,
        rows_per_s=rows_per_s,
        eta_s=eta,
        elapsed_s=session.elapsed_s,
        deadline_at=info.deadline_at,
        budget_usd=info.budget_usd,
        spend_usd=sum(w.spend_usd for w in workers),
        usd_per_hour=sum(w.usd_per_hour for w in alive),
        max_error_rate=max_error_rate,
        tokens_in=sum(m.tokens_in for m in markers.values()),
        tokens_out=sum(m.tokens_out for m in markers.values()),
        workers=workers,
        shard_states=shard_states,
        failure_reason=failure,
        session_rows_done=session.rows_done,
        permanent_failure=_permanent_failure(workers, session.workers),
    )


def _permanent_failure(workers: list[WorkerStatus], session: Sequence[Life]) -> str | None:
    """The first worker of the latest session that exited permanently, in one line.

    Only this session's lives count: a worker that failed in an earlier session (a model
    since downloaded, say) says nothing about the workers running now.
    """
    ids = {w.worker_id for w in session}
    for w in workers:
        if w.worker_id in ids and w.failed_permanently:
            why = f": {w.error}" if w.error else ""
            return f"worker {w.worker_id} exited with code {w.exit_code} (permanent failure){why}"
    return None


def _failure(store: RunStore) -> str | None:
    """The reason a driver recorded when the run could not go on (``meta/failure``)."""
    doc = store.read_meta("failure")
    return last_error_line(str(doc.get("reason") or "")) if isinstance(doc, dict) else None
