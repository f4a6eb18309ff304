"""The TUI's data layer: everything the screens show, loaded off the UI thread.

Screens never touch the store, DuckDB or the network themselves: they call a
:class:`DataSource` method from a thread worker and draw the value object it returns.
Every reading takes ``now`` from the source's clock, so a test with a frozen clock sees
the same figures on every run.

Runs come from the store folder (``iter_runs``) and from the run history (a seam: a
callable returning :class:`~tui._history.HistoryRun` rows, read from the pricing DuckDB file
with a short-lived read-only connection, so the TUI never holds its write lock). Finished
runs recorded there but living in another store are listed from the history alone.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from scheduler.errors import SkybatchError, StoreError
from scheduler.store import (
    DoneMarker,
    RunStatus,
    RunStore,
    WorkerStatus,
    dead_reason,
    iter_runs,
    parse_time,
    read_status,
)
from tui._history import HistoryRun

__all__ = [
    "DataSource",
    "DeadRows",
    "QueryResult",
    "RunDetail",
    "RunsSnapshot",
    "rate_series",
]

#: How many dead rows the detail screen shows as a sample.
DEAD_SAMPLE = 5
#: Points in the rows/s and $/h sparklines.
SERIES_POINTS = 40

HistoryProvider = Callable[[], list[HistoryRun]]


@dataclass(frozen=True)
class RunsSnapshot:
    """Every known run's status at one moment, with the runs that could not be read."""

    runs: list[RunStatus]
    errors: dict[str, str]
    loaded_at: float
    history: list[HistoryRun] = field(default_factory=list)
    """Finished runs known only from the run history (their store is elsewhere)."""

    @property
    def active(self) -> list[RunStatus]:
        """Runs with at least one live worker."""
        return [r for r in self.runs if any(w.alive for w in r.workers)]

    @property
    def usd_per_hour(self) -> float:
        """What the live workers of every run cost per hour, together."""
        return sum(r.usd_per_hour for r in self.runs)


@dataclass(frozen=True)
class DeadRows:
    """Dead rows of a run: the count, a few samples and the commonest reasons."""

    count: int
    sample: list[dict[str, Any]] = field(default_factory=list)
    reasons: list[tuple[str, int]] = field(default_factory=list)


@dataclass(frozen=True)
class RunDetail:
    """Everything the run-detail screen draws."""

    status: RunStatus
    events: list[dict[str, Any]]
    dead: DeadRows
    rows_per_s_series: list[float]
    usd_per_hour_series: list[float]
    loaded_at: float


@dataclass(frozen=True)
class QueryResult:
    """The first rows of a DuckDB query over a run's committed outputs."""

    columns: list[str]
    rows: list[tuple[Any, ...]]
    truncated: bool


def rate_series(
    markers: Iterable[DoneMarker],
    workers: Iterable[WorkerStatus],
    *,
    start: float,
    end: float,
    points: int = SERIES_POINTS,
) -> tuple[list[float], list[float]]:
    """Rows/s and $/h over ``[start, end]`` in ``points`` buckets, from the store alone.

    Rows/s comes from the commit markers (rows committed in each bucket over its length);
    $/h from the heartbeats (the workers alive at the middle of each bucket), so the
    sparklines have a history as soon as the TUI opens, not only since it started.
    """
    if end <= start or points <= 0:
        return [], []
    width = (end - start) / points
    rows = [0.0] * points
    for m in markers:
        t = parse_time(m.committed_at)
        if t is None or t < start or t > end:
            continue
        rows[min(points - 1, int((t - start) / width))] += m.rows_in
    workers = list(workers)
    usd: list[float] = []
    for i in range(points):
        mid = start + (i + 0.5) * width
        usd.append(
            sum(
                w.usd_per_hour
                for w in workers
                if w.started_at is not None
                and w.last_seen is not None
                and w.started_at <= mid <= w.last_seen
            )
        )
    return [r / width for r in rows], usd


def _reason(row: dict[str, Any]) -> str:
    """The short reason of a dead row (the store's grouping, shared with ``status``)."""
    return dead_reason(row)


class DataSource:
    """Reads runs for the TUI. Thread-safe: screens call it from thread workers.

    ``clock`` gives "now" (a frozen one in tests); ``history`` adds finished runs recorded
    in the run history that live in other stores.
    """

    def __init__(
        self,
        store_url: str,
        *,
        clock: Callable[[], float] = time.time,
        history: HistoryProvider | None = None,
    ) -> None:
        self.store_url = store_url
        self.clock = clock
        self.history = history
        self._stores: dict[str, RunStore] = {}
        self._dead: dict[tuple[str, str], list[dict[str, Any]]] = {}
        self._lock = threading.Lock()
        self._last_history: list[HistoryRun] = []
        self._final: dict[str, RunStatus] = {}

    def store(self, run_id: str) -> RunStore:
        """The RunStore of a run, cached so commit markers are read once."""
        with self._lock:
            if run_id not in self._stores:
                self._stores[run_id] = RunStore(self.store_url, run_id)
            return self._stores[run_id]

    def _history(self) -> list[HistoryRun]:
        """The run history, or the last one read when the file is busy right now."""
        if self.history is None:
            return []
        try:
            runs = self.history()
        except Exception:  # HistoryBusy, or any failure: the history must not hide runs
            return self._last_history
        self._last_history = runs
        return runs

    def load_runs(self) -> RunsSnapshot:
        """The status of every run (blocking I/O: call from a thread)."""
        now = self.clock()
        runs: list[RunStatus] = []
        errors: dict[str, str] = {}
        try:
            run_ids = list(iter_runs(self.store_url))
        except SkybatchError as e:
            run_ids, errors[""] = [], str(e)
        for run_id in run_ids:
            if run_id in self._final:  # done and failed runs never change: read them once
                runs.append(self._final[run_id])
                continue
            try:
                status = read_status(self.store(run_id), now=now)
                runs.append(status)
                if status.finished and not any(w.alive for w in status.workers):
                    self._final[run_id] = status
            except (SkybatchError, OSError, ValueError) as e:
                errors[run_id] = str(e)
        seen = set(run_ids)
        history = [h for h in self._history() if h.run_id not in seen]
        return RunsSnapshot(runs, errors, now, history)

    def load_detail(self, run_id: str, *, events: int = 200) -> RunDetail:
        """Status, events, dead rows and rate history of one run (blocking I/O)."""
        now = self.clock()
        store = self.store(run_id)
        status = read_status(store, now=now)
        markers = store.markers()
        dead = self._dead_rows(store, list(markers.values()))
        start = parse_time(status.created_at)
        starts = [w.started_at for w in status.workers if w.started_at]
        if starts:
            start = min(starts)
        alive = any(w.alive for w in status.workers)
        ends = [t for t in (parse_time(m.committed_at) for m in markers.values()) if t]
        ends += [w.last_seen for w in status.workers if w.last_seen]
        end = now if alive or not ends else max(ends)
        rows_series, usd_series = (
            rate_series(markers.values(), status.workers, start=start, end=end)
            if start is not None
            else ([], [])
        )
        return RunDetail(
            status=status,
            events=store.events(limit=events),
            dead=dead,
            rows_per_s_series=rows_series,
            usd_per_hour_series=usd_series,
            loaded_at=now,
        )

    def _dead_rows(self, store: RunStore, markers: list[DoneMarker]) -> DeadRows:
        count = sum(m.rows_dead for m in markers)
        if not count:
            return DeadRows(0)
        reasons: Counter[str] = Counter()
        sample: list[dict[str, Any]] = []
        for m in sorted(markers, key=lambda m: m.shard_id):
            if not m.dead_file:
                continue
            key = (store.run_id, m.shard_id)
            if key not in self._dead:  # dead files never change once committed
                try:
                    self._dead[key] = store.read_dead(m)
                except (OSError, ValueError, StoreError):  # a damaged file: `skybatch verify`
                    self._dead[key] = []
            rows = self._dead[key]
            reasons.update(_reason(r) for r in rows)
            sample.extend(rows[: DEAD_SAMPLE - len(sample)])
        return DeadRows(count, sample, reasons.most_common(5))

    def query_results(self, run_id: str, sql: str, *, limit: int = 200) -> QueryResult:
        """Run SQL over view ``results`` (the run's committed outputs) in in-memory DuckDB.

        The connection is private and in memory: it never opens the pricing database, so
        it holds no lock a CLI command could wait on. For a local store, file access is
        then limited to the run's output files, so a query cannot write (``COPY ... TO``)
        or read anything else.
        """
        import duckdb

        from scheduler.results import connect_results

        store = self.store(run_id)
        if not store.done_shards():
            raise StoreError(f"run {run_id} has no committed outputs yet; wait for a shard")
        con = connect_results(store, sandbox=True)
        try:
            cur = con.execute(sql)
            columns = [d[0] for d in cur.description or []]
            rows = cur.fetchmany(limit + 1)
        except duckdb.Error as e:
            first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
            raise SkybatchError(f"query failed: {first}") from e
        finally:
            con.close()
        return QueryResult(columns, [tuple(r) for r in rows[:limit]], len(rows) > limit)
