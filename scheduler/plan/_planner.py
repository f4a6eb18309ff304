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
from dataclasses import replace
from typing import TYPE_CHECKING

from scheduler.plan._candidates import (
    STARTUP_SIGMA,
    Candidate,
    build_candidates,
    rows_per_shard_for,
)
from scheduler.plan._market import Market
from scheduler.plan._measure import measuring_saves
from scheduler.plan._model import (
    Evaluation,
    evaluate,
    p_on_time,
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
    "STARTUP_SIGMA",
    "OfferingChoice",
    "Plan",
    "PlanOption",
    "PlanRequest",
    "format_duration",
    "plan_recipe",
    "plan_workload",
    "rows_per_shard_for",
]


def _fewest_workers(c: Candidate, req: PlanRequest) -> tuple[Evaluation, bool]:
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


def _option(c: Candidate, ev: Evaluation, on_time: bool, req: PlanRequest) -> PlanOption:
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
    candidates = build_candidates(workload, req, market, warnings, no_figure)
    options: list[PlanOption] = []
    for c in candidates:
        ev, on_time = _fewest_workers(c, req)
        options.append(_option(c, ev, on_time, req))
    options = sorted(_mark_pareto(options), key=_rank_key)
    chosen = 0 if options and options[0].feasible else None
    if chosen is not None:
        reason = _why_chosen(options, req)
        hint = measuring_saves(
            candidates, options[0], req, lambda c: _option(c, *_fewest_workers(c, req), req)
        )
        warnings.extend([hint] if hint else [])
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
