"""The deadline planner against small hand-built markets (a fake at the Market seam)."""

from __future__ import annotations

import math
from dataclasses import replace

import pytest
from _fakemarket import FakeEstimate, FakeMarket, offer, small_market
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from scheduler.errors import PlanError
from scheduler.plan import (
    STARTUP_SIGMA,
    CandidateModel,
    Plan,
    PlanRequest,
    Workload,
    evaluate,
    p_on_time,
    plan_workload,
    rows_per_shard_for,
    sigma_from_band,
)

HOUR = 3600.0


def workload(rows: int = 1_000_000) -> Workload:
    return Workload(
        rows=rows,
        input_tokens_per_row=500,
        output_tokens_per_row=150,
        max_input_tokens=900,
        max_output_tokens=150,
        rows_source="test",
        input_tokens_source="test",
        output_tokens_source="test",
    )


def request(**kw: object) -> PlanRequest:
    base: dict[str, object] = {
        "model": "m",
        "engine": "vllm",
        "task": "generate",
        "deadline_s": 8 * HOUR,
        "max_workers": 64,
    }
    base.update(kw)
    return PlanRequest(**base)  # type: ignore[arg-type]


# ---------------------------------------------------------------- brute force equivalence


def brute_force(load: Workload, req: PlanRequest, market: FakeMarket) -> float | None:
    """Cheapest expected cost over every (offering, its GPU count, spot, workers).

    Each offering is tried with the GPUs it has: ``count // need`` engine replicas of the
    fewest GPUs that hold the model, their throughputs summed.
    """
    cap = max(1, min(req.max_workers, load.rows))
    modes = {"require": (True,), "never": (False,), "prefer": (True, False)}[req.spot]
    best: float | None = None
    for o in market.offerings(accelerators=None, clouds=None, regions=None):
        need = market.gpus_needed(model="m", accelerator=o.accelerator, context_tokens=1)
        if need is None or o.flags or o.accelerator_count < need:
            continue
        for spot in modes:
            price = o.price(spot)
            if price is None or price <= 0:
                continue
            one = market.estimate(
                model="m",
                engine="vllm",
                task="generate",
                accelerator=o.accelerator,
                count=need,
                input_tokens=1,
                output_tokens=1,
            )
            replicas = o.accelerator_count // need
            est = FakeEstimate(
                one.rows_per_s * replicas,
                one.low_rows_per_s * replicas,
                one.high_rows_per_s * replicas,
            )
            shard = rows_per_shard_for(load.rows, est.rows_per_s, cap=cap, fixed=None)
            model = CandidateModel(
                rows=load.rows,
                rows_per_s=est.rows_per_s,
                rate_sigma=sigma_from_band(
                    mid=est.rows_per_s, low=est.low_rows_per_s, high=est.high_rows_per_s
                ),
                startup_s=market.startup_s(o.cloud) + market.load_s,
                startup_sigma=STARTUP_SIGMA,
                preemptions_per_hour=(
                    market.preemption_rate_per_hour(o.cloud, o.accelerator, o.region)
                    if spot
                    else 0.0
                ),
                usd_per_hour=price,
                rows_per_shard=shard,
                capacity_wait_s=market.capacity_wait_s(o.cloud, o.accelerator) if spot else 0.0,
                billing_increment_s=market.billing_increment_s(o.cloud),
            )
            for w in range(1, min(cap, model.useful_workers) + 1):
                ev = evaluate(model, w, req.deadline_s)
                if ev.p_on_time < req.p_target:
                    continue
                if req.budget_usd is not None and ev.cost_usd > req.budget_usd:
                    continue
                if best is None or ev.cost_usd < best:
                    best = ev.cost_usd
    return best


ACCS = ["L4", "A100-80GB", "H100", "T4"]
CLOUDS = ["aws", "gcp", "lambda", "nebius"]


@st.composite
def markets(draw: st.DrawFn) -> FakeMarket:
    offers = []
    for acc in draw(st.lists(st.sampled_from(ACCS), min_size=1, max_size=4, unique=True)):
        for i in range(draw(st.integers(1, 4))):
            count = draw(st.sampled_from([1, 2, 3, 4, 8]))
            od = draw(st.one_of(st.none(), st.floats(0.2, 12.0)))
            spot = draw(st.one_of(st.none(), st.floats(0.05, 12.0)))
            flags = ("spot_zero",) if draw(st.integers(0, 9)) == 0 else ()
            offers.append(offer(acc, od, spot, cloud=CLOUDS[i], count=count, flags=flags))
    # Same start-up and preemption figures on every cloud, so the cheapest offering of a
    # candidate is also its cheapest plan (what the planner assumes when it prices by it).
    rate = draw(st.floats(0.0, 0.5))
    wait = draw(st.sampled_from([0.0, 0.0, 30.0, 120.0]))
    increment = draw(st.sampled_from([1.0, 60.0, 3600.0]))
    return FakeMarket(
        offers=offers,
        rows_per_s={a: draw(st.floats(0.5, 50.0)) for a in ACCS},
        need={a: draw(st.sampled_from([1, 1, 2, 4, None])) for a in ACCS},
        band=draw(st.floats(0.0, 0.5)),
        preempt={c: rate for c in CLOUDS},
        wait={c: wait for c in CLOUDS},
        increment={c: increment for c in CLOUDS},
        load_s=draw(st.floats(0.0, 300.0)),
    )


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    market=markets(),
    rows=st.integers(1, 400_000),
    deadline_h=st.floats(0.3, 30.0),
    max_workers=st.integers(1, 12),
    budget=st.one_of(st.none(), st.floats(1.0, 500.0)),
    spot=st.sampled_from(["prefer", "require", "never"]),
)
def test_choice_equals_brute_force(
    market: FakeMarket,
    rows: int,
    deadline_h: float,
    max_workers: int,
    budget: float | None,
    spot: str,
) -> None:
    load = workload(rows)
    req = request(
        deadline_s=deadline_h * HOUR, max_workers=max_workers, budget_usd=budget, spot=spot
    )
    plan = plan_workload(load, req, market)
    best = brute_force(load, req, market)
    if best is None:
        assert plan.chosen is None
        with pytest.raises(PlanError):
            plan.require()
    else:
        choice = plan.require()
        assert choice.cost_usd == pytest.approx(best, rel=1e-9)
        assert choice.p_on_time >= req.p_target
        # Fewest workers: one fewer misses the target.
        assert choice.model is not None
        if choice.workers > 1:
            assert p_on_time(choice.model, choice.workers - 1, req.deadline_s) < req.p_target


# ---------------------------------------------------------------- the analytic model


@settings(max_examples=200, deadline=None)
@given(
    rows=st.integers(1, 10_000_000),
    rate=st.floats(0.1, 5000.0),
    sigma=st.floats(0.0, 0.6),
    startup=st.floats(0.0, 1200.0),
    preempt=st.floats(0.0, 2.0),
    shard_rows=st.integers(1, 1_000_000),
    deadline_h=st.floats(0.1, 48.0),
)
def test_p_on_time_monotone_in_workers(
    rows: int,
    rate: float,
    sigma: float,
    startup: float,
    preempt: float,
    shard_rows: int,
    deadline_h: float,
) -> None:
    m = CandidateModel(
        rows=rows,
        rows_per_s=rate,
        rate_sigma=sigma,
        startup_s=startup,
        startup_sigma=STARTUP_SIGMA,
        preemptions_per_hour=preempt,
        usd_per_hour=1.0,
        rows_per_shard=shard_rows,
    )
    previous = 0.0
    previous_cost = 0.0
    for w in (1, 2, 3, 4, 6, 8, 12, 16, 24, 32, 48, 64):
        ev = evaluate(m, w, deadline_h * HOUR)
        assert 0.0 <= ev.p_on_time <= 1.0
        assert ev.p_on_time >= previous - 1e-12
        assert ev.cost_usd >= previous_cost - 1e-9  # more workers never cost less
        previous, previous_cost = ev.p_on_time, ev.cost_usd


def test_p_on_time_falls_with_preemptions_and_rises_with_deadline() -> None:
    def model(rate: float) -> CandidateModel:
        return CandidateModel(
            rows=100_000,
            rows_per_s=10.0,
            rate_sigma=0.1,
            startup_s=300.0,
            startup_sigma=STARTUP_SIGMA,
            preemptions_per_hour=rate,
            usd_per_hour=1.0,
            rows_per_shard=3000,
        )

    calm, stormy = model(0.0), model(1.0)
    assert p_on_time(stormy, 4, 2.2 * HOUR) < p_on_time(calm, 4, 2.2 * HOUR)
    assert p_on_time(calm, 4, 1.0 * HOUR) < p_on_time(calm, 4, 3.0 * HOUR)
    assert p_on_time(calm, 4, 3.0 * HOUR) > 0.99


def test_cost_includes_startup_hours() -> None:
    plan = plan_workload(workload(10_000), request(spot="never"), small_market())
    for o in plan.options:
        assert o.model is not None
        work_h = 10_000 / o.rows_per_s / HOUR
        startup_h = o.workers * o.model.startup_s / HOUR
        price = o.offerings[0].usd_per_hour
        assert o.cost_usd >= price * (work_h + startup_h) * (1 - 1e-9)


# ---------------------------------------------------------------- policies and offerings


def test_spot_policies() -> None:
    market = small_market()
    for policy, allowed in (("require", {True}), ("never", {False}), ("prefer", {True, False})):
        plan = plan_workload(workload(), request(spot=policy), market)
        assert {o.spot for o in plan.options} == allowed, policy


def test_flagged_and_unpriced_offerings_are_never_used() -> None:
    market = small_market()
    market.offers.append(offer("V100", 0.1, None))  # no spot price: on demand only
    market.rows_per_s["V100"] = 5.0
    plan = plan_workload(workload(), request(), market)
    assert all(o.accelerator != "T4" for o in plan.options)  # T4's only row is flagged
    v100 = [o for o in plan.options if o.accelerator == "V100"]
    assert [o.spot for o in v100] == [False]
    for o in plan.options:
        for choice in o.offerings:
            assert choice.usd_per_hour > 0


def test_offerings_are_the_cheapest_few_across_clouds() -> None:
    market = FakeMarket(
        offers=[
            offer("L4", 1.0, 0.5, cloud=c, region=f"r{i}")
            for i, c in enumerate(["aws", "gcp", "lambda", "aws", "gcp"])
        ]
        + [offer("L4", 0.9, 0.2, cloud="gcp", region="cheap")],
        rows_per_s={"L4": 10.0},
    )
    plan = plan_workload(workload(), request(spot="require"), market)
    (only,) = plan.options
    assert only.offerings[0].region == "cheap"
    assert len(only.offerings) == 3
    prices = [x.usd_per_hour for x in only.offerings]
    assert prices == sorted(prices)


def test_gpus_per_worker_follow_the_memory_check() -> None:
    market = FakeMarket(
        offers=[
            offer("L4", 0.8, 0.3, count=1),
            offer("L4", 3.0, 1.2, count=4),
            offer("H100", 4.0, 2.0, count=1),
            offer("H100", 30.0, 15.0, count=8),
            offer("T4", 0.5, 0.2, count=1),
        ],
        rows_per_s={"L4": 1.0, "H100": 8.0, "T4": 0.5},
        need={"L4": 4, "H100": 2, "T4": None},
    )
    plan = plan_workload(
        workload(100_000), request(deadline_s=48 * HOUR, accelerators=("L4", "H100", "T4")), market
    )
    per_worker = {o.accelerator: o.accelerators_per_worker for o in plan.options}
    assert per_worker == {"L4": 4, "H100": 8}  # H100 has no 2-GPU instance: the next size up
    h100 = next(o for o in plan.options if o.accelerator == "H100")
    # The 8-GPU box runs four replicas of the two GPUs that hold the model.
    assert (h100.tensor_parallel_size, h100.replicas_per_worker) == (2, 4)
    assert h100.rows_per_s == pytest.approx(4 * 2 * 8.0)
    assert any("T4: cannot hold m" in w for w in plan.warnings)


def test_every_gpu_count_is_a_candidate_and_big_boxes_run_replicas() -> None:
    market = FakeMarket(
        offers=[
            offer("H100", 4.0, 2.0, count=1),
            offer("H100", 30.0, 9.0, count=8),  # cheaper per GPU than eight 1-GPU boxes
        ],
        rows_per_s={"H100": 10.0},
    )
    plan = plan_workload(workload(2_000_000), request(spot="require"), market)
    sizes = {(o.accelerators_per_worker, o.replicas_per_worker) for o in plan.options}
    assert sizes == {(1, 1), (8, 8)}
    choice = plan.require()
    assert (choice.accelerators_per_worker, choice.tensor_parallel_size) == (8, 1)
    assert choice.replicas_per_worker == 8
    assert "8 replicas" in choice.describe()
    data = choice.to_json()
    assert (data["tensor_parallel_size"], data["replicas_per_worker"]) == (1, 8)


def test_rows_per_shard_is_about_five_minutes_unless_fixed() -> None:
    plan = plan_workload(workload(10_000_000), request(), small_market())
    for o in plan.options:
        assert o.rows_per_shard / o.rows_per_s == pytest.approx(300, rel=0.06)
    fixed = plan_workload(workload(10_000_000), request(rows_per_shard=777), small_market())
    assert {o.rows_per_shard for o in fixed.options} == {777}
    tiny = plan_workload(workload(100), request(max_workers=4), small_market())
    assert all(o.rows_per_shard <= 25 for o in tiny.options)  # every worker gets a shard


def test_workers_capped_by_max_workers_and_rows() -> None:
    plan = plan_workload(workload(3), request(max_workers=64), small_market())
    assert all(o.workers <= 3 for o in plan.options)


# ---------------------------------------------------------------- edge cases: one line


def test_deadline_too_short_says_why_in_one_line() -> None:
    plan = plan_workload(
        workload(10_000_000), request(deadline_s=1 * HOUR, max_workers=4), small_market()
    )
    assert plan.chosen is None
    assert "\n" not in plan.reason
    with pytest.raises(
        PlanError,
        match=r"^no plan finishes within 1h with P ≥ 0\.95 on at most 4 workers: the cheapest "
        r"plan needs [\d.]+ h \(1× \w+ spot, \$[\d,.]+\); the fastest costs \$[\d,.]+ and needs "
        r"[\d.]+ h \(4× H100 .*\); raise the deadline or schedule\.max_workers$",
    ):
        plan.require()


def test_budget_too_small_says_why_in_one_line() -> None:
    plan = plan_workload(workload(2_000_000), request(budget_usd=5.0), small_market())
    assert plan.chosen is None
    assert plan.options and not any(o.within_budget and o.on_time for o in plan.options)
    with pytest.raises(
        PlanError,
        match=r"^no plan finishes within 8h for the \$5\.00 budget: the cheapest plan needs "
        r"[\d.]+ h \(.*\); finishing on time costs at least \$[\d,.]+ \(.*\); raise the "
        r"budget or the deadline$",
    ):
        plan.require()


def test_budget_that_fits_is_respected() -> None:
    free = plan_workload(workload(2_000_000), request(), small_market()).require()
    capped = plan_workload(
        workload(2_000_000), request(budget_usd=free.cost_usd * 1.01), small_market()
    ).require()
    assert capped.cost_usd <= free.cost_usd * 1.01


def test_no_offering_says_so() -> None:
    plan = plan_workload(workload(), request(accelerators=("B200",)), small_market())
    with pytest.raises(PlanError, match=r"^no offering can run m \(B200 on any cloud, spot: "):
        plan.require()


def test_longer_deadline_never_costs_more() -> None:
    market = small_market()
    costs = [
        plan_workload(workload(5_000_000), request(deadline_s=h * HOUR), market).require().cost_usd
        for h in (6, 8, 12, 24, 48)
    ]
    assert costs == sorted(costs, reverse=True)


# ---------------------------------------------------------------- the result object


def test_pareto_marks_exactly_the_undominated_options() -> None:
    plan = plan_workload(workload(5_000_000), request(), small_market())
    for o in plan.options:
        dominated = any(
            p.cost_usd <= o.cost_usd
            and p.hours <= o.hours
            and (p.cost_usd < o.cost_usd or p.hours < o.hours)
            for p in plan.options
        )
        assert o.pareto is not dominated
    assert any(o.pareto for o in plan.options)


def test_ranked_by_expected_cost_feasible_first() -> None:
    plan = plan_workload(workload(5_000_000), request(max_workers=8), small_market())
    feasible = [o.cost_usd for o in plan.options if o.feasible]
    assert feasible == sorted(feasible)
    flags = [o.feasible for o in plan.options]
    assert flags == sorted(flags, reverse=True)
    assert plan.chosen == 0
    assert plan.reason.startswith(f"{plan.options[0].describe()} on ")


def test_json_contract() -> None:
    plan = plan_workload(workload(), request(), small_market())
    data = plan.to_json(top=3)
    assert {"workload", "options", "chosen", "reason"} <= set(data)
    assert set(data["workload"]) >= {"rows", "input_tokens_per_row", "output_tokens_per_row"}
    assert len(data["options"]) == 3
    for o in data["options"]:
        assert {
            "accelerator",
            "accelerators_per_worker",
            "tensor_parallel_size",
            "replicas_per_worker",
            "spot",
            "workers",
            "hours",
            "cost_usd",
            "p_on_time",
            "throughput_source",
            "offerings",
            "pareto",
            "rows_per_shard",
        } <= set(o)
        for c in o["offerings"]:
            assert set(c) == {"cloud", "region", "instance_type", "usd_per_hour"}
    assert data["chosen"] == 0
    assert isinstance(data["reason"], str) and data["reason"]


def test_json_with_no_choice_has_null_and_reason() -> None:
    plan = plan_workload(workload(), request(budget_usd=0.01), small_market())
    data = plan.to_json()
    assert data["chosen"] is None
    assert data["reason"].startswith("no plan finishes within 8h for the $0.01 budget")


def test_warnings_for_stale_prices_and_defaulted_deadline() -> None:
    market = small_market()
    market.age_days = 120.0
    plan = plan_workload(workload(), request(deadline_defaulted=True), market)
    assert any("prices are 120 days old" in w for w in plan.warnings)
    assert any("no deadline set" in w for w in plan.warnings)
    assert isinstance(plan, Plan)
    assert math.isfinite(plan.require().hours)


def test_a_missing_throughput_figure_says_so_and_how_to_measure_one() -> None:
    class NoFigures(FakeMarket):
        def estimate(self, **kw: object) -> FakeEstimate:  # type: ignore[override]
            raise PlanError(f"throughput: model {kw['model']!r} is unknown")

    market = NoFigures(offers=[offer("L4", 0.8, 0.3)], rows_per_s={"L4": 1.0})
    plan = plan_workload(workload(), request(model="org/custom"), market)
    with pytest.raises(
        PlanError,
        match=r"^no throughput figure for org/custom on L4 .*"
        r"`skybatch bench --model org/custom --engine vllm`",
    ):
        plan.require()


def test_headline_cost_per_million_tokens() -> None:
    plan = plan_workload(workload(1_000_000), request(), small_market())
    choice = plan.require()
    per_total, per_out = plan.usd_per_million_tokens(choice)
    assert per_total == pytest.approx(choice.cost_usd / (1_000_000 * 650) * 1e6)
    assert per_out == pytest.approx(choice.cost_usd / (1_000_000 * 150) * 1e6)
    data = plan.to_json()["options"][plan.chosen or 0]
    assert data["usd_per_million_tokens"] == pytest.approx(per_total, rel=1e-3)
    assert data["usd_per_million_output_tokens"] == pytest.approx(per_out, rel=1e-3)


# ---------------------------------------------------------------- risk: billing, capacity, egress


def test_hourly_billing_rounds_every_billing_session_up() -> None:
    per_second = small_market()
    hourly = small_market()
    hourly.increment = {"aws": 3600.0, "gcp": 3600.0, "lambda": 3600.0}
    req = request(spot="never", accelerators=("L4",))
    a = plan_workload(workload(100_000), req, per_second).require()
    b = plan_workload(workload(100_000), req, hourly).require()
    assert b.cost_usd > a.cost_usd
    assert b.model is not None and b.model.billing_increment_s == 3600.0
    # Half an hour per worker on average (on demand: no preemptions, one session each).
    extra = (
        b.cost_usd
        - evaluate(replace(b.model, billing_increment_s=1.0), b.workers, req.deadline_s).cost_usd
    )
    assert extra == pytest.approx(b.workers * 0.5 * b.offerings[0].usd_per_hour, rel=1e-3)


def test_spot_capacity_wait_grows_with_workers_and_caps_them() -> None:
    m = CandidateModel(
        rows=100_000,
        rows_per_s=10.0,
        rate_sigma=0.1,
        startup_s=300.0,
        startup_sigma=STARTUP_SIGMA,
        preemptions_per_hour=0.1,
        usd_per_hour=1.0,
        rows_per_shard=1000,
        capacity_wait_s=120.0,
    )
    calm = replace(m, capacity_wait_s=0.0)
    assert evaluate(m, 1, 8 * HOUR).hours == pytest.approx(evaluate(calm, 1, 8 * HOUR).hours)
    assert evaluate(m, 20, 8 * HOUR).hours > evaluate(calm, 20, 8 * HOUR).hours + 0.3
    # Past the cap one more worker would arrive after it could help: 2N/(rδ) ≈ 167.
    assert m.useful_workers == 13
    market = small_market()
    market.wait = {"aws": 600.0, "gcp": 600.0, "lambda": 600.0}
    plan = plan_workload(workload(1_000_000), request(spot="require", max_workers=64), market)
    for o in plan.options:
        assert o.model is not None and o.workers <= o.model.useful_workers


def test_egress_is_priced_when_the_data_lives_on_another_cloud() -> None:
    market = small_market()
    market.egress = {"aws": 0.09, "gcp": 0.12}
    load = workload(1_000_000)
    here = plan_workload(load, request(spot="never", input_cloud="aws", store_cloud="aws"), market)
    away = plan_workload(load, request(spot="never", input_cloud="gcp", store_cloud="gcp"), market)
    by_where = {(o.accelerator, o.offerings[0].cloud): o for o in away.options}
    aws_l4 = by_where[("A100-80GB", "aws")]
    # Input read out of GCP at GCP's rate, outputs written out of AWS at AWS's.
    expected = load.input_gb * 0.12 + load.output_gb * 0.09
    assert aws_l4.egress_usd == pytest.approx(expected)
    same = {(o.accelerator, o.offerings[0].cloud): o for o in here.options}
    assert same[("A100-80GB", "aws")].egress_usd == 0.0
    assert aws_l4.cost_usd == pytest.approx(same[("A100-80GB", "aws")].cost_usd + expected)
    assert aws_l4.to_json()["egress_usd"] == pytest.approx(expected, abs=0.01)
