"""Deterministic run stores for the TUI tests, built with the real RunStore API.

Runs are created, claimed, written and committed through :class:`RunStore` exactly as a
worker does it. Heartbeats and events are the one exception: ``RunStore.heartbeat`` and
``log_event`` stamp the wall clock, and the snapshot tests need fixed times, so those
documents are written at their store paths (``workers/<id>.json``, ``events/<ns>-x.json``)
with the same fields and fixed timestamps.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pyarrow as pa

from scheduler.store import DoneMarker, RunStore, digest_ids
from tui import DataSource, Launched, LaunchRequest, PlanResult, SkybatchApp

#: The frozen "now" of every TUI test: 2026-03-01 12:00:00 UTC.
FROZEN = datetime(2026, 3, 1, 12, 0, tzinfo=timezone.utc).timestamp()


def iso(t: float) -> str:
    return datetime.fromtimestamp(t, timezone.utc).isoformat(timespec="seconds")


@dataclass
class RunSpec:
    """What one test run looks like at the frozen time."""

    run_id: str
    recipe: str = "embed-minilm"
    backend: str = "local"
    shards: int = 12
    rows_per_shard: int = 100
    done: int = 0
    claimed: int = 0
    failed: int = 0
    dead_per_done: int = 0
    workers: list[dict[str, Any]] = field(default_factory=list)
    events: list[tuple[str, str]] = field(default_factory=list)
    deadline_in_s: float | None = 4 * 3600
    budget_usd: float | None = 50.0
    cancelled: bool = False
    created_ago_s: float = 3600  # when run.json says the run was created (the sort key)


def _put(store: RunStore, rel: str, doc: dict[str, Any]) -> None:
    store.fs.makedirs(store.path(rel.rsplit("/", 1)[0]), exist_ok=True)
    store.fs.pipe_file(store.path(rel), json.dumps(doc).encode())


def build_run(root: Path, spec: RunSpec) -> RunStore:
    """Create ``spec`` in the store at ``root`` and return its RunStore."""
    store = RunStore(str(root), spec.run_id)
    created = FROZEN - 3600
    manifest = [
        {
            "shard_id": f"{i:05d}",
            "file": "in.jsonl",
            "offset": i * spec.rows_per_shard,
            "row_count": spec.rows_per_shard,
        }
        for i in range(spec.shards)
    ]
    store.create(
        {
            "created_at": iso(FROZEN - spec.created_ago_s),
            "recipe_name": spec.recipe,
            "recipe": {
                "name": spec.recipe,
                "schedule": {"budget_usd": spec.budget_usd},
                "limits": {"max_error_rate": 0.05},
            },
            "backend": spec.backend,
            "deadline_at": None if spec.deadline_in_s is None else iso(FROZEN + spec.deadline_in_s),
        },
        manifest,
    )
    for i in range(spec.done):
        sid = f"{i:05d}"
        lease = store.claim(sid, "w0", ttl_s=600, now=created)
        assert lease is not None
        ids = [f"r{i * spec.rows_per_shard + j:06d}" for j in range(spec.rows_per_shard)]
        dead_ids, good = ids[: spec.dead_per_done], ids[spec.dead_per_done :]
        out = store.write_output(lease, pa.table({"id": good, "score": [len(x) for x in good]}))
        dead = store.write_dead(
            lease, [{"id": d, "reason": f"ValueError: cannot score {d}"} for d in dead_ids]
        )
        store.commit(
            DoneMarker(
                shard_id=sid,
                attempt=lease.attempt,
                attempt_id=lease.attempt_id,
                worker="w0",
                out_file=out.path,
                out_size=out.size,
                out_sha256=out.sha256,
                dead_file=dead.path if dead else None,
                rows_in=len(ids),
                rows_out=len(good),
                rows_dead=len(dead_ids),
                ids_digest=digest_ids(ids),
                seconds=30.0,
                committed_at=iso(created + 300 * (i + 1)),
            )
        )
    for i in range(spec.done, spec.done + spec.claimed):
        assert store.claim(f"{i:05d}", f"w{i % 2}", ttl_s=600, now=FROZEN - 60) is not None
    for i in range(spec.done + spec.claimed, spec.done + spec.claimed + spec.failed):
        lease = store.claim(f"{i:05d}", "w0", ttl_s=600, now=FROZEN - 120)
        assert lease is not None
        store.release(lease, error="RuntimeError: out of memory")
    for w in spec.workers:
        doc = {"state": "running", "last_seen": iso(FROZEN - 5), **w}
        _put(store, f"workers/{w['worker']}.json", doc)
    for n, (kind, message) in enumerate(spec.events):
        ts = created + 60 * (n + 1)
        doc = {"ts": iso(ts), "kind": kind, "message": message}
        name = f"events/{int(ts * 1e9):020d}-{n:06x}.json"
        _put(store, name, doc)
    if spec.cancelled:
        store.write_meta("cancel", {"at": iso(FROZEN - 30), "by": "test"})
    return store


def worker(worker_id: str, **fields: Any) -> dict[str, Any]:
    """A heartbeat document (running, started an hour before the frozen time)."""
    return {
        "worker": worker_id,
        "accelerator": "L4",
        "cloud": "gcp",
        "region": "us-central1",
        "spot": True,
        "usd_per_hour": 0.35,
        "rows_per_s": 2.5,
        "rows_done": 400,
        "shards_done": 4,
        "preemptions": 0,
        "started_at": iso(FROZEN - 3600),
        **fields,
    }


def sample_store(root: Path) -> Path:
    """Three runs in a store: one running, one done, one cancelled half-way."""
    build_run(
        root,
        RunSpec(
            "embed-minilm-0a1b2c3d4e",
            done=7,
            claimed=2,
            failed=1,
            dead_per_done=1,
            workers=[
                worker("w0", current_shard="00007"),
                worker("w1", current_shard="00008", spot=False, usd_per_hour=0.7, preemptions=1),
            ],
            events=[
                ("workers_started", "2 worker(s) started"),
                ("preempted", "worker w1 preempted; shard 00003 released"),
                ("worker_restarted", "worker w1 restarted (1/3)"),
                ("deadline_guard", "on track: ETA 25m before a 4h deadline; no change"),
            ],
        ),
    )
    build_run(
        root,
        RunSpec(
            "classify-news-5f6a7b8c9d",
            recipe="classify-news",
            backend="skypilot",
            shards=4,
            done=4,
            workers=[worker("sky-0", state="exited", last_seen=iso(FROZEN - 1800))],
            budget_usd=10.0,
            created_ago_s=1800,  # newest first: this one leads the runs table
        ),
    )
    build_run(
        root,
        RunSpec(
            "summarize-vllm-1122334455",
            recipe="summarize-vllm",
            shards=20,
            done=5,
            cancelled=True,
            created_ago_s=5400,
            deadline_in_s=600,
            budget_usd=None,
        ),
    )
    return root


class FakeActions:
    """A recording :class:`tui.Actions` for the seam: answers are set by the test."""

    def __init__(
        self,
        *,
        plan: PlanResult | None = None,
        plan_error: Exception | None = None,
        launch_error: Exception | None = None,
        launched: str = "new-run-0001",
    ) -> None:
        self.calls: list[tuple[str, Any]] = []
        self._plan = plan
        self._plan_error = plan_error
        self._launch_error = launch_error
        self._launched = launched

    def plan(
        self, recipe_path: str, *, deadline: str | None, budget_usd: float | None
    ) -> PlanResult:
        self.calls.append(("plan", (recipe_path, deadline, budget_usd)))
        if self._plan_error is not None:
            raise self._plan_error
        assert self._plan is not None
        return self._plan

    def launch(self, request: LaunchRequest) -> Launched:
        self.calls.append(("launch", request))
        if self._launch_error is not None:
            raise self._launch_error
        return Launched(self._launched, request.store)

    def cancel(self, store_url: str, run_id: str) -> None:
        self.calls.append(("cancel", run_id))

    def resume(self, store_url: str, run_id: str) -> None:
        self.calls.append(("resume", run_id))


def make_app(root: Path, **kwargs: Any) -> SkybatchApp:
    """The app over the store at ``root`` with the frozen clock."""
    return SkybatchApp(DataSource(str(root), clock=lambda: FROZEN), **kwargs)


SAMPLE_PLAN = PlanResult(
    options=[
        {
            "accelerator": "L4",
            "accelerators_per_worker": 1,
            "spot": True,
            "workers": 4,
            "hours": 2.5,
            "cost_usd": 3.5,
            "p_on_time": 0.97,
            "throughput_source": "measured",
            "offerings": [
                {
                    "cloud": "gcp",
                    "region": "us-central1",
                    "instance_type": "g2-standard-4",
                    "usd_per_hour": 0.35,
                }
            ],
        },
        {
            "accelerator": "A100-80GB",
            "accelerators_per_worker": 1,
            "spot": False,
            "workers": 1,
            "hours": 1.2,
            "cost_usd": 4.9,
            "p_on_time": 0.99,
            "throughput_source": "roofline",
            "offerings": [
                {
                    "cloud": "aws",
                    "region": "us-east-1",
                    "instance_type": "p4de.24xlarge",
                    "usd_per_hour": 4.1,
                }
            ],
        },
    ],
    chosen=0,
    reason="cheapest option on time",
)


SCORE_FN = """\
import time

def score(rows, delay_s=0.0):
    out = []
    for r in rows:
        if "boom" in r["text"]:
            raise ValueError("cannot score " + r["id"])
        out.append({"length": len(r["text"])})
    time.sleep(delay_s * len(rows))
    return out
"""


def write_recipe(tmp: Path, *, rows: int, boom: int, delay_s: float, rows_per_shard: int) -> Path:
    (tmp / "fn.py").write_text(SCORE_FN)
    with (tmp / "rows.jsonl").open("w") as f:
        for i in range(rows):
            text = f"row {i} boom" if i < boom else f"row number {i}"
            f.write(json.dumps({"id": f"r{i:05d}", "text": text}) + "\n")
    recipe = tmp / "score.yaml"
    recipe.write_text(
        f"""\
name: score-lengths
input: {{path: rows.jsonl, id_column: id}}
task: score
model: {{engine: python, name: "fn.py:score", batch_size: 10, options: {{delay_s: {delay_s}}}}}
shards: {{rows_per_shard: {rows_per_shard}}}
store: ./runs
limits: {{max_error_rate: 0.5}}
"""
    )
    return recipe
