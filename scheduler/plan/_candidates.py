"""The planner's candidates: accelerator × GPU count × spot or on demand, and their models.

For each accelerator the memory check gives the tensor-parallel size ``tp`` (the fewest GPUs
that hold the model and its KV cache); every GPU count ``n ≥ tp`` an offering has is a
candidate, whose worker runs ``n // tp`` engine replicas (its throughput their sum). The
cheapest few trusted offerings of that count price it and go to SkyPilot; their cloud gives
the start-up, spot risk, billing increment and egress of the candidate's
:class:`~scheduler.plan._model.CandidateModel`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from scheduler.plan._market import EstimateLike, Market, OfferingLike
from scheduler.plan._model import CandidateModel, sigma_from_band
from scheduler.plan._types import OfferingChoice, PlanRequest
from scheduler.plan._workload import Workload

__all__ = [
    "OFFERINGS_PER_OPTION",
    "STARTUP_SIGMA",
    "Candidate",
    "build_candidates",
    "egress_usd",
    "rows_per_shard_for",
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
class Candidate:
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


def build_candidates(
    workload: Workload,
    req: PlanRequest,
    market: Market,
    warnings: list[str],
    no_figure: dict[str, str],
) -> list[Candidate]:
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
    out: list[Candidate] = []
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
                    Candidate(
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
