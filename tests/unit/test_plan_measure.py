"""The plan says what a measured throughput would save when the estimate's band costs GPUs."""

from __future__ import annotations

from dataclasses import replace

from _fakemarket import FakeEstimate, FakeMarket, offer

from scheduler.plan import Plan, PlanRequest, Workload, plan_workload

HOUR = 3600.0


def _plan(market: FakeMarket, deadline_h: float) -> Plan:
    load = Workload(
        rows=200_000,
        input_tokens_per_row=100,
        output_tokens_per_row=0,
        max_input_tokens=200,
        max_output_tokens=0,
        rows_source="test",
        input_tokens_source="test",
        output_tokens_source="test",
    )
    req = PlanRequest(
        model="m", engine="torch", task="embed", deadline_s=deadline_h * HOUR, spot="never"
    )
    return plan_workload(load, req, market)


def _market(band: float = 0.6) -> FakeMarket:
    # 100 rows/s a GPU, 10 min of start-up a worker: 2,000 s of work for one L4, so the
    # second worker is $0.17 of start-up: (600 + 2,010 s) against (2 × 600 + 2,010 s) at $1/h.
    return FakeMarket(
        offers=[offer("L4", 1.0, None)],
        rows_per_s={"L4": 100.0},
        band=band,
        startup={"aws": 540.0},
        load_s=60.0,
    )


class MeasuredMarket(FakeMarket):
    def estimate(self, **kw: object) -> FakeEstimate:  # type: ignore[override]
        return replace(super().estimate(**kw), kind="measured")  # type: ignore[arg-type]


def _hints(plan: Plan) -> list[str]:
    return [w for w in plan.warnings if w.startswith("throughput is estimated")]


def test_a_wide_band_that_costs_a_worker_names_the_bench_that_saves_it() -> None:
    plan = _plan(_market(), deadline_h=1.0)
    assert plan.require().workers == 2  # the low end of ×0.4–1.6 needs a second worker
    (hint,) = _hints(plan)
    assert hint.startswith("throughput is estimated, not measured (m on L4, ×0.4–1.6)")
    assert "the plan would be 1× L4 on-demand for about $0.72 against $0.89" in hint
    assert "(−19%)" in hint
    assert hint.endswith(
        "`skybatch bench --model m --engine torch --task embed` on a machine with L4 measures it"
    )


def test_no_hint_when_the_plan_would_not_change() -> None:
    # A whole day: one worker either way; a narrower band only changes the cost estimate.
    assert _plan(_market(), deadline_h=24.0).require().workers == 1
    assert _hints(_plan(_market(), deadline_h=24.0)) == []


def test_no_hint_for_a_figure_that_is_measured_or_a_narrow_band() -> None:
    measured = MeasuredMarket(**{**_market().__dict__})
    assert _hints(_plan(measured, deadline_h=1.0)) == []
    assert _hints(_plan(_market(band=0.15), deadline_h=1.0)) == []
