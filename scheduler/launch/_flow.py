"""The launch flow, shared by the local and SkyPilot backends.

::

    plan ──► confirm ──► store (create or resume) ──► workers ──► watch + guard ──► summary
     │         │            │                           │            │                │
     │         │            │                           │            │                └ exit code, markdown
     │         │            │                           │            └ every few minutes: add workers
     │         │            │                           │              if late, never past the budget
     │         │            │                           └ local processes | one managed job each
     │         │            └ conformance check; cloud: object store only
     │         └ unless --yes (refused without a terminal, so CI never hangs)
     └ the planner's chosen option, --plan N, or --gpu G --workers N

``--dry-run`` stops after the plan and prints each worker's SkyPilot task YAML; nothing is
written anywhere. A local launch always waits (its workers are child processes); a cloud
launch returns once the jobs are submitted unless ``--wait``.

Request, result, run-id templates and options live in :mod:`scheduler.launch._request`; the
guard's levers (managed jobs, local processes) in :mod:`scheduler.launch._scalers`.
"""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Callable, Mapping
from typing import Any

from scheduler.errors import UsageError
from scheduler.launch._guard import DeadlineGuard
from scheduler.launch._request import (
    LaunchRequest,
    LaunchResult,
    choose_option,
    describe_option,
    render_run_id,
    with_schedule,
)
from scheduler.launch._scalers import LocalScaler, SkyScaler, make_guard, record_jobs
from scheduler.launch._summary import Outcome
from scheduler.recipe import Recipe, load_recipe, resolve_input_path
from scheduler.settings import load_settings
from scheduler.store import RunStatus, RunStore, parse_time, read_status

__all__ = [
    "LaunchRequest",
    "LaunchResult",
    "LocalScaler",
    "SkyScaler",
    "choose_option",
    "describe_option",
    "finish_cloud",
    "launch",
    "make_guard",
    "outcome_of",
    "record_jobs",
    "render_run_id",
    "watch",
]

Echo = Callable[[str], None]
Confirm = Callable[[str], bool]


# ---------------------------------------------------------------------- the flow


def _dry_run_id(recipe: Recipe, req: LaunchRequest) -> str:
    if req.run_id:
        return render_run_id(req.run_id, name=recipe.name)
    # The real id needs the input's fingerprint; a bucket may be out of reach from here.
    try:
        from scheduler.engines import model_revision
        from scheduler.inputs import open_input
        from scheduler.runs import derive_run_id

        source = open_input(recipe.input, resolve_input_path(recipe))
        return derive_run_id(
            recipe, fingerprint=source.fingerprint(), revision=model_revision(recipe)
        )
    except Exception:
        return f"{recipe.name}-dryrun"


def launch(
    req: LaunchRequest,
    *,
    echo: Echo,
    confirm: Confirm,
    session_factory: Callable[[], Any] | None = None,
) -> LaunchResult:
    """Run the whole launch flow; ``echo`` prints progress lines (stderr), ``confirm`` asks.

    ``session_factory`` makes the SkyPilot session (a context manager with
    ``require_cloud``, ``launch``, ``queue``, ``cancel``); the default is
    :class:`~scheduler.backends.skypilot.SkyPilotSession`. Tests put a backend fake here.
    """
    from scheduler.backends import skypilot as sp

    if req.backend not in ("local", "skypilot"):
        raise UsageError(f"--backend {req.backend!r}: use local or skypilot")
    recipe = with_schedule(load_recipe(req.recipe_path), req)
    store_url = load_settings().store_url(req.store_url, recipe)
    cloud = req.backend == "skypilot"
    if req.dry_run and not cloud:
        raise UsageError(
            "--dry-run prints the SkyPilot tasks a cloud launch would submit; with "
            "--backend local there are none (use `skybatch plan RECIPE` to see a plan)"
        )
    if cloud:
        sp.require_object_store(store_url)
    secret_names = sp.secret_names_from_env(req.secrets) if cloud else ()
    secrets: dict[str, str] = {}
    option, plan = choose_option(recipe, req)
    workers = int(option["workers"])

    if req.dry_run:
        run_id = _dry_run_id(recipe, req)
        jobs = [
            sp.build_worker_job(
                recipe=recipe,
                run_id=run_id,
                store_url=store_url,
                worker_index=i,
                option=option,
                secret_names=secret_names,
            )
            for i in range(workers)
        ]
        return LaunchResult(run_id, store_url, req.backend, option, sp.render_yaml(jobs))

    if cloud:
        input_path = resolve_input_path(recipe)
        if "://" not in input_path:
            raise UsageError(
                f"{req.recipe_path}: input.path {input_path} is on this machine, where cloud "
                "workers cannot read it; upload it to a bucket and point input.path at the URL"
            )
        secrets = sp.secret_values(secret_names)
    echo(f"plan: {describe_option(option)}")
    if not req.yes:
        if not sys.stdin.isatty():
            raise UsageError("launch needs confirmation; pass --yes to launch without asking (CI)")
        if not confirm(f"Launch {workers} {'managed job' if cloud else 'local worker'}(s)?"):
            raise UsageError("launch not confirmed; nothing was started")

    if not cloud:
        return _launch_into_store(req, recipe, store_url, option, plan, echo, session=None)
    with (session_factory or sp.SkyPilotSession)() as session:
        # Ask SkyPilot first: without a cloud nothing is written to the store.
        session.require_cloud()
        return _launch_into_store(
            req, recipe, store_url, option, plan, echo, session=session,
            secret_names=secret_names, secrets=secrets,
        )  # fmt: skip


def _launch_into_store(
    req: LaunchRequest,
    recipe: Recipe,
    store_url: str,
    option: dict[str, Any],
    plan: dict[str, Any] | None,
    echo: Echo,
    *,
    session: Any,
    secret_names: tuple[str, ...] = (),
    secrets: Mapping[str, str] | None = None,
) -> LaunchResult:
    """Create or resume the run, start its workers, and watch it when asked to."""
    from scheduler.runs import prepare_run

    wanted_id = render_run_id(req.run_id, name=recipe.name) if req.run_id else None
    extra: dict[str, Any] = {"launch": {"option": option, "backend": req.backend}}
    if req.incremental:
        from scheduler.launch._incremental import incremental_recipe

        recipe, inc = incremental_recipe(recipe, store_url=store_url, run_id=wanted_id)
        extra["incremental"] = inc
        if inc.get("resumed_run"):
            echo(f"incremental: resuming the unfinished run {inc['resumed_run']}")
        echo(
            f"incremental: {inc['rows_reused']:,} row(s) already done in "
            f"{len(inc['previous_runs'])} earlier run(s); {inc['rows_new']:,} new"
        )
        if inc["rows_new"] == 0:
            rid = wanted_id or f"{recipe.name}-nothing-new"
            summary = {"run_id": rid, "store": store_url, "state": "done", "rows_in": 0,
                       "rows_out": 0, "rows_dead": 0, "wall_s": 0.0, "rows_per_s": 0.0,
                       "rows_reused": inc["rows_reused"]}  # fmt: skip
            result = LaunchResult(rid, store_url, req.backend, option)
            result.outcome = Outcome(summary=summary, finished_at=time.time(), backend=req.backend)
            return result
    started = time.time()
    store = prepare_run(
        recipe,
        store_url=store_url,
        run_id=wanted_id,
        backend=req.backend,
        plan=plan or {"options": [option], "chosen": 0},
        rows_per_shard=option.get("rows_per_shard"),
        extra_info=extra,
    )
    store.clear_meta("cancel")  # launching again is how a cancelled run resumes
    store.log_event("launched", f"launch: {describe_option(option)}", backend=req.backend)
    echo(f"run {store.run_id} → {store.location}")
    result = LaunchResult(store.run_id, store_url, req.backend, option)
    if session is None:
        result.outcome = _run_local(store, req, option, started, echo)
        return result
    scaler = SkyScaler(store, recipe, option, secret_names, secrets or {}, session)
    status = read_status(store)
    # Never pay for a VM that would find nothing to claim: a finished run launches no job,
    # and a resumed one at most one per shard left.
    wanted = min(int(option["workers"]), status.shards_total - status.shards_done)
    missing = wanted - scaler.alive_or_unknown() if not status.state.is_terminal() else 0
    if missing > 0:
        scaler.add(missing, spot=bool(option.get("spot")))
    result.jobs = dict(scaler.jobs)
    echo(f"managed jobs: {scaler.jobs}")
    if req.wait:
        guard = make_guard(store, scaler, option, req, cloud=True)
        watch(store, guard=guard, poll_s=req.poll_s, scaler=scaler)
        result.outcome = finish_cloud(store, scaler, session, started=started, option=option)
    return result


def finish_cloud(
    store: RunStore, scaler: SkyScaler, session: Any, *, started: float, option: Mapping[str, Any]
) -> Outcome:
    """The outcome of a watched cloud run, with SkyPilot's billed spend; a finished run
    goes into the run history (``launch --wait`` and ``watch`` alike)."""
    from scheduler.backends.skypilot import job_statuses

    # SkyPilot bills from submission (provisioning and recoveries included), which a
    # recovered worker's fresh heartbeat does not show.
    jobs = job_statuses(store, session=session)
    billed = sum(float(d["spend_usd"]) for d in jobs)
    outcome = outcome_of(
        store, started=started, option=option, workers=scaler.total, spend_usd=billed
    )
    if outcome.state == "done":
        from scheduler.runs import record_history

        record_history(
            store, outcome.summary, backend="skypilot", jobs=jobs,
            workers=outcome.workers, spend_usd=outcome.spend_usd,
        )  # fmt: skip
    return outcome


# ---------------------------------------------------------------------- watching


def watch(
    store: RunStore,
    *,
    guard: DeadlineGuard | None,
    poll_s: float = 5.0,
    scaler: SkyScaler | None = None,
    stop: threading.Event | None = None,
    queue_every_s: float = 60.0,
) -> RunStatus:
    """Follow a run until it ends, is cancelled, or has no job left; the guard steps in."""
    stop = stop or threading.Event()
    next_queue = 0.0
    while True:
        status = read_status(store)
        if status.state.is_terminal() or store.read_meta("cancel") is not None:
            return status
        if scaler is not None and time.time() >= next_queue:
            next_queue = time.time() + queue_every_s
            scaler.refresh()
            if scaler.jobs and scaler.alive() == 0:
                store.log_event("stopped", "every managed job has ended with shards left")
                return status
        if guard is not None and guard.due():
            guard.step(status)
        if stop.wait(poll_s):
            return read_status(store)


def _run_local(
    store: RunStore, req: LaunchRequest, option: Mapping[str, Any], started: float, echo: Echo
) -> Outcome:
    from scheduler.backends.local import run_local

    box: dict[str, DeadlineGuard | None] = {}
    workers = int(option["workers"])
    seen = {"max": workers}

    def on_tick(status: RunStatus, pool: Any) -> None:
        if "guard" not in box:
            price = float(req.usd_per_hour)
            scaler = LocalScaler(pool, spot_usd_per_hour=price, ondemand_usd_per_hour=price)
            box["guard"] = make_guard(store, scaler, option, req, cloud=False)
        guard = box["guard"]
        if guard is not None and guard.due():
            d = guard.step(status)
            if d.action in ("add", "over_budget"):
                echo(f"guard: {d.reason}")
        seen["max"] = max(seen["max"], len(pool.procs))

    run_local(
        store,
        workers=workers,
        progress=req.progress,
        poll_s=min(req.poll_s, 1.0),
        usd_per_hour=req.usd_per_hour,
        on_tick=on_tick,
    )
    from scheduler.runs import record_history

    outcome = outcome_of(store, started=started, option=option, workers=seen["max"])
    record_history(store, outcome.summary, backend="local", workers=seen["max"])
    return outcome


def outcome_of(
    store: RunStore,
    *,
    started: float,
    option: Mapping[str, Any],
    workers: int,
    spend_usd: float | None = None,
) -> Outcome:
    """The :class:`Outcome` of a run now (summary, deadline, budget, guard decisions)."""
    from scheduler.runs import summarize

    info = store.read_run_info()
    schedule = (info.get("recipe") or {}).get("schedule") or {}
    deadline = info.get("deadline_at")
    summary = summarize(store, wall_s=time.time() - started)
    if spend_usd is not None and spend_usd > float(summary.get("spend_usd") or 0.0):
        summary["spend_usd"] = round(spend_usd, 4)
    finished_at = time.time()
    if summary.get("state") in ("done", "failed"):
        # The run finished when its last shard was committed, not when we looked.
        stamps = [parse_time(m.committed_at) for m in store.markers().values()]
        if any(stamps):
            finished_at = max(t for t in stamps if t)
    events = [
        f"{e.get('ts', '')[11:19]} {e.get('action')}: {e.get('message')}"
        for e in store.events()
        if e.get("kind") == "guard" and e.get("action") in ("add", "add_failed", "over_budget")
    ]
    return Outcome(
        summary=summary,
        finished_at=finished_at,
        deadline_at=parse_time(deadline),
        budget_usd=schedule.get("budget_usd"),
        planned_cost_usd=option.get("cost_usd"),
        planned_hours=option.get("hours"),
        backend=str(info.get("backend", "local")),
        workers=workers,
        events=events,
    )
