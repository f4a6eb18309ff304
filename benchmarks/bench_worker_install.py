"""What a cloud worker's ``setup`` installs: the whole CLI stack vs the slim worker set.

Builds the shipped wheel of this checkout, then in two fresh virtual environments installs
it the old way (``pip install 'skybatch.whl[cli,s3]'``: every CLI dependency, SkyPilot,
Textual, DuckDB, the API-server stack) and the way a task's ``setup`` does now (the
``worker`` + store extras' requirements, then the wheel ``--no-deps``), and prints the
time and the number of installed distributions side by side. Each install is run once
untimed first, so both read pip's cache (a VM downloads; the comparison is of installing).

    python benchmarks/bench_worker_install.py [--engine python|torch] [--store s3://b/r] [--once]
"""

from __future__ import annotations

import argparse
import shlex
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from scheduler.backends.skypilot import shipped_wheel, worker_extras


def _venv(folder: Path) -> Path:
    subprocess.run([sys.executable, "-m", "venv", str(folder)], check=True)
    return folder / "bin" / "python"


def _install(python: Path, args: list[str]) -> None:
    subprocess.run([str(python), "-m", "pip", "install", "--quiet", *args], check=True)


def _count(folder: Path) -> int:
    return len(list(folder.glob("lib/python*/site-packages/*.dist-info")))


def _measure(tmp: Path, name: str, steps: list[list[str]], once: bool) -> tuple[float, int]:
    for label in ("timed",) if once else ("warm", "timed"):
        folder = tmp / f"{name}-{label}"
        python = _venv(folder)
        started = time.perf_counter()
        for step in steps:
            _install(python, step)
        elapsed = time.perf_counter() - started
    return elapsed, _count(folder)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--engine", default="python", choices=["python", "torch", "vllm"])
    p.add_argument("--store", default="s3://bucket/runs")
    p.add_argument("--once", action="store_true", help="no untimed warm-up install (faster)")
    args = p.parse_args()
    wheel = shipped_wheel()
    extras = worker_extras(args.engine, args.store)
    store_extras = [e for e in extras if e != "worker"]
    # The shipped wheel's core requirements are the worker's; the CLI's are its extra `cli`.
    full = [[f"{wheel.path}[{','.join(['cli', *store_extras])}]"]]
    slim = [wheel.requirements(extras), ["--no-deps", str(wheel.path)]]
    print(f"wheel {wheel.path.name} ({wheel.digest[:12]}), extras {extras}")
    print("slim setup: " + " ".join(shlex.quote(r) for r in slim[0]))
    with tempfile.TemporaryDirectory(prefix="skybatch-bench-install-") as t:
        tmp = Path(t)
        after = _measure(tmp, "slim", slim, args.once)
        before = _measure(tmp, "full", full, args.once)
    print(f"{'install':<28}{'seconds':>10}{'packages':>10}")
    print(f"{'before: whole CLI stack':<28}{before[0]:>10.1f}{before[1]:>10}")
    print(f"{'after: worker set':<28}{after[0]:>10.1f}{after[1]:>10}")
    print(f"{'ratio before/after':<28}{before[0] / after[0]:>10.2f}{before[1] / after[1]:>10.2f}")


if __name__ == "__main__":
    main()
