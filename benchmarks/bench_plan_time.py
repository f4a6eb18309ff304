"""Time per plan over the whole price snapshot (target: ≤ 200 ms per plan).

Each shipped cloud recipe is planned with its accelerator, cloud and region filters removed,
so the planner considers every offering in the snapshot. Three timings per recipe (median
of ``--repeat`` runs):

- ``cold``: a fresh :class:`~scheduler.plan.CatalogMarket` per plan, as one
  ``skybatch plan`` process does (every pricing answer read from DuckDB again, over one
  read-only session; the one-off seeding of a new ``SKYBATCH_HOME`` is done before timing);
- ``warm``: the process-wide market that the TUI and the launcher reuse while the DuckDB
  file is unchanged (pricing answers memoised, the search and the model run again);
- ``search``: the planner alone (candidates, bisection, P(on time), ranking) over a market
  whose answers are already in memory: the cost of the algorithm itself.

It also times ``skybatch plan RECIPE --json`` end to end in a subprocess (interpreter start
and imports included) for one recipe.

    python benchmarks/bench_plan_time.py [--repeat 5]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from scheduler.plan import (  # noqa: E402  # noqa: E402  # noqa: E402
    CatalogMarket,
    PlanRequest,
    Workload,
    catalog_market,
    measure_workload,
    plan_recipe,
    plan_workload,
)
from scheduler.recipe import Recipe, load_recipe  # noqa: E402

RECIPES = ["summarize-llama-10m", "embed-50m", "generate-70b"]
TARGET_MS = 200.0


def whole_snapshot(name: str) -> Recipe:
    recipe = load_recipe(ROOT / "recipes" / f"{name}.yaml")
    schedule = recipe.schedule.model_copy(
        update={"accelerators": None, "clouds": None, "regions": None}
    )
    return recipe.model_copy(update={"schedule": schedule})


def median_ms(fn: Callable[[], object], repeat: int) -> float:
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t0) * 1000)
    return statistics.median(times)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args(argv)
    from rich.console import Console
    from rich.table import Table

    import pricing

    offerings = pricing.list_offerings(include_flagged=True)  # seeds a new database once
    trusted = pricing.list_offerings()
    table = Table(
        title=f"Time per plan over the whole snapshot ({len(offerings)} offerings, "
        f"{len(trusted)} trusted; median of {args.repeat}; target ≤ {TARGET_MS:.0f} ms)"
    )
    for col in ("recipe", "options", "cold ms", "warm ms", "search ms", "cold ≤ target"):
        table.add_column(col)
    for name in RECIPES:
        recipe = whole_snapshot(name)
        load = measure_workload(recipe)
        req = PlanRequest.from_recipe(recipe)
        market = CatalogMarket()
        plan = plan_workload(load, req, market)  # fills the market's memo

        def cold(load: Workload = load, req: PlanRequest = req) -> None:
            fresh = CatalogMarket()
            with fresh.batch():  # what plan_recipe does: one DuckDB session per plan
                plan_workload(load, req, fresh)

        catalog_market()
        cold_ms = median_ms(cold, args.repeat)
        warm_ms = median_ms(lambda r=recipe, w=load: plan_recipe(r, workload=w), args.repeat)
        search_ms = median_ms(lambda w=load, q=req, m=market: plan_workload(w, q, m), args.repeat)
        table.add_row(
            name,
            str(len(plan.options)),
            f"{cold_ms:.0f}",
            f"{warm_ms:.0f}",
            f"{search_ms:.1f}",
            "yes" if cold_ms <= TARGET_MS else "no",
        )
    console = Console(width=160, highlight=False)
    console.print(table)
    t0 = time.perf_counter()
    subprocess.run(
        ["skybatch", "plan", str(ROOT / "recipes" / "summarize-llama-10m.yaml"), "--json"],
        check=True,
        capture_output=True,
        cwd=ROOT,
    )
    console.print(
        f"skybatch plan recipes/summarize-llama-10m.yaml --json, end to end in a new "
        f"process: {(time.perf_counter() - t0) * 1000:.0f} ms"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
