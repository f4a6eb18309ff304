"""What measuring the throughput would save: the plan again with a measured figure's band.

A throughput with no figure behind it (kind ``estimated``: the roofline alone) carries a
wide band (×0.42–2.15 for an encoder under the torch engine, fitted to published figures),
and P(on time) ≥ target makes the plan buy workers for its low end. On a short job every
extra worker is mostly start-up: ``benchmarks/sim_explain.py`` shows the 30-minute
embed-50m plan starting 8 H100s where hindsight needs 4, and the same planner with a
measured figure's band (±15 %, same median) starting 4 — 1.39× hindsight becomes 1.22×
in worlds unlike the planner's.

:func:`measuring_saves` re-plans the estimated candidates with that band and, when the
cheapest plan then costs at least :data:`MIN_SAVING` less than the chosen one (both
costed at that band, so only the change of plan counts), says by how much and which
``skybatch bench`` to run, so the user can weigh a bench run against the saving. The plan
itself is unchanged: without a figure, the wide band is the honest one.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import replace

from scheduler.plan._candidates import Candidate
from scheduler.plan._model import evaluate, sigma_from_band
from scheduler.plan._types import PlanOption, PlanRequest, money

__all__ = ["MEASURED_BAND", "MIN_SAVING", "measuring_saves"]

#: The band :mod:`pricing` gives a figure measured on that GPU and count at this shape.
MEASURED_BAND = 0.15
#: Smaller savings are noise next to what a bench run costs itself.
MIN_SAVING = 0.10


def measuring_saves(
    candidates: Sequence[Candidate],
    chosen: PlanOption,
    req: PlanRequest,
    search: Callable[[Candidate], PlanOption],
) -> str | None:
    """One line when a measured throughput would make the plan markedly cheaper, else None.

    ``search`` is the planner's own (fewest workers meeting the target, as an option), so
    the comparison is the planner's rule with nothing changed but the band.
    """
    if chosen.throughput_source != "estimated":
        return None
    sigma = sigma_from_band(mid=1.0, low=1.0 - MEASURED_BAND, high=1.0 + MEASURED_BAND)
    best: PlanOption | None = None
    band = ""
    for c in candidates:
        if c.estimate.kind != "estimated" or c.model.rate_sigma <= sigma:
            continue  # a figure backs it, or its band is already as narrow
        if (c.accelerator, c.count, c.spot) == (
            chosen.accelerator,
            chosen.accelerators_per_worker,
            chosen.spot,
        ):
            mid = c.estimate.rows_per_s
            band = (
                f", ×{c.estimate.low_rows_per_s / mid:.1f}–{c.estimate.high_rows_per_s / mid:.1f}"
            )
        option = search(replace(c, model=replace(c.model, rate_sigma=sigma)))
        if option.feasible and (best is None or option.cost_usd < best.cost_usd):
            best = option
    if best is None or chosen.model is None:
        return None
    # Both at the narrow band: what changes is the plan, not the cost estimate's spread.
    same = replace(chosen.model, rate_sigma=min(chosen.model.rate_sigma, sigma))
    now = evaluate(same, chosen.workers, req.deadline_s).cost_usd
    if best.cost_usd > now * (1.0 - MIN_SAVING):
        return None
    return (
        f"throughput is estimated, not measured ({req.model} on {chosen.accelerator}{band}); "
        f"P ≥ {req.p_target:g} pays for the low end: with a measured figure at the estimate "
        f"the plan would be {best.describe()} for about {money(best.cost_usd)} against "
        f"{money(now)} for this one (−{1.0 - best.cost_usd / now:.0%}); `skybatch bench "
        f"--model {req.model} --engine {req.engine} --task {req.task}` on a machine with "
        f"{best.accelerator} measures it"
    )
