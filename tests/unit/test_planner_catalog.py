"""The planner over the real DuckDB catalog (the shipped snapshot in a temporary home)."""

from __future__ import annotations

from pathlib import Path

import pricing
from scheduler.plan import (
    CatalogMarket,
    PlanRequest,
    catalog_market,
    measure_workload,
    plan_recipe,
    plan_workload,
)
from scheduler.recipe import load_recipe

ROOT = Path(__file__).resolve().parents[2]


def whole_snapshot_recipe(name: str = "summarize-llama-10m"):  # type: ignore[no-untyped-def]
    recipe = load_recipe(ROOT / "recipes" / f"{name}.yaml")
    schedule = recipe.schedule.model_copy(
        update={"accelerators": None, "clouds": None, "regions": None, "budget_usd": None}
    )
    return recipe.model_copy(update={"schedule": schedule})


def test_session_and_memo_give_the_same_plan_as_plain_calls() -> None:
    recipe = whole_snapshot_recipe()
    load = measure_workload(recipe)
    plain = plan_workload(load, PlanRequest.from_recipe(recipe), CatalogMarket())
    batched = plan_recipe(recipe, workload=load)
    again = plan_recipe(recipe, workload=load)  # answered from the process-wide memo
    assert plain.to_json() == batched.to_json() == again.to_json()
    assert catalog_market() is catalog_market()


def test_no_plan_uses_a_flagged_or_missing_price() -> None:
    everything = pricing.list_offerings(include_flagged=True)
    # GCP attaches GPUs to a host VM: the instance type alone does not name an offering.
    by_key = {
        (o.cloud, o.region, o.instance_type, o.accelerator, o.accelerator_count): o
        for o in everything
    }
    for name in ("summarize-llama-10m", "embed-50m", "generate-70b"):
        plan = plan_recipe(whole_snapshot_recipe(name))
        assert plan.options
        for option in plan.options:
            for choice in option.offerings:
                key = (
                    choice.cloud,
                    choice.region,
                    choice.instance_type,
                    option.accelerator,
                    option.accelerators_per_worker,
                )
                row = by_key[key]
                assert not set(row.flags) - pricing.SPOT_ONLY_FLAGS
                assert row.price(option.spot) == choice.usd_per_hour


def test_every_shipped_cloud_recipe_has_a_choice() -> None:
    for name in ("summarize-llama-10m", "embed-50m", "generate-70b"):
        plan = plan_recipe(load_recipe(ROOT / "recipes" / f"{name}.yaml"))
        choice = plan.require()
        assert choice.p_on_time >= 0.95
        assert plan.request.budget_usd is None or choice.cost_usd <= plan.request.budget_usd


def test_two_threads_batching_on_the_shared_market_keep_their_own_sessions() -> None:
    """The TUI plans from worker threads on the process's one market."""
    import threading

    market = CatalogMarket()
    market.offerings(accelerators=None, clouds=None, regions=None)  # memoised from now on
    a_inside, b_done = threading.Event(), threading.Event()
    errors: list[BaseException] = []

    def a() -> None:
        try:
            with market.batch():
                market.offerings(accelerators=None, clouds=None, regions=None)  # the memo
                a_inside.set()
                assert b_done.wait(30)
        except BaseException as e:  # reported below
            errors.append(e)

    def b() -> None:
        try:
            assert a_inside.wait(30)
            with market.batch():  # a question the memo cannot answer: opens a session
                market.gpus_needed(model="meta-llama/Llama-3.1-8B-Instruct",
                                   accelerator="H100", context_tokens=12_345)  # fmt: skip
        except BaseException as e:
            errors.append(e)
        finally:
            b_done.set()

    threads = [threading.Thread(target=a), threading.Thread(target=b)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert errors == []


def test_70b_goes_onto_multi_gpu_instances_when_they_are_cheaper() -> None:
    plan = plan_recipe(load_recipe(ROOT / "recipes" / "generate-70b.yaml"))
    choice = plan.require()
    single = [o for o in plan.options if o.feasible and o.replicas_per_worker == 1]
    # Several engine replicas share one big instance and beat every one-engine worker.
    assert choice.replicas_per_worker > 1
    assert choice.accelerators_per_worker == (
        choice.replicas_per_worker * choice.tensor_parallel_size
    )
    assert single and choice.cost_usd < min(o.cost_usd for o in single)


def test_the_launch_option_carries_the_planned_replicas_to_the_worker() -> None:
    from scheduler.backends.replicas import replica_flags
    from scheduler.launch import LaunchRequest, choose_option

    path = ROOT / "recipes" / "generate-70b.yaml"
    option, plan = choose_option(load_recipe(path), LaunchRequest(recipe_path=str(path)))
    assert plan is not None
    chosen = plan["options"][plan["chosen"]]
    assert option.replicas_per_worker == chosen["replicas_per_worker"] > 1
    assert option.tp_size == chosen["tensor_parallel_size"]
    assert replica_flags(option) == [
        "--replicas",
        str(chosen["replicas_per_worker"]),
        "--tensor-parallel-size",
        str(chosen["tensor_parallel_size"]),
    ]
