"""Why the plan costs what it does against hindsight, in one scenario of ``sim_planner.py``.

On the very worlds ``sim_planner.py`` draws (same seed, same truth), for one scenario:

1. **hindsight's picks**: the cheapest (GPU × count, spot or not, workers) in each world,
   how many GPUs that is against the plan's, and the share of the planned cost that is
   start-up (every worker pays its own; a short job is mostly start-up);
2. **fixed rules**: each of the plan's options at a few worker counts, deadline guard on:
   is there a choice that does better without knowing the world?
3. **what knowing buys**: the planner's own rule (the fewest workers with P(on time) ≥
   target, then the cheapest option) re-run with the throughput band of a measured figure
   (same median), then in each world told that world's true throughput (σ at its 0.05
   floor), then also its true start-up, capacity wait and preemption means; guard on and
   off. What a planner told everything but the per-worker
   draws still pays is the part of the gap no planner can close.

Nothing here changes the simulation's truth; it only asks it different questions.

    python benchmarks/sim_explain.py                          # embed-30m, 60 worlds
    python benchmarks/sim_explain.py --scenario summarize-2h --draws 20
"""

from __future__ import annotations

import argparse
import statistics
import sys
from collections import Counter
from dataclasses import replace
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sim_planner import (
    SCENARIOS,
    Outcome,
    Pick,
    Setup,
    World,
    _hindsight_pick,
    _runs,
    prepare,
    simulate,
)

from scheduler.plan import CandidateModel, PlanOption, evaluate, p_on_time, sigma_from_band

KNOWLEDGE = (
    ("nothing (the shipped plan's rule)", frozenset()),
    ("a measured figure's band (±15%), same median", frozenset({"measured"})),
    ("the true throughput", frozenset({"rate"})),
    ("throughput, start-up, capacity wait, preemptions", frozenset({"rate", "world"})),
)
TOLD_SIGMA = 0.05  # sigma_from_band's floor: a throughput that is known
# The band the estimator gives a figure measured on that GPU and count (pricing: ±15 %).
MEASURED_SIGMA = sigma_from_band(mid=1.0, low=0.85, high=1.15)


def _gpus(o: PlanOption, workers: int) -> int:
    return o.accelerators_per_worker * workers


def told(o: PlanOption, world: World, know: frozenset[str]) -> CandidateModel:
    """The option's model as a planner told ``know`` about ``world`` would build it."""
    assert o.model is not None
    m = o.model
    if "measured" in know:
        m = replace(m, rate_sigma=MEASURED_SIGMA)
    if "rate" in know:
        rate = m.rows_per_s * world.rate.get(o.accelerator, 1.0)
        m = replace(m, rows_per_s=rate, rate_sigma=TOLD_SIGMA)
    if "world" in know:
        cloud = o.offerings[0].cloud
        m = replace(
            m,
            startup_s=m.startup_s * world.startup,
            capacity_wait_s=m.capacity_wait_s * world.wait,
            preemptions_per_hour=m.preemptions_per_hour * world.preempt.get(cloud, 1.0),
        )
    return m


def planner_rule(setup: Setup, world: World, know: frozenset[str]) -> tuple[PlanOption, int] | None:
    """The planner's rule on told models: fewest workers meeting the target, then cheapest."""
    target = setup.plan.request.p_target
    best: tuple[float, PlanOption, int] | None = None
    for o in setup.plan.options:
        if o.model is None:
            continue
        m = told(o, world, know)
        for w in range(1, min(setup.cap, m.useful_workers) + 1):
            if p_on_time(m, w, setup.deadline) >= target:
                cost = evaluate(m, w, setup.deadline).cost_usd
                if best is None or cost < best[0]:
                    best = (cost, o, w)
                break
    return None if best is None else (best[1], best[2])


def _line(name: str, outs: list[Outcome], picks: list[Pick | None], deadline: float) -> str:
    hit = sum(o.finish_s <= deadline for o in outs) / len(outs)
    ratios = [o.cost_usd / p.cost_usd for o, p in zip(outs, picks, strict=True) if p]
    added = statistics.mean(o.added for o in outs)
    return f"| {name} | {hit:.0%} | {statistics.mean(ratios):.2f}× | {added:.1f} |"


def explain(name: str, draws: int, seed: int) -> None:
    scenario = next(s for s in SCENARIOS if s.name == name)
    setup = prepare(scenario)
    choice = setup.plan.require()
    assert choice.model is not None
    worlds = [setup.world(seed, i) for i in range(draws)]
    picks = [
        _hindsight_pick(setup.every, w, setup.deadline, setup.cap, setup.unguarded(w))
        for w in worlds
    ]
    deadline, cap = setup.deadline, setup.cap

    def guarded(o: PlanOption, workers: int, world: World, guard: bool = True) -> Outcome:
        run = _runs(o, setup.ondemand)[0]
        return simulate(run, workers, world, deadline_s=deadline, guard=guard, cap=cap)

    m = choice.model
    startup_usd = m.usd_per_hour * choice.workers * m.effective_startup_s / 3600.0
    print(f"## {scenario.name} ({scenario.note}), {draws} worlds\n")
    print(
        f"The plan: {choice.describe()} on {choice.where()} = {_gpus(choice, choice.workers)} "
        f"GPUs, ${choice.cost_usd:.2f} planned, of which ${startup_usd:.2f} "
        f"({startup_usd / choice.cost_usd:.0%}) is start-up ({m.effective_startup_s:.0f} s a "
        f"worker); P(on time) {choice.p_on_time:.3f} with throughput σ {m.rate_sigma:.2f} "
        f"({choice.throughput_source})\n"
    )
    print("### 1. Hindsight's picks\n\n| pick | worlds | GPUs | mean $ |\n|---|---|---|---|")
    tally: Counter[tuple[str, int, int]] = Counter()
    spend: dict[tuple[str, int, int], list[float]] = {}
    for p in picks:
        if p is None:
            continue
        r = p.run
        key = (f"{r.accelerator}×{r.count} {'spot' if r.spot else 'on-demand'} on {r.cloud}",
               p.workers, r.count * p.workers)  # fmt: skip
        tally[key] += 1
        spend.setdefault(key, []).append(p.cost_usd)
    for key, n in tally.most_common():
        print(f"| {key[1]}× {key[0]} | {n} | {key[2]} | {statistics.mean(spend[key]):.2f} |")
    gpus = [p.run.count * p.workers for p in picks if p]
    print(
        f"\nHindsight used {statistics.median(gpus):g} GPUs (median; "
        f"{min(gpus)}–{max(gpus)}) where the plan starts {_gpus(choice, choice.workers)}.\n"
    )

    print("### 2. Fixed rules, guard on\n")
    print("| rule | planned P | on time | ÷ hindsight | guard added |\n|---|---|---|---|---|")
    # Every GPU count of the plan's GPU (hindsight mostly picks among them), then the
    # next best two others.
    ranked = [o for o in setup.plan.options if o.model is not None]
    same = [o for o in ranked if (o.accelerator, o.spot) == (choice.accelerator, choice.spot)]
    shown = same + [o for o in ranked if o not in same][:2]
    for o in shown:
        assert o.model is not None
        # The plan's GPU from one worker up (hindsight's picks are there); others near theirs.
        first = 1 if o in same else max(1, o.workers - 3)
        for w in range(first, max(o.workers, 5 if o in same else 0) + 2):
            outs = [guarded(o, w, world) for world in worlds]
            p = p_on_time(o.model, w, deadline)
            mark = " (planned)" if w == o.workers and o.feasible else ""
            line = _line(f"{w}× {o.describe().split('× ', 1)[-1]}{mark}", outs, picks, deadline)
            print(line.replace(" | ", f" | {p:.3f} | ", 1))

    print("\n### 3. What knowing buys (the planner's own rule)\n")
    print("| told | guard | on time | ÷ hindsight | guard added |\n|---|---|---|---|---|")
    for label, know in KNOWLEDGE:
        for guard in (True, False):
            outs = []
            for world in worlds:
                rule = planner_rule(setup, world, know)
                assert rule is not None, "no option meets the target in this world"
                outs.append(guarded(rule[0], rule[1], world, guard))
            line = _line(label, outs, picks, deadline)
            print(line.replace(" | ", f" | {'on' if guard else 'off'} | ", 1))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--scenario", default="embed-30m", choices=[s.name for s in SCENARIOS])
    parser.add_argument("--draws", type=int, default=60)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args(argv)
    explain(args.scenario, args.draws, args.seed)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
