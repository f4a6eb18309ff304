"""Start-up of the command line, side by side with ``python -c pass``.

Targets (issue 9): ``skybatch --help`` imports none of pydantic, yaml, pyarrow, duckdb, sky,
torch, textual; ``skybatch plan RECIPE --json`` in a new process with an existing pricing
database ≤ 0.3 s; the first plan on a fresh ``SKYBATCH_HOME`` (the database created,
migrated and seeded) ≤ 1 s.

Every command runs in a new process (``python -m scheduler.cli``, what the ``skybatch``
console script does), the commands interleaved round by round so that a busy neighbour
on a shared machine slows them all alike. The table gives the median and the fastest of
``--repeat`` rounds, and each median as a ratio to the interpreter's own start-up. It runs
with ``HF_HUB_OFFLINE=1``: a plan may otherwise ask the Hub for the model's
``config.json``, and the figure would measure the network.

The existing database is created, then left ``pricing._readcache.RACY_S`` before one
untimed round, so that its plans read the read cache (as the plan of any database not
written in the last two seconds does). Imports use
bytecode, as an installed skybatch does: ``PYTHONDONTWRITEBYTECODE`` is dropped and the
``.pyc`` files go to a temporary ``PYTHONPYCACHEPREFIX``, written by one untimed round.
``--source`` keeps ``PYTHONDONTWRITEBYTECODE`` as the environment has it (a checkout
imported with it set compiles every project module in every process).

    python benchmarks/bench_startup.py [--repeat 7] [--recipe recipes/summarize-llama-10m.yaml]

``--repo PATH`` measures another checkout with the same script, and ``--baseline PATH``
adds one (say, the commit before a change) timed in the same rounds, with the ratio of
their medians: the commands run in each checkout, with it first on ``PYTHONPATH``.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
HEAVY = ("pydantic", "yaml", "pyarrow", "duckdb", "sky", "torch", "textual")
PROBE = (
    "import sys\n"
    "from scheduler.cli import main\n"
    "try:\n"
    "    main(['--help'])\n"
    "except SystemExit:\n"
    "    pass\n"
    f"print(','.join(sorted({{m.split('.')[0] for m in sys.modules}} & set({HEAVY!r}))))\n"
)


def _time(argv: list[str], env: dict[str, str], cwd: Path) -> float:
    start = time.perf_counter()
    subprocess.run(argv, env=env, cwd=cwd, check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - start


class Checkout:
    """One checkout's commands, environment and its own homes under ``work``."""

    def __init__(self, repo: Path, work: Path, *, source: bool) -> None:
        self.repo, self.work = repo, work
        self.cli = [sys.executable, "-m", "scheduler.cli"]
        work.mkdir(parents=True)
        (work / "home").mkdir()
        env = {**os.environ, "HOME": str(work / "home"), "SKYBATCH_HOME": str(work / "existing")}
        # Offline: a plan may ask the Hub for a model's config.json: that measures the network.
        env["HF_HUB_OFFLINE"] = "1"
        # `python -m` and `-c` put the working directory first on sys.path: both are `repo`.
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(repo), env.get("PYTHONPATH")]))
        if not source:
            env.pop("PYTHONDONTWRITEBYTECODE", None)
            env["PYTHONPYCACHEPREFIX"] = str(work / "pycache")
        self.env = env

    def cases(self, recipe: str) -> dict[str, tuple[list[str], bool]]:
        plan = [*self.cli, "plan", recipe, "--json"]
        return {
            "python -c pass": ([sys.executable, "-c", "pass"], False),
            "skybatch --help": ([*self.cli, "--help"], False),
            "plan --json, existing database": (plan, False),
            "plan --json, fresh SKYBATCH_HOME": (plan, True),
        }

    def run(self, argv: list[str], fresh: str | None = None) -> float:
        env = self.env if fresh is None else {**self.env, "SKYBATCH_HOME": str(self.work / fresh)}
        return _time(argv, env, self.repo)

    def heavy(self) -> str:
        out = subprocess.run([sys.executable, "-c", PROBE], env=self.env, cwd=self.repo,
                             check=True, capture_output=True, text=True)  # fmt: skip
        return out.stdout.splitlines()[-1] or "none"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=7)
    ap.add_argument("--recipe", default="recipes/summarize-llama-10m.yaml")
    ap.add_argument("--repo", type=Path, default=ROOT, help="the checkout to measure")
    ap.add_argument(
        "--baseline", type=Path, help="another checkout, timed in the same rounds, side by side"
    )
    ap.add_argument(
        "--source", action="store_true", help="keep PYTHONDONTWRITEBYTECODE (no .pyc files)"
    )
    args = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="bench-startup-"))
    repos = [args.repo.resolve()] + ([args.baseline.resolve()] if args.baseline else [])
    checkouts = [Checkout(r, work / str(i), source=args.source) for i, r in enumerate(repos)]
    cases = checkouts[0].cases(args.recipe)
    targets = {"plan --json, existing database": 0.3, "plan --json, fresh SKYBATCH_HOME": 1.0}
    times: list[dict[str, list[float]]] = [{name: [] for name in cases} for _ in checkouts]
    try:
        for c in checkouts:
            c.run([*c.cli, "pricing", "show", "--gpu", "H100"])  # creates the database
        written = time.time()
        heavy = [c.heavy() for c in checkouts]
        time.sleep(max(0.0, written + 2.5 - time.time()))  # pricing._readcache.RACY_S
        for c in checkouts:  # untimed: writes the .pyc files, the read cache
            for argv, fresh in c.cases(args.recipe).values():
                c.run(argv, "fresh-warm" if fresh else None)
        for i in range(args.repeat):
            pairs = list(zip(checkouts, times, strict=True))
            for c, t in pairs[:: -1 if i % 2 else 1]:  # alternate who goes first
                for name, (argv, fresh) in c.cases(args.recipe).items():
                    t[name].append(c.run(argv, f"fresh{i}" if fresh else None))
        cached = [(c.work / "existing" / "skybatch.duckdb.readcache").exists() for c in checkouts]
    finally:
        shutil.rmtree(work, ignore_errors=True)

    imports = "source compiled (PYTHONDONTWRITEBYTECODE)" if args.source else "bytecode"
    print(f"start-up, {args.repeat} rounds, new process each, checkouts interleaved "
          f"({os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f}; imports from "
          f"{imports})")  # fmt: skip
    for c, t, h, rc in zip(checkouts, times, heavy, cached, strict=True):
        base = statistics.median(t["python -c pass"])
        print(f"\n{c.repo} (read cache {'used' if rc else 'absent'})")
        print(f"{'command':34} {'median s':>9} {'fastest s':>10} {'÷ python':>9} {'target s':>9}")
        for name, ts in t.items():
            med = statistics.median(ts)
            target = targets.get(name)
            mark = "" if target is None else f"{target:.1f} {'ok' if med <= target else 'MISSED'}"
            print(f"{name:34} {med:9.3f} {min(ts):10.3f} {med / base:8.1f}× {mark:>9}")
        print(f"heavy modules loaded by `skybatch --help`: {h}")
    if len(checkouts) == 2:
        print(f"\n{'command':34} {'baseline ÷ this (medians)':>26}")
        for name in cases:
            ratio = statistics.median(times[1][name]) / statistics.median(times[0][name])
            print(f"{name:34} {ratio:25.2f}×")


if __name__ == "__main__":
    main()
