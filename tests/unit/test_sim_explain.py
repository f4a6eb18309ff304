"""The simulation's hindsight and its explanation (benchmarks/sim_planner.py, sim_explain.py)."""

from __future__ import annotations

import importlib.util
import re
import sys
from pathlib import Path
from types import ModuleType

import pytest

from scheduler.plan import CandidateModel

BENCHMARKS = Path(__file__).resolve().parents[2] / "benchmarks"


def _load(name: str) -> ModuleType:
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, BENCHMARKS / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


def _run(sim: ModuleType, *, rows_per_s: float, usd_per_hour: float, spot: bool) -> object:
    model = CandidateModel(
        rows=200_000,
        rows_per_s=rows_per_s,
        rate_sigma=0.2,
        startup_s=240.0,
        startup_sigma=0.35,
        preemptions_per_hour=0.5 if spot else 0.0,
        usd_per_hour=usd_per_hour,
        rows_per_shard=10_000,
        capacity_wait_s=60.0 if spot else 0.0,
    )
    return sim.Run(
        model=model,
        accelerator="A" if rows_per_s < 50 else "B",
        count=1,
        cloud="c",
        spot=spot,
        usd_per_hour=usd_per_hour,
        ondemand_usd_per_hour=usd_per_hour * 2,
        increment_s=60.0,
    )


def test_hindsight_pick_is_the_exhaustive_optimum() -> None:
    sim = _load("sim_planner")
    runs = [
        _run(sim, rows_per_s=20.0, usd_per_hour=1.0, spot=True),
        _run(sim, rows_per_s=20.0, usd_per_hour=2.0, spot=False),
        _run(sim, rows_per_s=90.0, usd_per_hour=4.0, spot=True),
    ]
    deadline, cap = 3 * 3600.0, 20
    for seed in range(6):
        world = sim.make_world(seed, ["A", "B"], ["c"])

        def simulate(r: object, w: int, world: object = world) -> object:
            return sim.simulate(r, w, world, deadline_s=deadline, guard=False, cap=cap)

        met = [
            (out.cost_usd, i, w)
            for i, r in enumerate(runs)
            for w in range(1, cap + 1)
            if (out := simulate(r, w)).finish_s <= deadline
        ]
        pick = sim._hindsight_pick(runs, world, deadline, cap, simulate)
        assert pick is not None and met
        cost = min(met)[0]
        assert pick.cost_usd == pytest.approx(cost)
        assert simulate(pick.run, pick.workers).cost_usd == pytest.approx(cost)
        assert sim._hindsight(runs, world, deadline, cap, simulate) == pick.cost_usd


@pytest.mark.slow
def test_told_nothing_reproduces_the_simulation(capsys: pytest.CaptureFixture[str]) -> None:
    sim = _load("sim_planner")
    explain = _load("sim_explain")
    scenario = next(s for s in sim.SCENARIOS if s.name == "embed-30m")
    _, ratio, _ = sim.run_scenario(scenario, 3, 1)["plan"]
    assert explain.main(["--scenario", "embed-30m", "--draws", "3"]) == 0
    out = capsys.readouterr().out
    for section in ("### 1. Hindsight's picks", "### 2. Fixed rules", "### 3. What knowing"):
        assert section in out
    told_nothing = re.search(
        r"\| nothing \(the shipped plan's rule\) \| on \| \d+% \| ([\d.]+)×", out
    )
    assert told_nothing is not None
    assert float(told_nothing.group(1)) == pytest.approx(ratio, abs=0.005)
