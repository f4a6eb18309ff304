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

``--repo PATH`` measures another checkout with the same script (say, the commit before a
change): the commands run there, with that checkout first on ``PYTHONPATH``.
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


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=7)
    ap.add_argument("--recipe", default="recipes/summarize-llama-10m.yaml")
    ap.add_argument("--repo", type=Path, default=ROOT, help="the checkout to measure")
    ap.add_argument(
        "--source", action="store_true", help="keep PYTHONDONTWRITEBYTECODE (no .pyc files)"
    )
    args = ap.parse_args()
    repo = args.repo.resolve()

    py = sys.executable
    cli = [py, "-m", "scheduler.cli"]
    work = Path(tempfile.mkdtemp(prefix="bench-startup-"))
    env = {**os.environ, "HOME": str(work / "home"), "SKYBATCH_HOME": str(work / "existing")}
    # Offline: a plan may ask the Hub for a model's config.json, which measures the network.
    env["HF_HUB_OFFLINE"] = "1"
    # `python -m` and `-c` put the working directory first on sys.path: both are `repo`.
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(repo), env.get("PYTHONPATH")]))
    if not args.source:
        env.pop("PYTHONDONTWRITEBYTECODE", None)
        env["PYTHONPYCACHEPREFIX"] = str(work / "pycache")
    (work / "home").mkdir()
    try:
        subprocess.run([*cli, "pricing", "show", "--gpu", "H100"], env=env, cwd=repo,
                       check=True, capture_output=True)  # fmt: skip
        written = time.time()
        heavy = subprocess.run([py, "-c", PROBE], env=env, cwd=repo, check=True,
                               capture_output=True, text=True).stdout.splitlines()[-1]  # fmt: skip

        cases = {
            "python -c pass": ([py, "-c", "pass"], None),
            "skybatch --help": ([*cli, "--help"], None),
            "plan --json, existing database": ([*cli, "plan", args.recipe, "--json"], None),
            "plan --json, fresh SKYBATCH_HOME": ([*cli, "plan", args.recipe, "--json"], "fresh"),
        }
        targets = {"plan --json, existing database": 0.3, "plan --json, fresh SKYBATCH_HOME": 1.0}
        times: dict[str, list[float]] = {name: [] for name in cases}
        time.sleep(max(0.0, written + 2.5 - time.time()))  # pricing._readcache.RACY_S
        for argv, fresh in cases.values():  # untimed: writes the .pyc files, the read cache
            run_env = {**env, "SKYBATCH_HOME": str(work / "fresh-warm")} if fresh else env
            _time(argv, run_env, repo)
        for i in range(args.repeat):
            for name, (argv, fresh) in cases.items():
                run_env = env
                if fresh:
                    run_env = {**env, "SKYBATCH_HOME": str(work / f"fresh{i}")}
                times[name].append(_time(argv, run_env, repo))
        cached = (work / "existing" / "skybatch.duckdb.readcache").exists()
    finally:
        shutil.rmtree(work, ignore_errors=True)

    base = statistics.median(times["python -c pass"])
    imports = "source compiled (PYTHONDONTWRITEBYTECODE)" if args.source else "bytecode"
    print(f"{repo.name}: start-up, {args.repeat} rounds, new process each ({os.cpu_count()} CPUs, "
          f"load average {os.getloadavg()[0]:.1f}; imports from {imports}; "
          f"read cache {'used' if cached else 'absent'})")  # fmt: skip
    print(f"{'command':34} {'median s':>9} {'fastest s':>10} {'÷ python':>9} {'target s':>9}")
    for name, ts in times.items():
        med = statistics.median(ts)
        target = targets.get(name)
        mark = "" if target is None else f"{target:.1f} {'ok' if med <= target else 'MISSED'}"
        print(f"{name:34} {med:9.3f} {min(ts):10.3f} {med / base:8.1f}× {mark:>9}")
    print(f"heavy modules loaded by `skybatch --help`: {heavy or 'none'}")


if __name__ == "__main__":
    main()
