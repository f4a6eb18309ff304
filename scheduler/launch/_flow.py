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

``--dry-run`` stops after the plan and prints it with each distinct SkyPilot task YAML and a
table of the workers (:mod:`scheduler.launch._dryrun`; ``--all``: every worker's task);
nothing is written anywhere. A local launch always waits (its workers are child processes); a cloud
launch returns once the jobs are submitted unless ``--wait``.

Request, result, run-id templates and options live in :mod:`scheduler.launch._request`.
The workers are reached only through a :class:`~scheduler.backends.Backend` (local processes
or managed jobs): the flow never tests a backend's name, only whether its workers are
``remote`` (then the store and input must be URLs and secrets travel with the tasks).
"""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from scheduler.backends import Backend, SessionFactory, backend_class
from scheduler.errors import LaunchError, SkybatchError, UsageError
from scheduler.launch._guard import DeadlineGuard, make_guard
from scheduler.launch._request import (
    LaunchRequest,
    LaunchResult,
    choose_option,
    describe_option,
    render_run_id,
    with_schedule,
)
from scheduler.launch._summary import Outcome
from scheduler.recipe import Recipe, load_recipe, resolve_input_path
from scheduler.settings import load_settings
from scheduler.store import LaunchOption, RunStatus, RunStore, parse_time, read_status

if TYPE_CHECKING:
    from scheduler.backends.skypilot import SkyPilotSession
    from scheduler.inputs import Input

__all__ = ["finish", "launch", "outcome_of", "watch"]

Echo = Callable[[str], None]
Confirm = Callable[[str], bool]


# ---------------------------------------------------------------------- the flow


def _cloud_session() -> SkyPilotSession:
    """A cloud launch's default session: SkyPilot's, which says "no cloud" without starting
    an API server when SkyPilot surely has none (the answer took 27-49 s through a server)."""
    from scheduler.backends import skypilot as sp

    return sp.SkyPilotSession(cloud_required=True)


def _input_once(recipe: Recipe) -> Callable[[], Input]:
    """Open the recipe's input on first call and hand the same object out after: its files
    are listed, counted and fingerprinted once per launch (plan, run id, run creation)."""
    opened: list[Input] = []

    def source() -> Input:
        if not opened:
            from scheduler.runs import open_recipe_input

            opened.append(open_recipe_input(recipe))
        return opened[0]

    return source


def _dry_run_id(
    recipe: Recipe, req: LaunchRequest, source: Callable[[], Input]
) -> tuple[str | None, str | None]:
    """The run id a launch would use, or None and why it cannot be derived from here (the
    id needs the input's fingerprint, and a bucket may be out of reach): never made up."""
    if req.run_id:
        return render_run_id(req.run_id, name=recipe.name), None
    from scheduler.engines import model_revision
    from scheduler.runs import derive_run_id

    try:
        fingerprint = source().fingerprint()
    except SkybatchError as e:
        return None, f"the input cannot be read ({e})"
    except Exception as e:  # credentials, network: whatever the filesystem raises
        return None, f"the input cannot be read ({type(e).__name__}: {e})"
    return derive_run_id(recipe, fingerprint=fingerprint, revision=model_revision(recipe)), None


def launch(
    req: LaunchRequest,
    *,
    echo: Echo,
    confirm: Confirm,
    session_factory: SessionFactory | None = None,
    detach: bool = False,
) -> LaunchResult:
    """Run the whole launch flow; ``echo`` prints progress lines (stderr), ``confirm`` asks.

    ``session_factory`` makes the SkyPilot session (see :mod:`scheduler.backends.base`);
    the default is :class:`~scheduler.backends.skypilot.SkyPilotSession`. A rehearsal
    session or a test's fake goes here. ``detach`` returns once the workers are started,
    whatever the backend (the TUI): local workers then run under a driver process of
    their own.
    """
    from scheduler.backends import skypilot as sp

    kind = backend_class(req.backend)
    recipe = with_schedule(load_recipe(req.recipe_path), req)
    store_url = load_settings().store_url(req.store_url, recipe)
    if req.all_documents and not req.dry_run:
        raise UsageError("--all goes with --dry-run (print every worker's task YAML)")
    if req.dry_run and not kind.remote:
        raise UsageError(
            "--dry-run prints the SkyPilot tasks a cloud launch would submit; with "
            "--backend local there are none (use `skybatch plan RECIPE` to see a plan)"
        )
    if kind.remote:
        sp.require_object_store(store_url)
    secret_names = sp.secret_names_from_env(req.secrets) if kind.remote else ()
    secrets: dict[str, str] = {}
    if kind.remote and not req.dry_run:
        # What fails without SkyPilot's help fails before SkyPilot starts.
        input_path = resolve_input_path(recipe)
        if "://" not in input_path:
            raise UsageError(
                f"{req.recipe_path}: input.path {input_path} is on this machine, where cloud "
                "workers cannot read it; upload it to a bucket and point input.path at the URL"
            )
        secrets = sp.secret_values(secret_names)
    flow = _Flow(req, kind, store_url, secret_names, secrets, echo, confirm, detach)
    if not kind.remote or req.dry_run:
        return flow.run(recipe, session=None)
    with (session_factory or _cloud_session)() as session:
        # Ask SkyPilot first: without a cloud nothing is written to the store, and the
        # plan covers only the clouds it can launch on.
        enabled = session.enabled_clouds()
        if not enabled:
            raise LaunchError(sp.NO_CLOUD_MESSAGE)
        clouds, dropped = sp.enabled_clouds_for(recipe.schedule.clouds, enabled)
        for line in dropped:
            echo(f"placement: dropped {line}")
        schedule = recipe.schedule.model_copy(update={"clouds": clouds})
        return flow.run(recipe.model_copy(update={"schedule": schedule}), session=session)


@dataclass(frozen=True)
class _Flow:
    """The launch after its checks: plan, dry-run or confirm, then the run (one session)."""

    req: LaunchRequest
    kind: Any
    store_url: str
    secret_names: tuple[str, ...]
    secrets: dict[str, str]
    echo: Echo
    confirm: Confirm
    detach: bool

    def run(self, recipe: Recipe, *, session: Any) -> LaunchResult:
        from scheduler.backends import skypilot as sp

        req, kind, store_url, echo = self.req, self.kind, self.store_url, self.echo
        source = _input_once(recipe)
        option, plan = choose_option(recipe, req, source=source)
        if kind.remote:
            clouds = {o.cloud for o in option.offerings}
            warning = sp.store_credentials_warning(store_url, clouds)
            if warning:
                echo(f"warning: {warning}")
        if req.dry_run:
            return _dry_run(recipe, req, option, plan, store_url, self.secret_names, source)
        echo(f"plan: {describe_option(option)}")
        if not req.yes:
            if not sys.stdin.isatty():
                raise UsageError(
                    "launch needs confirmation; pass --yes to launch without asking (CI)"
                )
            what = "managed job" if kind.remote else "local worker"
            if not self.confirm(f"Launch {option.workers} {what}(s)?"):
                raise UsageError("launch not confirmed; nothing was started")

        def workers(store: RunStore) -> Backend:
            if not kind.remote:
                return kind(store, usd_per_hour=req.usd_per_hour, detach=self.detach)  # type: ignore[no-any-return]
            return kind(  # type: ignore[no-any-return]
                store, recipe, option, session,
                secret_names=self.secret_names, secrets=self.secrets,
            )  # fmt: skip

        detach = self.detach or (kind.remote and not req.wait)
        return _launch_into_store(
            req, recipe, store_url, option, plan, echo, workers, detach, source
        )


def _dry_run(
    recipe: Recipe,
    req: LaunchRequest,
    option: LaunchOption,
    plan: dict[str, Any] | None,
    store_url: str,
    secret_names: tuple[str, ...],
    source: Callable[[], Input],
) -> LaunchResult:
    from scheduler.backends import skypilot as sp
    from scheduler.launch._dryrun import UNDERIVED_RUN_ID, render_dry_run

    run_id, problem = _dry_run_id(recipe, req, source)
    jobs = [
        sp.build_worker_job(
            recipe=recipe,
            run_id=run_id or UNDERIVED_RUN_ID,
            store_url=store_url,
            worker_index=i,
            option=option,
            secret_names=secret_names,
        )
        for i in range(option.workers)
    ]
    text = render_dry_run(
        jobs, option=option, plan=plan, store_url=store_url, run_id=run_id,
        run_id_problem=problem, all_documents=req.all_documents,
    )  # fmt: skip
    result = LaunchResult(run_id or "", store_url, req.backend, option, text)
    result.run_id_problem = problem
    return result


def _launch_into_store(
    req: LaunchRequest,
    recipe: Recipe,
    store_url: str,
    option: LaunchOption,
    plan: dict[str, Any] | None,
    echo: Echo,
    open_workers: Callable[[RunStore], Backend],
    detach: bool,
    source: Callable[[], Input],
) -> LaunchResult:
    """Create or resume the run, start its workers, and watch it unless ``detach``."""
    from scheduler.runs import prepare_run

    planned_recipe = recipe
    wanted_id = render_run_id(req.run_id, name=recipe.name) if req.run_id else None
    extra: dict[str, Any] = {"launch": {"option": option.to_json(), "backend": req.backend}}
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
        plan=plan or {"options": [option.to_json()], "chosen": 0},
        rows_per_shard=option.rows_per_shard,
        extra_info=extra,
        # The input the plan counted, unless --incremental narrowed it to new rows.
        source=source() if recipe is planned_recipe else None,
    )
    store.clear_meta("cancel")  # launching again is how a cancelled run resumes
    store.log_event("launched", f"launch: {describe_option(option)}", backend=req.backend)
    echo(f"run {store.run_id} → {store.location}")
    result = LaunchResult(store.run_id, store_url, req.backend, option)
    backend = open_workers(store)
    if not backend.remote and not detach:
        result.outcome = _run_local(store, req, option, started, echo)
        return result
    status = read_status(store)
    # Never pay for a VM that would find nothing to claim: a finished run launches no job,
    # and a resumed one at most one per shard left.
    wanted = min(option.workers, status.shards_total - status.shards_done)
    if not status.state.is_terminal() and wanted > 0:
        backend.start(wanted)
    result.jobs = dict(getattr(backend, "job_ids", {}))
    if result.jobs:
        echo(f"managed jobs: {result.jobs}")
    result.backend_object = backend
    if not detach:
        guard = make_guard(
            store, backend, option, enabled=req.guard, interval_s=req.guard_interval_s
        )
        # A session may read its queue more often (a rehearsal's jobs end in seconds).
        every = float(getattr(getattr(backend, "session", None), "queue_every_s", 60.0))
        watch(store, guard=guard, poll_s=req.poll_s, backend=backend, queue_every_s=every)
        result.outcome = finish(store, backend, started=started, option=option)
    return result


def finish(store: RunStore, backend: Backend, *, started: float, option: LaunchOption) -> Outcome:
    """The outcome of a watched run, with the backend's bill; a finished remote run goes
    into the run history (a local run's driver records its own)."""
    jobs = backend.jobs()
    outcome = outcome_of(
        store,
        started=started,
        option=option,
        workers=backend.launched,
        spend_usd=backend.billed_usd(),
    )
    if outcome.state == "done" and backend.remote:
        from scheduler.runs import record_history

        record_history(
            store, outcome.summary, backend=backend.name, jobs=jobs,
            workers=outcome.workers, spend_usd=outcome.spend_usd,
        )  # fmt: skip
    return outcome


# ---------------------------------------------------------------------- watching


def watch(
    store: RunStore,
    *,
    guard: DeadlineGuard | None,
    poll_s: float = 5.0,
    backend: Backend | None = None,
    stop: threading.Event | None = None,
    queue_every_s: float = 60.0,
) -> RunStatus:
    """Follow a run until it ends, is cancelled, or has no worker left; the guard steps in."""
    stop = stop or threading.Event()
    next_queue = 0.0
    while True:
        status = read_status(store)
        if status.state.is_terminal() or store.read_meta("cancel") is not None:
            return status
        if backend is not None and time.time() >= next_queue:
            next_queue = time.time() + queue_every_s
            if backend.ended():
                store.log_event("stopped", "every managed job has ended with shards left")
                return status
        if guard is not None and guard.due():
            guard.step(status)
        if stop.wait(poll_s):
            return read_status(store)


def _run_local(
    store: RunStore, req: LaunchRequest, option: LaunchOption, started: float, echo: Echo
) -> Outcome:
    from scheduler.backends.local import LocalBackend, LocalPool, run_local

    box: dict[str, DeadlineGuard | None] = {}
    # What actually started, not what was asked for: the pool caps workers at this
    # machine's GPU slices, and the run history must record the run as it ran.
    seen = {"max": 0}

    def on_tick(status: RunStatus, pool: LocalPool) -> None:
        if "guard" not in box:
            backend = LocalBackend(store, usd_per_hour=req.usd_per_hour, pool=pool)
            box["guard"] = make_guard(
                store, backend, option, enabled=req.guard, interval_s=req.guard_interval_s,
                usd_per_hour=req.usd_per_hour,
            )  # fmt: skip
        guard = box["guard"]
        if guard is not None and guard.due():
            d = guard.step(status)
            if d.action in ("add", "over_budget", "refused"):
                echo(f"guard: {d.reason}")
        seen["max"] = max(seen["max"], len(pool.procs))

    run_local(
        store,
        workers=option.workers,
        progress=req.progress,
        poll_s=min(req.poll_s, 1.0),
        usd_per_hour=req.usd_per_hour,
        on_tick=on_tick,
    )
    from scheduler.runs import record_history

    outcome = outcome_of(store, started=started, option=option, workers=seen["max"])
    # None (no worker started: the run was already done) lets the heartbeats say.
    record_history(store, outcome.summary, backend="local", workers=seen["max"] or None)
    return outcome


def outcome_of(
    store: RunStore,
    *,
    started: float,
    option: LaunchOption,
    workers: int,
    spend_usd: float | None = None,
) -> Outcome:
    """The :class:`Outcome` of a run now (summary, deadline, budget, guard decisions)."""
    from scheduler.runs import summarize

    info = store.run_info()
    summary = summarize(store, wall_s=time.time() - started)
    if spend_usd is not None:
        # The backend's bill prices every life where it ran; the heartbeats' sum does not
        # see provisioning, and a larger figure is not a safer one (it can fail a budget).
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
        if e.get("kind") == "guard"
        and e.get("action") in ("add", "add_failed", "over_budget", "refused")
    ]
    return Outcome(
        summary=summary,
        finished_at=finished_at,
        deadline_at=info.deadline_at,
        budget_usd=info.budget_usd,
        planned_cost_usd=option.cost_usd,
        planned_hours=option.hours,
        backend=info.backend,
        workers=workers,
        events=events,
    )
