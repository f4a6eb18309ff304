"""Run history: what past runs saw, fed back into the planner's assumptions.

``record_run`` stores one finished run (plan vs actual hours, cost, throughput,
preemptions, start-up). Two assumptions of the planner then come from it, each a blend of
a default and what was observed, so that one unlucky run does not swing the next plan:

* :func:`preemption_rate_per_hour` - spot preemptions per worker-hour by cloud x GPU
  class (x region) from ``data/spot_risk.csv`` (:mod:`pricing._terms`); the table's
  figure counts as :data:`PRIOR_WORKER_HOURS` worker-hours of evidence;
* :func:`startup_s` - provisioning + setup seconds per worker; the default counts as one run.

The defaults are assumptions, not measurements (spot markets publish no rates): they err
towards caution and are replaced as soon as runs report.
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import duckdb

__all__ = [
    "DEFAULT_STARTUP_S",
    "list_jobs",
    "preemption_rate_per_hour",
    "record_job",
    "record_run",
    "startup_s",
]

DEFAULT_STARTUP_S: dict[str, float] = {
    "aws": 240.0,
    "gcp": 240.0,
    "azure": 300.0,
    "lambda": 300.0,
    "runpod": 150.0,
    "vast": 180.0,
    "local": 5.0,
}
FALLBACK_STARTUP_S = 300.0
PRIOR_WORKER_HOURS = 10.0

_RUN_COLUMNS = (
    "run_id",
    "recipe",
    "model",
    "engine",
    "task",
    "cloud",
    "region",
    "accelerator",
    "accelerator_count",
    "spot",
    "workers",
    "planned_hours",
    "actual_hours",
    "planned_cost_usd",
    "actual_cost_usd",
    "planned_rows_per_s",
    "actual_rows_per_s",
    "worker_hours",
    "preemptions",
    "startup_s",
    "rows",
)


def record_run(**fields: Any) -> None:
    """Store one finished run; ``run_id`` is required, other fields as in the table.

    Fields: run_id, recipe, model, engine, task, cloud, region, accelerator,
    accelerator_count, spot, workers, planned_hours, actual_hours, planned_cost_usd,
    actual_cost_usd, planned_rows_per_s, actual_rows_per_s, worker_hours, preemptions,
    startup_s, rows; optional finished_at (datetime, default now).
    """
    from pricing._db import connect
    from pricing._specs import normalize_accelerator

    finished_at = fields.pop("finished_at", None) or datetime.now(timezone.utc)
    unknown = set(fields) - set(_RUN_COLUMNS)
    if unknown:
        raise ValueError(f"record_run: unknown field(s) {', '.join(sorted(unknown))}")
    if not fields.get("run_id"):
        raise ValueError("record_run: run_id is required")
    if fields.get("accelerator"):
        fields["accelerator"] = normalize_accelerator(str(fields["accelerator"]))
    if fields.get("cloud"):
        fields["cloud"] = str(fields["cloud"]).lower()
    names = [*fields, "finished_at"]
    values = [*fields.values(), finished_at.astimezone(timezone.utc).replace(tzinfo=None)]
    with connect() as con:
        con.execute(
            f"INSERT INTO run_history ({', '.join(names)}) "
            f"VALUES ({', '.join('?' for _ in names)})",
            values,
        )


# Per (cloud, accelerator): spot preemptions and worker-hours of the spot runs that
# report worker-hours, then the summed and counted start-up seconds of the runs that
# report one. Two planner questions per cloud and GPU are answered from these few rows.
_TOTALS_SQL = """
    SELECT cloud, accelerator,
        coalesce(sum(preemptions) FILTER (WHERE spot AND worker_hours > 0), 0),
        coalesce(sum(worker_hours) FILTER (WHERE spot AND worker_hours > 0), 0),
        coalesce(sum(startup_s), 0),
        count(startup_s)
    FROM run_history GROUP BY cloud, accelerator ORDER BY cloud, accelerator
"""
_Totals = list[tuple[str | None, str | None, float, float, float, int]]


def _totals() -> _Totals:
    """The run history summed per cloud and accelerator (read once per database state)."""
    from pricing._db import cached

    def load(con: duckdb.DuckDBPyConnection) -> _Totals:
        rows = con.execute(_TOTALS_SQL).fetchall()
        return [(c, a, float(p), float(h), float(s), int(n)) for c, a, p, h, s, n in rows]

    return cached("run_history_totals", load)


def preemption_rate_per_hour(
    cloud: str, accelerator: str | None = None, region: str | None = None
) -> float:
    """Spot preemptions per worker-hour: the risk table's row for (cloud, GPU class,
    region) blended with the run history of that cloud and accelerator."""
    from pricing._specs import normalize_accelerator
    from pricing._terms import spot_risk

    cloud = cloud.lower()
    prior = spot_risk(cloud, accelerator, region).preemptions_per_hour
    acc = normalize_accelerator(accelerator) if accelerator else None
    seen = hours = 0.0
    for c, a, preemptions, worker_hours, _, _ in _totals():
        if c == cloud and (acc is None or a == acc):
            seen += preemptions
            hours += worker_hours
    return (seen + prior * PRIOR_WORKER_HOURS) / (hours + PRIOR_WORKER_HOURS)


def startup_s(cloud: str) -> float:
    """Provisioning + setup seconds per worker on ``cloud``: default blended with runs."""
    cloud = cloud.lower()
    prior = DEFAULT_STARTUP_S.get(cloud, FALLBACK_STARTUP_S)
    total, n = 0.0, 0
    for c, _, _, _, startup, count in _totals():
        if c == cloud:
            total += startup
            n += count
    return (total + prior) / (n + 1)


def record_job(
    *, run_id: str, job_id: str, worker_index: int, cloud: str | None, region: str | None
) -> None:
    """Remember which managed job runs which worker of a run (for the launcher)."""
    from pricing._db import connect

    with connect() as con:
        con.execute(
            "INSERT OR REPLACE INTO jobs VALUES (?, ?, ?, ?, ?, ?)",
            [
                run_id,
                job_id,
                worker_index,
                cloud,
                region,
                datetime.now(timezone.utc).replace(tzinfo=None),
            ],
        )


def list_jobs(run_id: str) -> list[dict[str, Any]]:
    """The managed jobs of one run, by worker index."""
    from pricing._db import connect

    with connect(read_only=True) as con:
        rows = con.execute(
            "SELECT run_id, job_id, worker_index, cloud, region, created_at FROM jobs "
            "WHERE run_id = ? ORDER BY worker_index",
            [run_id],
        ).fetchall()
    keys = ("run_id", "job_id", "worker_index", "cloud", "region", "created_at")
    return [dict(zip(keys, r, strict=True)) for r in rows]
