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

Run ids may be templates for recurring jobs: ``{date}`` (2026-11-23), ``{time}`` (0215),
``{datetime}``, ``{name}`` (the recipe's name) and any strftime code (``%Y%m%d``), in UTC.
"""

from __future__ import annotations

import socket
import sys
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

from scheduler.errors import PlanError, UsageError
from scheduler.guard import DeadlineGuard, GuardConfig
from scheduler.progress import RunStatus, read_status
from scheduler.recipe import Recipe, load_recipe, resolve_input_path
from scheduler.store import RunStore, validate_run_id
from scheduler.summary import Outcome

__all__ = ["LaunchRequest", "LaunchResult", "launch", "render_run_id", "watch"]

Echo = Callable[[str], None]
Confirm = Callable[[str], bool]


@dataclass(frozen=True)
class LaunchRequest:
    """Everything ``skybatch launch`` was asked to do."""

    recipe_path: str
    backend: str = "skypilot"
    deadline_s: float | None = None
    budget_usd: float | None = None
    plan_index: int | None = None
    gpu: str | None = None
    workers: int | None = None
    dry_run: bool = False
    wait: bool = False
    yes: bool = False
    run_id: str | None = None
    store_url: str | None = None
    summary_md: str | None = None
    incremental: bool = False
    secrets: tuple[str, ...] = ()
    guard: bool = True
    guard_interval_s: float = 180.0
    poll_s: float = 2.0
    usd_per_hour: float = 0.0  # local workers: a notional price, for budgets and tests
    progress: bool = True


@dataclass
class LaunchResult:
    """What a launch did."""

    run_id: str
    store: str
    backend: str
    option: dict[str, Any]
    dry_run_yaml: str | None = None
    jobs: dict[str, int] = field(default_factory=dict)
    outcome: Outcome | None = None

    def to_json(self) -> dict[str, Any]:
        """The ``launch --json`` object."""
        if self.outcome is not None:
            return {**self.outcome.to_json(), "jobs": self.jobs, "plan": self.option}
        return {
            "run_id": self.run_id,
            "store": self.store,
            "backend": self.backend,
            "state": "dry-run" if self.dry_run_yaml is not None else "launched",
            "jobs": self.jobs,
            "plan": self.option,
        }


# ---------------------------------------------------------------------- run ids


def render_run_id(template: str, *, name: str, now: datetime | None = None) -> str:
    """Expand a run-id template (see the module docstring) and validate the result."""
    now = now or datetime.now(timezone.utc)
    fields = {
        "date": now.strftime("%Y-%m-%d"),
        "time": now.strftime("%H%M"),
        "datetime": now.strftime("%Y%m%dT%H%M"),
        "name": name,
    }
    try:
        text = template.format(**fields) if "{" in template else template
    except (KeyError, IndexError, ValueError) as e:
        raise UsageError(
            f"--run-id {template!r}: unknown field {e}; use {{date}}, {{time}}, "
            "{datetime}, {name} or strftime codes such as %Y%m%d"
        ) from e
    if "%" in text:
        text = now.strftime(text)
    return validate_run_id(text)


# ---------------------------------------------------------------------- choosing what to run


def _local_option(workers: int, usd_per_hour: float) -> dict[str, Any]:
    return {
        "accelerator": "local",
        "accelerators_per_worker": 1,
        "spot": False,
        "workers": workers,
        "hours": None,
        "cost_usd": None,
        "p_on_time": None,
        "offerings": [
            {
                "cloud": "local",
                "region": socket.gethostname(),
                "instance_type": "this machine",
                "usd_per_hour": usd_per_hour,
            }
        ],
    }


def _manual_option(recipe: Recipe, gpu: str, workers: int) -> dict[str, Any]:
    """``--gpu G --workers N``: the cheapest trusted offerings of G as candidates."""
    import pricing

    acc = pricing.normalize_accelerator(gpu)
    spot = recipe.schedule.spot != "never"
    offers = pricing.list_offerings(
        accelerators=[acc],
        clouds=recipe.schedule.clouds,
        regions=recipe.schedule.regions,
    )
    priced = sorted(
        ((o.price(spot), o) for o in offers if o.price(spot) is not None),
        key=lambda p: (p[1].accelerator_count, p[0]),
    )
    if not priced and spot and recipe.schedule.spot == "prefer":
        spot = False
        priced = sorted(
            ((o.price(False), o) for o in offers if o.price(False) is not None),
            key=lambda p: (p[1].accelerator_count, p[0]),
        )
    if not priced:
        raise PlanError(
            f"--gpu {gpu}: no trusted {'spot ' if spot else ''}price for {acc} in the catalog "
            "for this recipe's clouds/regions; see `skybatch pricing show`"
        )
    count = priced[0][1].accelerator_count
    offerings = [
        {
            "cloud": o.cloud,
            "region": o.region,
            "instance_type": o.instance_type,
            "usd_per_hour": float(price or 0.0),
        }
        for price, o in priced
        if o.accelerator_count == count
    ][:3]
    return {
        "accelerator": acc,
        "accelerators_per_worker": count,
        "spot": spot,
        "workers": workers,
        "hours": None,
        "cost_usd": None,
        "p_on_time": None,
        "offerings": offerings,
    }


def choose_option(
    recipe: Recipe, req: LaunchRequest
) -> tuple[dict[str, Any], dict[str, Any] | None]:
    """The option to launch (plain data) and the whole plan when the planner made it."""
    if req.backend == "local":
        return _local_option(req.workers or 1, req.usd_per_hour), None
    if req.gpu:
        if not req.workers:
            raise UsageError("--gpu needs --workers N (how many workers of that GPU)")
        return _manual_option(recipe, req.gpu, req.workers), None
    from scheduler.planner import plan_recipe

    plan = plan_recipe(recipe, deadline_s=req.deadline_s, budget_usd=req.budget_usd)
    data = plan.to_json()
    if req.plan_index is not None:
        if not 0 <= req.plan_index < len(plan.options):
            raise UsageError(
                f"--plan {req.plan_index}: the plan has options 0..{len(plan.options) - 1}; "
                "see `skybatch plan RECIPE`"
            )
        option = plan.options[req.plan_index].to_json()
    else:
        option = plan.require().to_json()
    if req.workers:
        option = {**option, "workers": req.workers}
    return option, data


def describe_option(option: Mapping[str, Any]) -> str:
    """``3× H100 spot on aws/us-east-1 +2 · 2.1 h · $41.00 · P(on time) 0.97``."""
    gpu = option["accelerator"]
    if int(option.get("accelerators_per_worker") or 1) > 1:
        gpu = f"({gpu}×{option['accelerators_per_worker']})"
    offs = option.get("offerings") or []
    where = f"{offs[0]['cloud']}/{offs[0]['region']}" if offs else "anywhere"
    if len(offs) > 1:
        where += f" +{len(offs) - 1}"
    parts = [
        f"{option['workers']}× {gpu} {'spot' if option.get('spot') else 'on-demand'} on {where}"
    ]
    if option.get("hours") is not None:
        parts.append(f"{float(option['hours']):.1f} h")
    if option.get("cost_usd") is not None:
        parts.append(f"${float(option['cost_usd']):,.2f}")
    if option.get("p_on_time") is not None:
        parts.append(f"P(on time) {float(option['p_on_time']):.2f}")
    return " · ".join(parts)


def _with_schedule(recipe: Recipe, req: LaunchRequest) -> Recipe:
    """The recipe with ``--deadline``/``--budget`` applied (they do not change the run id)."""
    update: dict[str, Any] = {}
    if req.deadline_s is not None:
        update["deadline"] = req.deadline_s
    if req.budget_usd is not None:
        update["budget_usd"] = req.budget_usd
    if not update:
        return recipe
    return recipe.model_copy(update={"schedule": recipe.schedule.model_copy(update=update)})


# ---------------------------------------------------------------------- the flow


def _dry_run_id(recipe: Recipe, req: LaunchRequest) -> str:
    if req.run_id:
        return render_run_id(req.run_id, name=recipe.name)
    # The real id needs the input's fingerprint; a bucket may be out of reach from here.
    try:
        from scheduler.inputs import open_input
        from scheduler.store import make_run_id

        source = open_input(recipe.input, resolve_input_path(recipe))
        return make_run_id(
            recipe.name,
            fingerprint=source.fingerprint(),
            model=recipe.model.name,
            revision=recipe.model.revision,
            recipe_digest=recipe.digest(),
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
    from scheduler.runs import resolve_store_url

    if req.backend not in ("local", "skypilot"):
        raise UsageError(f"--backend {req.backend!r}: use local or skypilot")
    recipe = _with_schedule(load_recipe(req.recipe_path), req)
    store_url = resolve_store_url(recipe, req.store_url)
    cloud = req.backend == "skypilot"
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
        from scheduler.incremental import incremental_recipe

        recipe, inc = incremental_recipe(recipe, store_url=store_url, run_id=wanted_id)
        extra["incremental"] = inc
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
        guard = _guard(store, scaler, option, req, cloud=True)
        watch(store, guard=guard, poll_s=req.poll_s, scaler=scaler)
        from scheduler.backends.skypilot import job_statuses

        # SkyPilot bills from submission (provisioning and recoveries included), which a
        # recovered worker's fresh heartbeat does not show.
        billed = sum(float(d["spend_usd"]) for d in job_statuses(store, session=session))
        result.outcome = outcome_of(
            store, started=started, option=option, workers=scaler.total, spend_usd=billed
        )
    return result


class SkyScaler:
    """Adds workers to a run as SkyPilot managed jobs (the guard's lever in the cloud)."""

    def __init__(
        self,
        store: RunStore,
        recipe: Recipe,
        option: Mapping[str, Any],
        secret_names: tuple[str, ...],
        secrets: Mapping[str, str],
        session: Any,
    ) -> None:
        self.store = store
        self.recipe = recipe
        self.option = dict(option)
        self.secret_names = secret_names
        self.secrets = dict(secrets)
        self.session = session
        doc = store.read_meta("jobs") or {}
        self.jobs: dict[str, int] = {
            w: int(j["job_id"]) for w, j in (doc.get("workers") or {}).items()
        }
        self.states: dict[str, str] = {}

    @property
    def total(self) -> int:
        """Workers launched for this run, ever."""
        return len(self.jobs)

    def alive(self) -> int:
        """Jobs SkyPilot still runs (from the last queue read)."""
        if not self.states:
            return len(self.jobs)
        from scheduler.backends.skypilot import JobState

        return sum(
            1 for w in self.jobs if not JobState(w, 0, self.states.get(w, "PENDING")).is_terminal
        )

    def alive_or_unknown(self) -> int:
        """Jobs of this run SkyPilot still runs (a resumed launch only adds what is missing)."""
        if not self.jobs:
            return 0
        self.refresh()
        return self.alive()

    def refresh(self) -> None:
        """Read the managed-job queue for this run's jobs."""
        from scheduler.backends.skypilot import job_statuses

        self.states = {
            str(d["worker_id"]): str(d["status"])
            for d in job_statuses(self.jobs, session=self.session)
        }

    def add(self, k: int, *, spot: bool) -> int:
        """Launch ``k`` more worker jobs; record their ids in the store and DuckDB."""
        from scheduler.backends import skypilot as sp

        option = {**self.option, "spot": spot}
        if not spot and self.option.get("spot"):
            option["offerings"] = _ondemand_offerings(self.option)
        start = len(self.jobs)
        jobs = [
            sp.build_worker_job(
                recipe=self.recipe,
                run_id=self.store.run_id,
                store_url=self.store.url,
                worker_index=start + i,
                option=option,
                secret_names=self.secret_names,
            )
            for i in range(k)
        ]
        ids = self.session.launch(jobs, self.secrets)
        record_jobs(self.store, jobs, ids, spot=spot)
        self.jobs.update(ids)
        return len(ids)


def _ondemand_offerings(option: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The option's offerings priced on demand (from the catalog when it knows them)."""
    out = []
    try:
        import pricing

        for off in option.get("offerings") or []:
            match = [
                o
                for o in pricing.list_offerings(
                    accelerators=[str(option["accelerator"])],
                    clouds=[off["cloud"]],
                    regions=[off["region"]],
                )
                if o.instance_type == off["instance_type"] and o.price(False) is not None
            ]
            price = match[0].price(False) if match else None
            out.append({**off, "usd_per_hour": price if price is not None else off["usd_per_hour"]})
    except Exception:  # prices are advisory here; the plan's figures still apply
        return list(option.get("offerings") or [])
    return out


def record_jobs(store: RunStore, jobs: list[Any], ids: Mapping[str, int], *, spot: bool) -> None:
    """Record launched job ids with the run (meta ``jobs``) and in DuckDB's ``jobs`` table."""
    doc = store.read_meta("jobs") or {"backend": "skypilot", "workers": {}}
    now = datetime.now(timezone.utc).isoformat()
    for job in jobs:
        if job.worker_id in ids:
            doc["workers"][job.worker_id] = {
                "job_id": ids[job.worker_id],
                "worker_index": job.worker_index,
                "name": job.name,
                "spot": spot,
                "launched_at": now,
            }
    store.write_meta("jobs", doc)
    try:
        import pricing

        for job in jobs:
            if job.worker_id in ids:
                pricing.record_job(
                    run_id=store.run_id,
                    job_id=str(ids[job.worker_id]),
                    worker_index=job.worker_index,
                    cloud=None,
                    region=None,
                )
    except Exception as e:  # the store copy is the one that counts
        store.log_event("note", f"job ids not recorded in DuckDB: {e}")


# ---------------------------------------------------------------------- watching


class LocalScaler:
    """The guard's lever on this machine: a :class:`~scheduler.backends.local.LocalPool`."""

    def __init__(
        self, pool: Any, *, spot_usd_per_hour: float, ondemand_usd_per_hour: float
    ) -> None:
        self.pool = pool
        self.spot_usd_per_hour = spot_usd_per_hour
        self.ondemand_usd_per_hour = ondemand_usd_per_hour

    def alive(self) -> int:
        return int(self.pool.alive())

    def add(self, k: int, *, spot: bool) -> int:
        price = self.spot_usd_per_hour if spot else self.ondemand_usd_per_hour
        return len(self.pool.add(k, usd_per_hour=price))


def _guard(
    store: RunStore, scaler: Any, option: Mapping[str, Any], req: LaunchRequest, *, cloud: bool
) -> DeadlineGuard | None:
    info = store.read_run_info()
    deadline = info.get("deadline_at")
    if not req.guard or not deadline:
        return None
    deadline_at = datetime.fromisoformat(str(deadline)).timestamp()
    recipe = info.get("recipe") or {}
    schedule = recipe.get("schedule") or {}
    offs = option.get("offerings") or [{}]
    price = float(offs[0].get("usd_per_hour") or req.usd_per_hour or 0.0)
    if cloud:
        ondemand = float((_ondemand_offerings(option) or [{}])[0].get("usd_per_hour") or price)
        try:
            import pricing

            startup = float(pricing.startup_s(str(offs[0].get("cloud") or "aws")))
        except Exception:
            startup = 300.0
        stretch = 1800.0
    else:
        ondemand, startup = price, 3.0
        stretch = min(1800.0, 0.25 * max(0.0, deadline_at - time.time()))
    cfg = GuardConfig(
        deadline_at=deadline_at,
        budget_usd=schedule.get("budget_usd"),
        interval_s=req.guard_interval_s,
        max_workers=int(schedule.get("max_workers") or 16),
        spot_usd_per_hour=price,
        ondemand_usd_per_hour=ondemand,
        startup_s=startup,
        last_stretch_s=stretch,
        spot_allowed=schedule.get("spot", "prefer") != "never",
    )
    return DeadlineGuard(store, scaler, cfg)


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
            box["guard"] = _guard(store, scaler, option, req, cloud=False)
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
    return outcome_of(store, started=started, option=option, workers=seen["max"])


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
        stamps = [m.committed_at for m in store.markers().values() if m.committed_at]
        if stamps:
            finished_at = max(datetime.fromisoformat(t).timestamp() for t in stamps)
    events = [
        f"{e.get('ts', '')[11:19]} {e.get('action')}: {e.get('message')}"
        for e in store.events()
        if e.get("kind") == "guard" and e.get("action") in ("add", "over_budget")
    ]
    return Outcome(
        summary=summary,
        finished_at=finished_at,
        deadline_at=datetime.fromisoformat(str(deadline)).timestamp() if deadline else None,
        budget_usd=schedule.get("budget_usd"),
        planned_cost_usd=option.get("cost_usd"),
        planned_hours=option.get("hours"),
        backend=str(info.get("backend", "local")),
        workers=workers,
        events=events,
    )
