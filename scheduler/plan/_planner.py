"""The deadline planner: which GPU, where, spot or not, how many workers, how long, how much.

For every candidate — accelerator type × every GPU count an instance of it offers × spot or
on demand — the planner takes the cheapest few trusted offerings of that count across the
allowed clouds and regions (SkyPilot gets them all as candidates; the cheapest one prices
the plan) and finds the **fewest workers** that finish by the deadline with P ≥ ``p_target``,
using
the analytic model of :mod:`scheduler.plan._model` (start-up, model load, spot preemptions
with recovery and one shard redone, shard tail). Fewer workers always cost less (each one
pays its own start-up), and P(on time) grows with workers, so a binary search finds it.

A worker on an ``n``-GPU instance runs ``n // tp`` engine replicas side by side, each with
tensor parallelism ``tp`` (the fewest GPUs that hold the model and its KV cache at the
workload's context) and pinned to its own GPUs: an 8-GPU box serving an 8B model runs
8 replicas, one serving a 70B model in BF16 on H200s runs 4 of 2 GPUs each. A worker's
throughput is the replicas' sum; GPUs left over by an uneven split idle.

``schedule.spot``: ``require`` plans spot only, ``never`` on demand only, ``prefer`` both,
and spot wins wherever it is cheaper once its preemptions (recovery, redone work, the
workers added to keep P(on time)) are priced in. An offering without a trusted price for
the mode (``Offering.price(spot)`` is None, or flagged) is never a candidate.

Options are ranked by expected cost, on-time and within-budget ones first; the cheapest of
those is chosen. The cost/finish-time Pareto frontier is marked. When nothing fits, the
plan says why in one line (the cheapest plan needs X h; the fastest costs $Y) and
:meth:`Plan.require` raises it as a :class:`~scheduler.errors.PlanError`.

Precedence of the settings: ``--deadline``/``--budget`` flags → recipe ``schedule`` →
defaults (deadline 24 h with a warning, P target 0.95). ``SKYBATCH_MAX_PRICE_AGE_DAYS``
(default 30) is the age past which a plan warns that prices are stale.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

from scheduler.plan._market import EstimateLike, Market, OfferingLike
from scheduler.plan._model import (
    CandidateModel,
    Evaluation,
    evaluate,
    p_on_time,
    sigma_from_band,
)
from scheduler.plan._types import (
    DEFAULT_DEADLINE_S,
    OfferingChoice,
    Plan,
    PlanOption,
    PlanRequest,
    format_duration,
)
from scheduler.plan._types import money as _money
from scheduler.plan._workload import Workload
from scheduler.settings import load_settings

if TYPE_CHECKING:
    from scheduler.inputs import Input
    from scheduler.recipe import Recipe

__all__ = [
    "DEFAULT_DEADLINE_S",
    "OfferingChoice",
    "Plan",
    "PlanOption",
    "PlanRequest",
    "format_duration",
    "plan_recipe",
    "plan_workload",
]

SHARD_TARGET_S = 300.0  # about five minutes of work per shard
OFFERINGS_PER_OPTION = 3
STARTUP_SIGMA = 0.35  # a worker's start-up varies by about a third around its mean


@dataclass(frozen=True)
class _ReplicaEstimate:
    """A worker's throughput: ``replicas`` engines of one per-replica estimate."""

    rows_per_s: float
    low_rows_per_s: float
    high_rows_per_s: float
    kind: str
    source: str

    @classmethod
    def of(cls, est: EstimateLike, replicas: int, tp: int, acc: str) -> EstimateLike:
        if replicas == 1:
            return est
        return cls(
            rows_per_s=est.rows_per_s * replicas,
            low_rows_per_s=est.low_rows_per_s * replicas,
            high_rows_per_s=est.high_rows_per_s * replicas,
            kind=est.kind,
            source=f"{replicas} replicas of {acc}×{tp}, each: {est.source}",
        )


@dataclass
class _Candidate:
    accelerator: str
    count: int
    tp: int  # GPUs per engine replica
    spot: bool
    offerings: tuple[OfferingChoice, ...]
    estimate: EstimateLike
    model: CandidateModel
    cap: int  # most workers allowed


def _nice(n: float) -> int:
    """Round to two significant digits (rows_per_shard is read by people)."""
    if n < 100:
        return max(1, round(n))
    scale = 10 ** (int(math.log10(n)) - 1)
    return int(round(n / scale) * scale)


def rows_per_shard_for(rows: int, rows_per_s: float, *, cap: int, fixed: int | None) -> int:
    """About five minutes of work, but at least one shard per allowed worker."""
    if fixed is not None:
        return fixed
    per_worker = max(1, math.ceil(rows / max(cap, 1)))
    return max(1, min(_nice(rows_per_s * SHARD_TARGET_S), per_worker))


def _spot_modes(policy: str) -> tuple[bool, ...]:
    return {"require": (True,), "never": (False,)}.get(policy, (True, False))


def _build_candidates(
    workload: Workload,
    req: PlanRequest,
    market: Market,
    warnings: list[str],
    no_figure: dict[str, str],
) -> list[_Candidate]:
    from pricing import SPOT_ONLY_FLAGS  # a constant; pricing imports no DuckDB until used

    offerings = market.offerings(
        accelerators=req.accelerators, clouds=req.clouds, regions=req.regions
    )
    by_acc: dict[str, list[OfferingLike]] = {}
    for o in offerings:
        # A row with any flag is left out whole: no plan uses a flagged offering, even
        # on its other price that sanitising kept (pricing show still lists both). A rule
        # that doubts only the spot price (a placeholder) leaves on-demand usable.
        if not set(o.flags) - SPOT_ONLY_FLAGS:
            by_acc.setdefault(o.accelerator, []).append(o)
    cap = max(1, min(req.max_workers, workload.rows))
    cannot_hold: list[str] = []
    estimates: dict[tuple[str, int], EstimateLike | None] = {}
    out: list[_Candidate] = []
    for acc in sorted(by_acc):
        need = market.gpus_needed(
            model=req.model, accelerator=acc, context_tokens=workload.context_tokens
        )
        if need is None:
            cannot_hold.append(acc)
            continue
        for spot in _spot_modes(req.spot):
            by_count: dict[int, list[tuple[float, OfferingLike]]] = {}
            for o in by_acc[acc]:
                p = o.price(spot)
                if o.accelerator_count >= need and p is not None and p > 0:
                    by_count.setdefault(o.accelerator_count, []).append((p, o))
            for count in sorted(by_count):
                same = sorted(
                    by_count[count],
                    key=lambda po: (po[0], po[1].cloud, po[1].region, po[1].instance_type),
                )
                if (acc, need) not in estimates:
                    estimates[(acc, need)] = _estimate(
                        workload, req, market, acc, need, warnings, no_figure
                    )
                one = estimates[(acc, need)]
                if one is None:
                    continue
                est = _ReplicaEstimate.of(one, count // need, need, acc)
                chosen = tuple(
                    OfferingChoice(o.cloud, o.region, o.instance_type, p)
                    for p, o in same[:OFFERINGS_PER_OPTION]
                )
                out.append(
                    _Candidate(
                        accelerator=acc,
                        count=count,
                        tp=need,
                        spot=spot,
                        offerings=chosen,
                        estimate=est,
                        model=(
                            m := _candidate_model(
                                workload, req, market, est, chosen[0], acc, spot, cap
                            )
                        ),
                        cap=max(1, min(cap, m.useful_workers)),
                    )
                )
    asked = {a.upper() for a in req.accelerators or ()}
    cannot_hold = [a for a in cannot_hold if a.upper() in asked]  # silent unless asked for
    if cannot_hold:
        warnings.append(
            f"{', '.join(cannot_hold)}: cannot hold {req.model} with up to 8 GPUs per worker"
        )
    return out


def _estimate(
    workload: Workload,
    req: PlanRequest,
    market: Market,
    acc: str,
    count: int,
    warnings: list[str],
    no_figure: dict[str, str],
) -> EstimateLike | None:
    from scheduler.errors import SkybatchError

    try:
        est = market.estimate(
            model=req.model,
            engine=req.engine,
            task=req.task,
            accelerator=acc,
            count=count,
            input_tokens=workload.input_tokens_per_row,
            output_tokens=workload.output_tokens_per_row,
        )
    except SkybatchError as e:
        warnings.append(f"{acc}×{count}: no throughput estimate ({e})")
        no_figure.setdefault(acc, str(e))
        return None
    return est if est.rows_per_s > 0 else None


def _candidate_model(
    workload: Workload,
    req: PlanRequest,
    market: Market,
    est: EstimateLike,
    primary: OfferingChoice,
    accelerator: str,
    spot: bool,
    cap: int,
) -> CandidateModel:
    rps = rows_per_shard_for(workload.rows, est.rows_per_s, cap=cap, fixed=req.rows_per_shard)
    cloud = primary.cloud
    return CandidateModel(
        rows=workload.rows,
        rows_per_s=est.rows_per_s,
        rate_sigma=sigma_from_band(
            mid=est.rows_per_s, low=est.low_rows_per_s, high=est.high_rows_per_s
        ),
        startup_s=market.startup_s(cloud) + market.model_load_s(req.model),
        startup_sigma=STARTUP_SIGMA,
        preemptions_per_hour=(
            market.preemption_rate_per_hour(cloud, accelerator, primary.region) if spot else 0.0
        ),
        usd_per_hour=primary.usd_per_hour,
        rows_per_shard=rps,
        capacity_wait_s=market.capacity_wait_s(cloud, accelerator) if spot else 0.0,
        billing_increment_s=market.billing_increment_s(cloud),
        fixed_usd=egress_usd(workload, req, market, cloud),
    )


def egress_usd(workload: Workload, req: PlanRequest, market: Market, cloud: str) -> float:
    """Input read from, and outputs written to, a cloud other than the workers'."""
    usd = 0.0
    if req.input_cloud and req.input_cloud != cloud:
        usd += workload.input_gb * market.egress_usd_per_gb(req.input_cloud)
    if req.store_cloud and req.store_cloud != cloud:
        usd += workload.output_gb * market.egress_usd_per_gb(cloud)
    return usd


def _fewest_workers(c: _Candidate, req: PlanRequest) -> tuple[Evaluation, bool]:
    """The fewest workers meeting the target, or the most allowed if none does.

    P(on time) rises with workers, so the answer is found by galloping from a first guess
    (the workers that fit the median work into the deadline) and bisecting the bracket:
    exact, and a few evaluations where plain bisection over ``1..cap`` needs ~log2(cap).
    """
    m, deadline, target = c.model, req.deadline_s, req.p_target

    def meets(w: int) -> bool:
        return p_on_time(m, w, deadline) >= target

    usable_s = max(1.0, deadline - m.effective_startup_s - m.shard_s)
    guess = max(1, min(c.cap, math.ceil(m.mean_work_s / usable_s)))
    if meets(guess):
        hi, step = guess, 1  # gallop down to a count that misses, then bisect
        lo = guess - step
        while lo >= 1 and meets(lo):
            hi, step = lo, step * 2
            lo = hi - step
        lo = max(lo + 1, 1)
    else:
        lo, step = guess + 1, 1  # gallop up to a count that meets
        hi = min(c.cap, guess + step)
        while not meets(hi):
            if hi == c.cap:
                return evaluate(m, c.cap, deadline), False
            lo, step = hi + 1, step * 2
            hi = min(c.cap, hi + step)
    while lo < hi:  # invariant: hi meets the target, lo - 1 does not (or is 0)
        mid = (lo + hi) // 2
        if meets(mid):
            hi = mid
        else:
            lo = mid + 1
    return evaluate(m, hi, deadline), True


def _option(c: _Candidate, ev: Evaluation, on_time: bool, req: PlanRequest) -> PlanOption:
    return PlanOption(
        accelerator=c.accelerator,
        accelerators_per_worker=c.count,
        tensor_parallel_size=c.tp,
        replicas_per_worker=c.count // c.tp,
        spot=c.spot,
        workers=ev.workers,
        hours=ev.hours,
        cost_usd=ev.cost_usd,
        p_on_time=ev.p_on_time,
        throughput_source=c.estimate.kind,
        throughput_detail=c.estimate.source,
        rows_per_s=c.estimate.rows_per_s,
        rows_per_shard=c.model.rows_per_shard,
        offerings=c.offerings,
        on_time=on_time,
        within_budget=req.budget_usd is None or ev.cost_usd <= req.budget_usd,
        egress_usd=c.model.fixed_usd,
        model=c.model,
    )


def _rank_key(o: PlanOption) -> tuple[bool, float, float, str, int, bool]:
    return (not o.feasible, o.cost_usd, o.hours, o.accelerator, o.accelerators_per_worker, o.spot)


def _mark_pareto(options: Sequence[PlanOption]) -> list[PlanOption]:
    """Flag the options no other option beats on both cost and finish time."""
    out = []
    for o in options:
        dominated = any(
            (p.cost_usd <= o.cost_usd and p.hours <= o.hours)
            and (p.cost_usd < o.cost_usd or p.hours < o.hours)
            for p in options
        )
        out.append(replace(o, pareto=not dominated))
    return out


def plan_workload(workload: Workload, req: PlanRequest, market: Market) -> Plan:
    """Plan ``workload`` under ``req`` with the figures ``market`` gives."""
    warnings: list[str] = []
    no_figure: dict[str, str] = {}  # accelerator -> why it has no throughput estimate
    candidates = _build_candidates(workload, req, market, warnings, no_figure)
    options: list[PlanOption] = []
    for c in candidates:
        ev, on_time = _fewest_workers(c, req)
        options.append(_option(c, ev, on_time, req))
    options = sorted(_mark_pareto(options), key=_rank_key)
    chosen = 0 if options and options[0].feasible else None
    if chosen is not None:
        reason = _why_chosen(options, req)
    else:
        # One worker each: the cheapest way to run a candidate (only to say why not).
        slowest = []
        for c in candidates:
            one = evaluate(c.model, 1, req.deadline_s)
            slowest.append(_option(c, one, one.p_on_time >= req.p_target, req))
        reason = _why_none(options, slowest, req, no_figure)
    warnings.extend(_general_warnings(workload, req, market))
    return Plan(
        workload=workload,
        request=req,
        options=tuple(options),
        chosen=chosen,
        reason=reason,
        warnings=tuple(warnings),
    )


def _general_warnings(workload: Workload, req: PlanRequest, market: Market) -> list[str]:
    out = []
    if req.deadline_defaulted:
        out.append(
            f"no deadline set (schedule.deadline or --deadline): planned for "
            f"{format_duration(req.deadline_s)}"
        )
    if workload.input_tokens_source.startswith("approximation"):
        out.append(f"input tokens: {workload.input_tokens_source}")
    max_age = load_settings().max_price_age_days
    age = market.prices_age_days()
    if age is not None and age > max_age:
        out.append(
            f"prices are {age:.0f} days old (older than {max_age:g}); "
            "`skybatch pricing refresh` updates them"
        )
    return out


def _why_chosen(options: Sequence[PlanOption], req: PlanRequest) -> str:
    best = options[0]
    text = (
        f"{best.describe()} on {best.where()} is the cheapest plan that finishes within "
        f"{format_duration(req.deadline_s)} with P ≥ {req.p_target:g}"
        f"{f' and within the {_money(req.budget_usd)} budget' if req.budget_usd else ''}: "
        f"about {best.hours:.1f} h for {_money(best.cost_usd)}"
    )
    runner = next((o for o in options[1:] if o.feasible), None)
    if runner is not None:
        text += f" (next: {runner.describe()} at {_money(runner.cost_usd)})"
    return text


def _why_none(
    options: Sequence[PlanOption],
    slowest: Sequence[PlanOption],
    req: PlanRequest,
    no_figure: dict[str, str],
) -> str:
    deadline = format_duration(req.deadline_s)
    if not options:
        where = ", ".join(req.accelerators or ()) or "any accelerator"
        clouds = ", ".join(req.clouds or ()) or "any cloud"
        if no_figure:
            gpus = ", ".join(sorted(no_figure))
            return (
                f"no throughput figure for {req.model} on {gpus} ({no_figure[sorted(no_figure)[0]]}); "
                f"measure one with `skybatch bench --model {req.model} --engine {req.engine}` "
                "on one of those GPUs, and plan again"
            )
        return (
            f"no offering can run {req.model} ({where} on {clouds}, spot: {req.spot}); "
            "widen schedule.accelerators / clouds / regions, or see `skybatch pricing show`"
        )
    cheapest = min(slowest, key=lambda o: (o.cost_usd, o.hours))
    cheap_text = (
        f"the cheapest plan needs {cheapest.hours:.1f} h "
        f"({cheapest.describe()}, {_money(cheapest.cost_usd)})"
    )
    on_time = [o for o in options if o.on_time]
    if not on_time:
        fastest = min(options, key=lambda o: (o.hours, o.cost_usd))
        return (
            f"no plan finishes within {deadline} with P ≥ {req.p_target:g} on at most "
            f"{req.max_workers} workers: {cheap_text}; the fastest costs "
            f"{_money(fastest.cost_usd)} and needs {fastest.hours:.1f} h ({fastest.describe()}); "
            "raise the deadline or schedule.max_workers"
        )
    budget = _money(req.budget_usd or 0.0)
    best = min(on_time, key=lambda o: o.cost_usd)
    return (
        f"no plan finishes within {deadline} for the {budget} budget: {cheap_text}; "
        f"finishing on time costs at least {_money(best.cost_usd)} ({best.describe()}); "
        "raise the budget or the deadline"
    )


def plan_recipe(
    recipe: Recipe,
    *,
    deadline_s: float | None = None,
    budget_usd: float | None = None,
    workload: Workload | None = None,
    market: Market | None = None,
    source: Callable[[], Input] | None = None,
) -> Plan:
    """Measure the workload (unless given) and plan ``recipe`` against the catalog.

    ``source`` opens the input once for the whole launch (see ``measure_workload``).
    """
    from scheduler.plan._workload import measure_workload

    load = workload if workload is not None else measure_workload(recipe, source=source)
    req = PlanRequest.from_recipe(recipe, deadline_s=deadline_s, budget_usd=budget_usd)
    if market is None:
        from scheduler.plan._market import catalog_market

        catalog = catalog_market()
        with catalog.batch():
            return plan_workload(load, req, catalog)
    return plan_workload(load, req, market)
