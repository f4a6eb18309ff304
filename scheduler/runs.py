"""Creating, resuming and summarising runs.

:func:`prepare_run` turns a recipe into a run in a store: it resolves and fingerprints the
input, derives the stable run id (same input, model + revision and recipe → same id, so a
re-triggered job resumes), checks the store's conformance, and either creates the run
(manifest + ``run.json``) or checks that the existing one was made from the same input,
model revision and recipe. Sharding reads file metadata (Parquet footers) or the row index
the input's one counting pass left (JSONL, CSV), and only for a new run.
"""

from __future__ import annotations

import math
import sys
from datetime import timedelta
from importlib import metadata
from pathlib import Path
from typing import Any

from scheduler.engines import check_options, model_revision
from scheduler.inputs import Input, open_input
from scheduler.recipe import Recipe, resolve_input_path, resolve_model_name
from scheduler.settings import load_settings
from scheduler.store import (
    LaunchOption,
    RunStore,
    check_committed,
    clean_orphans,
    make_run_id,
    raise_problems,
    read_status,
    utcnow,
)

__all__ = [
    "default_rows_per_shard",
    "open_recipe_input",
    "prepare_run",
    "record_history",
    "summarize",
]


def default_rows_per_shard(total_rows: int) -> int:
    """Rows per shard when neither the recipe nor a plan fixes it.

    About 16 shards for small inputs (so several local workers share the work and a crash
    costs little), at most 10,000 rows per shard for large ones.
    """
    return max(100, min(10_000, math.ceil(total_rows / 16)))


def _version() -> str:
    try:
        return metadata.version("skybatch")
    except metadata.PackageNotFoundError:
        return "0+unknown"


def derive_run_id(recipe: Recipe, *, fingerprint: str, revision: str | None) -> str:
    """The run id a recipe gets over an input with this fingerprint and model revision.

    ``revision`` is :func:`~scheduler.engines.model_revision` of the recipe; callers that
    already have it pass it, since it may hash local weights.
    """
    return make_run_id(
        recipe.name,
        fingerprint=fingerprint,
        model=recipe.model.name,
        revision=revision,
        recipe_digest=recipe.digest(),
    )


def open_recipe_input(recipe: Recipe) -> Input:
    """Open the recipe's input (a local path made absolute: workers may start elsewhere).

    Its file list, row counts, fingerprint and row index come from one streamed pass and
    are kept, so one opened input serves the plan, the run id and the run's manifest. A
    recipe that fixes ``shards.rows_per_shard`` has that pass mark exactly its shards.
    """
    input_path = resolve_input_path(recipe)
    if "://" not in input_path:
        input_path = str(Path(input_path).resolve()) if Path(input_path).exists() else input_path
    return open_input(recipe.input, input_path, rows_per_shard=recipe.shards.rows_per_shard)


def prepare_run(
    recipe: Recipe,
    *,
    store_url: str | None = None,
    run_id: str | None = None,
    backend: str = "local",
    plan: dict[str, Any] | None = None,
    rows_per_shard: int | None = None,
    extra_info: dict[str, Any] | None = None,
    source: Input | None = None,
) -> RunStore:
    """Create the run for ``recipe`` in its store, or open it to resume; returns the store.

    ``source`` is the recipe's input when the caller opened it already
    (:func:`open_recipe_input`): its files are then counted and fingerprinted only once.
    """
    check_options(recipe)  # cheap: before the input is scanned
    url = load_settings().store_url(store_url, recipe)
    source = source if source is not None else open_recipe_input(recipe)
    input_path = source.path
    fingerprint = source.fingerprint()
    digest = recipe.digest()
    revision = model_revision(recipe)
    rid = run_id or derive_run_id(recipe, fingerprint=fingerprint, revision=revision)
    store = RunStore(url, rid)
    store.check_conformance()
    now = utcnow()
    deadline = recipe.schedule.deadline
    info: dict[str, Any] = {
        "created_at": now.isoformat(),
        "recipe_name": recipe.name,
        "recipe_source": recipe.source,
        # Workers may start elsewhere (another directory, another machine): a model given
        # as a relative local path is recorded as an absolute one.
        "recipe": _with_model_name(recipe.to_dict(), resolve_model_name(recipe)),
        "recipe_digest": digest,
        "input_path": input_path,
        "input_fingerprint": fingerprint,
        "input_files": [
            {"url": f.url, "format": f.format, "size": f.size, "version": f.version, "rows": f.rows}
            for f in source.files
        ],
        "rows_total": source.total_rows,
        "model": recipe.model.name,
        "model_revision": revision,
        "backend": backend,
        "plan": plan,
        "deadline_at": (now + timedelta(seconds=deadline)).isoformat() if deadline else None,
        "skybatch_version": _version(),
        **(extra_info or {}),
    }
    rps = recipe.shards.rows_per_shard or rows_per_shard
    info["rows_per_shard"] = rps or default_rows_per_shard(source.total_rows)
    created = store.ensure(
        info,
        lambda: [s.to_dict() for s in source.shards(int(info["rows_per_shard"]))],
        keys=("input_fingerprint", "model_revision", "recipe_digest", "model"),
    )
    if not created:
        # Resume skips committed shards: never on the word of a marker whose files are
        # gone or damaged (that shard could never be redone). `verify --repair` fixes it.
        raise_problems(store, check_committed(store, store.markers().values()), doing="resume of")
        clean_orphans(store)  # files of attempts that can never commit (a crash, a full disk)
    return store


def _with_model_name(recipe: dict[str, Any], name: str) -> dict[str, Any]:
    return {**recipe, "model": {**recipe["model"], "name": name}}


def summarize(store: RunStore, *, wall_s: float) -> dict[str, Any]:
    """The run summary of the command contract (``run`` and ``launch --wait`` ``--json``)."""
    status = read_status(store)
    return {
        "run_id": store.run_id,
        "store": store.url,
        "location": store.location,
        "state": status.state.value,
        "failure_reason": status.failure_reason,
        "rows_in": status.rows_total,
        "rows_done": status.rows_done,
        "rows_out": status.rows_out,
        "rows_dead": status.rows_dead,
        "shards_total": status.shards_total,
        "shards_done": status.shards_done,
        "wall_s": round(wall_s, 3),
        # This command's rows only: after a resume, earlier sessions' rows are not its work.
        "rows_per_s": round(status.session_rows_done / wall_s, 3) if wall_s > 0 else 0.0,
        "tokens_in": status.tokens_in,
        "tokens_out": status.tokens_out,
        "spend_usd": round(status.spend_usd, 4),
        "error_rate": round(status.error_rate, 6),
        "max_error_rate": status.max_error_rate,
    }


def record_history(
    store: RunStore,
    summary: dict[str, Any],
    *,
    backend: str,
    jobs: list[dict[str, Any]] | None = None,
    workers: int | None = None,
    spend_usd: float | None = None,
) -> None:
    """Send what a finished run measured back to the pricing DB (best effort).

    The run goes into ``run_history``, plan (the chosen option in ``run.json``) against
    actual, which the planner blends into its start-up and preemption figures. When it
    ran long enough to mean something, its per-worker rows/s goes into the throughput
    table as a measured figure, so the next plan for this model and accelerator starts
    from it. ``jobs`` (SkyPilot's queue, cloud runs) add where the workers ran, start-up
    (submission → running), recovery counts and billed worker-hours.
    """
    if summary.get("state") != "done":
        return
    try:
        import pricing

        info = store.run_info()
        recipe = info.recipe
        model = recipe.get("model") or {}
        option = info.option or LaunchOption("", gpus_per_worker=1)
        status = read_status(store)
        jobs = jobs or []
        n_workers = workers or max(1, len(status.workers))
        seen = {w.accelerator for w in status.workers if w.accelerator}
        accelerator = (option.accelerator or None) if jobs else None
        if accelerator is None and len(seen) == 1:
            accelerator = seen.pop()
        count = option.gpus_per_worker
        wall_s = float(summary["wall_s"])
        starts = [
            float(j["started_at"]) - float(j["submitted_at"])
            for j in jobs
            if j.get("started_at") and j.get("submitted_at")
        ]
        where = next((j for j in jobs if j.get("cloud")), {})
        planned_rate = option.rows_per_s
        pricing.record_run(
            run_id=store.run_id,
            recipe=info.recipe_name,
            model=model.get("name"),
            engine=model.get("engine"),
            task=recipe.get("task"),
            cloud=where.get("cloud"),
            region=where.get("region"),
            accelerator=accelerator,
            accelerator_count=count,
            spot=option.spot if jobs else None,
            workers=n_workers,
            rows=summary["rows_in"],
            planned_hours=option.hours,
            actual_hours=wall_s / 3600,
            planned_cost_usd=option.cost_usd,
            actual_cost_usd=summary["spend_usd"] if spend_usd is None else spend_usd,
            planned_rows_per_s=planned_rate * option.workers if planned_rate else None,
            actual_rows_per_s=summary["rows_per_s"],
            worker_hours=(
                sum(float(j.get("billed_s") or 0.0) for j in jobs) / 3600 if jobs else None
            ),
            preemptions=(
                sum(int(j.get("recovery_count") or 0) for j in jobs)
                if jobs
                else sum(w.preemptions for w in status.workers)
            ),
            startup_s=sum(starts) / len(starts) if starts else None,
        )
        if accelerator and wall_s >= 5 and summary["rows_in"] >= 100:
            tokens = float(summary.get("tokens_in", 0)) + float(summary.get("tokens_out", 0))
            pricing.record_throughput(
                model=str(model.get("name")),
                engine=str(model.get("engine")),
                task=str(recipe.get("task")),
                accelerator=str(accelerator),
                count=count,
                precision=(model.get("options") or {}).get("dtype"),
                input_tokens=summary.get("tokens_in", 0) / max(1, summary["rows_in"]),
                output_tokens=summary.get("tokens_out", 0) / max(1, summary["rows_in"]),
                rows_per_s=summary["rows_per_s"] / n_workers,
                tokens_per_s=tokens / wall_s / n_workers,
                kind="measured",
                source=f"run {store.run_id} ({backend}, wall clock incl. start-up)",
            )
    except Exception as e:  # history must never turn a finished run into a failure
        print(f"skybatch: note: run history not recorded ({e})", file=sys.stderr)
