"""Monte Carlo check of the deadline planner against an event-by-event simulation.

The planner prices plans with an analytic model (``scheduler/plan/_model.py``). This script
simulates what actually happens to a plan, shard by shard: every worker starts after its
own random start-up (provision + setup + model load, log-normal), claims shards from a
shared queue, and on spot is preempted as a Poisson process; a preempted worker loses the
shard it held (released to the queue, done again by whoever claims it next) and comes back
after a fresh start-up; a worker that finds the queue empty exits (that is what
``scheduler/worker.py`` does) and stops billing. The true throughput of each GPU type is
drawn once per draw around the estimate (log-normal over the estimate's band: the estimator
is wrong the same way for every worker), and each shard jitters by ±5 %.

Every candidate sees the same draws (common random numbers), so per scenario it reports:

- the hit rate of the planner's choice (target ≥ 95 %) next to the P(on time) it promised;
- planned cost ÷ the cost of the best plan chosen with hindsight: for each draw, the
  cheapest (candidate, workers) that would have met the deadline in that very draw (the
  fewest workers per candidate, found by bisection, pruned by a cost lower bound);
- the cost and hit rate of two baselines on the same draws: the cheapest single instance
  that holds the model, on demand (SkyPilot's optimizer's rule: one node, cheapest per
  hour), and the fastest on-demand GPU sized by the back-of-envelope rule
  ``workers = ceil(work / (deadline - start-up))`` with the point estimate.

A calibration table then compares the model's P(on time) with the simulated hit rate for a
few worker counts around the choice.

    python benchmarks/sim_planner.py             # all scenarios, 200 draws each
    python benchmarks/sim_planner.py --draws 50 --scenario summarize-8h
"""

from __future__ import annotations

import argparse
import heapq
import math
import random
import sys
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from scheduler.plan import CandidateModel, Plan, PlanOption, p_on_time, plan_recipe  # noqa: E402  # noqa: E402
from scheduler.recipe import Recipe, load_recipe  # noqa: E402

SHARD_JITTER = 0.05
INF = float("inf")


@dataclass(frozen=True)
class Outcome:
    finish_s: float
    cost_usd: float
    preemptions: int


@dataclass(frozen=True)
class Draw:
    """One world: the random numbers every candidate shares."""

    seed: int
    rate_z: dict[str, float]  # per accelerator type: the estimator's error, in sigmas

    def worker_rng(self, wid: int) -> random.Random:
        return random.Random(self.seed * 1_000_003 + wid)


def simulate(
    m: CandidateModel,
    workers: int,
    draw: Draw,
    accelerator: str,
    *,
    preempt_scale: float = 1.0,
) -> Outcome:
    """Run ``workers`` workers of candidate ``m`` through one draw, shard by shard."""
    rate = m.rows_per_s * math.exp(m.rate_sigma * draw.rate_z.get(accelerator, 0.0))
    n_shards = m.shards
    sizes = [m.rows_per_shard] * (n_shards - 1) + [m.rows - m.rows_per_shard * (n_shards - 1)]
    jitter_rng = random.Random(draw.seed * 7919 + 17)
    jitter = [math.exp(SHARD_JITTER * jitter_rng.gauss(0, 1)) for _ in range(n_shards)]
    lam = m.preemptions_per_hour * preempt_scale / 3600.0
    sig = m.startup_sigma

    rngs = [draw.worker_rng(w) for w in range(workers)]

    def startup(w: int) -> float:
        return m.startup_s * math.exp(sig * rngs[w].gauss(0, 1) - sig * sig / 2)

    def next_gap(w: int) -> float:
        return rngs[w].expovariate(lam) if lam > 0 else INF

    queue: deque[int] = deque(range(n_shards))
    launch = [0.0] * workers
    next_preempt = [0.0] * workers
    events: list[tuple[float, int, int, int, int]] = []  # (t, seq, kind, worker, shard)
    seq = 0
    READY, DONE, PREEMPT = 0, 1, 2
    for w in range(workers):
        next_preempt[w] = next_gap(w)
        events.append((startup(w), seq, READY, w, -1))
        seq += 1
    heapq.heapify(events)
    billed = 0.0
    finish = 0.0
    preemptions = 0
    while events:
        t, _, kind, w, shard = heapq.heappop(events)
        if kind == PREEMPT:
            queue.appendleft(shard)  # released: the next claimer redoes it
            preemptions += 1
            billed += t - launch[w]
            launch[w] = t
            next_preempt[w] = t + next_gap(w)
            heapq.heappush(events, (t + startup(w), seq, READY, w, -1))
            seq += 1
            continue
        if kind == DONE:
            finish = max(finish, t)
        if next_preempt[w] < t:  # preempted while starting: start again
            preemptions += 1
            billed += next_preempt[w] - launch[w]
            launch[w] = next_preempt[w]
            next_preempt[w] = launch[w] + next_gap(w)
            heapq.heappush(events, (launch[w] + startup(w), seq, READY, w, -1))
            seq += 1
            continue
        if not queue:
            billed += t - launch[w]  # nothing left to claim: the worker exits
            continue
        s = queue.popleft()
        end = t + sizes[s] / rate * jitter[s]
        if next_preempt[w] < end:
            heapq.heappush(events, (next_preempt[w], seq, PREEMPT, w, s))
        else:
            heapq.heappush(events, (end, seq, DONE, w, s))
        seq += 1
    return Outcome(finish, m.usd_per_hour * billed / 3600.0, preemptions)


@dataclass(frozen=True)
class Scenario:
    name: str
    recipe: str
    deadline: str | None = None
    spot: str | None = None
    rows: int | None = None
    preempt_scale: float = 1.0  # the truth's preemption rate ÷ what the planner assumed
    note: str = ""


SCENARIOS = [
    Scenario("summarize-8h", "summarize-llama-10m", note="Llama-3.1-8B, 10M rows, 8 h"),
    Scenario("embed-3h", "embed-50m", note="bge-small, 50M rows, 3 h"),
    Scenario("gen70b-24h", "generate-70b", note="Llama-3.1-70B, 500k rows, 24 h"),
    Scenario("summarize-2h", "summarize-llama-10m", "2h", rows=1_000_000, note="1M rows, 2 h"),
    Scenario(
        "spot-5x-storm",
        "summarize-llama-10m",
        spot="require",
        preempt_scale=5.0,
        note="spot only, 5x the assumed preemption rate",
    ),
]


def _recipe_for(s: Scenario) -> Recipe:
    recipe = load_recipe(ROOT / "recipes" / f"{s.recipe}.yaml")
    schedule = recipe.schedule.model_copy(update={"budget_usd": None})
    if s.spot:
        schedule = schedule.model_copy(update={"spot": s.spot})
    update: dict[str, object] = {"schedule": schedule}
    if s.rows:
        update["input"] = recipe.input.model_copy(update={"rows_estimate": s.rows})
    return recipe.model_copy(update=update)


def _naive_workers(m: CandidateModel, deadline_s: float, cap: int) -> int:
    usable = max(deadline_s - m.startup_s, 1.0)
    return max(1, min(cap, math.ceil(m.rows / m.rows_per_s / usable)))


def _hindsight_cost(
    options: list[PlanOption],
    draw: Draw,
    deadline_s: float,
    cap: int,
    sim: Callable[[PlanOption, int], Outcome],
) -> float | None:
    """The cheapest (candidate, workers) that met the deadline in this draw."""

    def lower_bound(o: PlanOption) -> float:
        m = o.model
        assert m is not None
        true_rate = m.rows_per_s * math.exp(m.rate_sigma * draw.rate_z.get(o.accelerator, 0.0))
        return m.usd_per_hour * (m.rows / true_rate / 1.2) / 3600.0  # jitter can help ~+20 %

    best: float | None = None
    for o in sorted(options, key=lower_bound):
        if best is not None and lower_bound(o) >= best:
            break
        if sim(o, cap).finish_s > deadline_s:
            continue
        lo, hi = 1, cap
        while lo < hi:
            mid = (lo + hi) // 2
            if sim(o, mid).finish_s <= deadline_s:
                hi = mid
            else:
                lo = mid + 1
        cost = sim(o, hi).cost_usd
        # The realized cost wobbles with w; look one step around the bisection point.
        if hi + 1 <= cap:
            up = sim(o, hi + 1)
            if up.finish_s <= deadline_s:
                cost = min(cost, up.cost_usd)
        best = cost if best is None else min(best, cost)
    return best


def make_draw(seed: int, i: int, accs: list[str], gpu_specific: float) -> Draw:
    """One world. The estimator's error is mostly common to all GPUs (the same derating and
    the same published anchors scale to every GPU); ``gpu_specific`` is the share of its
    variance that is independent per GPU type."""
    rz = random.Random(seed * 101 + i)
    common = rz.gauss(0, 1)
    a, b = math.sqrt(1 - gpu_specific), math.sqrt(gpu_specific)
    return Draw(
        seed=seed * 1_000_000 + i, rate_z={acc: a * common + b * rz.gauss(0, 1) for acc in accs}
    )


def run_scenario(
    s: Scenario, draws: int, seed: int, gpu_specific: float = 0.0
) -> dict[str, object]:
    recipe = _recipe_for(s)
    plan: Plan = plan_recipe(recipe, deadline_s=None)
    deadline = plan.request.deadline_s
    if s.deadline:
        from scheduler.recipe import parse_duration

        deadline = parse_duration(s.deadline)
        plan = plan_recipe(recipe, deadline_s=deadline)
    choice = plan.require()
    cap = max(1, min(plan.request.max_workers, plan.workload.rows))
    options = [o for o in plan.options if o.model is not None]
    base_plan = plan
    if s.spot:  # the baselines run on demand whatever this scenario allows the planner
        base_recipe = recipe.model_copy(
            update={"schedule": recipe.schedule.model_copy(update={"spot": "prefer"})}
        )
        base_plan = plan_recipe(base_recipe, deadline_s=deadline)
    on_demand = [o for o in base_plan.options if o.model is not None and not o.spot]
    cheapest_1 = min(on_demand, key=lambda o: o.offerings[0].usd_per_hour)
    fastest = max(on_demand, key=lambda o: (o.rows_per_s, -o.offerings[0].usd_per_hour))
    assert fastest.model is not None and choice.model is not None
    fastest_w = _naive_workers(fastest.model, deadline, cap)
    accs = sorted({o.accelerator for o in options + on_demand})

    results: dict[str, list[Outcome]] = {"plan": [], "cheap1": [], "fastest": []}
    ratios: list[float] = []
    for i in range(draws):
        draw = make_draw(seed, i, accs, gpu_specific)
        cache: dict[tuple[int, int], Outcome] = {}

        def sim(o: PlanOption, w: int, draw: Draw = draw, cache: dict = cache) -> Outcome:  # type: ignore[type-arg]
            key = (id(o), w)
            if key not in cache:
                assert o.model is not None
                cache[key] = simulate(
                    o.model, w, draw, o.accelerator, preempt_scale=s.preempt_scale
                )
            return cache[key]

        planned = sim(choice, choice.workers)
        results["plan"].append(planned)
        results["cheap1"].append(sim(cheapest_1, 1))
        results["fastest"].append(sim(fastest, fastest_w))
        best = _hindsight_cost(options, draw, deadline, cap, sim)
        if best is not None and best > 0:
            ratios.append(planned.cost_usd / best)

    def hit(xs: list[Outcome]) -> float:
        return sum(o.finish_s <= deadline for o in xs) / len(xs)

    def cost(xs: list[Outcome]) -> float:
        return sum(o.cost_usd for o in xs) / len(xs)

    calib = []
    for w in sorted({max(1, choice.workers + d) for d in (-3, -2, -1, 0, 1)}):
        outs = []
        for i in range(draws):
            draw = make_draw(seed, i, accs, gpu_specific)
            outs.append(
                simulate(choice.model, w, draw, choice.accelerator, preempt_scale=s.preempt_scale)
            )
        calib.append((w, p_on_time(choice.model, w, deadline), hit(outs)))

    return {
        "scenario": s,
        "deadline": deadline,
        "choice": choice,
        "planned_cost": choice.cost_usd,
        "hit": hit(results["plan"]),
        "cost": cost(results["plan"]),
        "ratio": sum(ratios) / len(ratios) if ratios else float("nan"),
        "ratio_n": len(ratios),
        "cheap1": (cheapest_1, cost(results["cheap1"]), hit(results["cheap1"])),
        "fastest": (fastest, fastest_w, cost(results["fastest"]), hit(results["fastest"])),
        "calibration": calib,
    }


def _gpu(o: PlanOption, workers: int | None = None) -> str:
    spec = replace(o, workers=workers if workers is not None else o.workers)
    return spec.describe()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--draws", type=int, default=200)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--scenario", action="append", help="only these scenarios")
    parser.add_argument(
        "--gpu-specific-error",
        type=float,
        default=0.0,
        help="share (0-1) of the throughput error that is independent per GPU type",
    )
    args = parser.parse_args(argv)
    chosen = [s for s in SCENARIOS if not args.scenario or s.name in args.scenario]
    from rich.console import Console
    from rich.table import Table

    console = Console(width=200, highlight=False)
    table = Table(
        title=f"Planner vs Monte Carlo ({args.draws} draws per scenario; GPU-specific share "
        f"of the throughput error {args.gpu_specific_error:g})"
    )
    for col in (
        "scenario",
        "plan (chosen)",
        "P model",
        "hit rate",
        "planned $",
        "sim $",
        "÷ hindsight",
        "cheapest 1 instance (SkyPilot rule)",
        "fastest on-demand, naive sizing",
        "s",
    ):
        table.add_column(col)
    calib_rows = []
    for s in chosen:
        t0 = time.perf_counter()
        r = run_scenario(s, args.draws, args.seed, args.gpu_specific_error)
        choice: PlanOption = r["choice"]  # type: ignore[assignment]
        c1, c1_cost, c1_hit = r["cheap1"]  # type: ignore[misc]
        f, fw, f_cost, f_hit = r["fastest"]  # type: ignore[misc]
        table.add_row(
            f"{s.name}\n[dim]{s.note}[/]",
            f"{choice.describe()}\n[dim]{choice.where()}[/]",
            f"{choice.p_on_time:.3f}",
            f"{r['hit']:.1%}",
            f"${r['planned_cost']:,.0f}",
            f"${r['cost']:,.0f}",
            f"{r['ratio']:.3f} (n={r['ratio_n']})",
            f"{_gpu(c1, 1)}: ${c1_cost:,.0f}, hit {c1_hit:.0%}",
            f"{_gpu(f, fw)}: ${f_cost:,.0f}, hit {f_hit:.0%}",
            f"{time.perf_counter() - t0:.0f}",
        )
        for w, p_model, p_sim in r["calibration"]:  # type: ignore[attr-defined]
            calib_rows.append((s.name, _gpu(choice, w), p_model, p_sim))
    console.print(table)
    calib = Table(title="Calibration: the model's P(on time) vs the simulated hit rate")
    for col in ("scenario", "plan", "P model", "hit rate (sim)"):
        calib.add_column(col)
    for name, desc, p_model, p_sim in calib_rows:
        calib.add_row(name, desc, f"{p_model:.3f}", f"{p_sim:.3f}")
    console.print(calib)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
