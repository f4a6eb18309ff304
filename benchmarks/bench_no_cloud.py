"""How long ``skybatch launch`` takes to say "no cloud is enabled", side by side.

Issue 14 measured 27-49 s for that answer: SkyPilot's local API server was started to be
asked, and its answer waited for a request process of its own. ``launch`` now reads
SkyPilot's cached enabled clouds and runs SkyPilot's own compute check in its own process,
and answers without a server when both say no cloud. The other row forces the server path
the way a user does, with ``SKYPILOT_API_SERVER_ENDPOINT`` set (an endpoint set always
goes to its server), on the same machine, interleaved round by round, so a busy neighbour
slows both alike. ``python -c "import sky"`` is the floor either path pays.

Each launch runs in a new process with a fresh HOME and SkyPilot runtime folder (nothing
cached, as a new user has) and a port of its own, and must end with the one-line answer
and exit code 5; the table says whether a server was started (its log exists).

    python benchmarks/bench_no_cloud.py [--repeat 3]

About a minute per round on two shared cores, almost all of it the server path.
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RECIPE = (
    "name: cloudy\n"
    'input: {path: "s3://bucket/in.jsonl", id_column: id}\n'
    "task: score\n"
    'model: {engine: python, name: "fn.py:f"}\n'
    "store: s3://bucket/runs\n"
)
ANSWER = "skybatch: error: no cloud is enabled for SkyPilot"


def _free_port() -> int:
    """A port below Linux's ephemeral range, free now (see tests/conftest.py)."""
    for _ in range(500):
        port = random.randrange(20_000, 32_000)
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
        return port
    raise RuntimeError("no free port in 20000-31999")


def _launch(work: Path, *, through_server: bool) -> tuple[float, bool]:
    """One launch in a fresh HOME: seconds, and whether an API server was started."""
    port = _free_port()
    home = Path(tempfile.mkdtemp(prefix="home-", dir=work))
    runtime = home / "sky-runtime"
    (home / "r.yaml").write_text(RECIPE)
    env = {
        **os.environ,
        "HOME": str(home),
        "SKYBATCH_HOME": str(home / ".skybatch"),
        "SKY_RUNTIME_DIR": str(runtime),
        "SKYPILOT_API_SERVER_LOCAL_PORT": str(port),
        "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])),
    }
    if through_server:
        env["SKYPILOT_API_SERVER_ENDPOINT"] = f"http://127.0.0.1:{port}"
    argv = [sys.executable, "-m", "scheduler.cli", "launch", "r.yaml", "--gpu", "L4",
            "--workers", "2", "--yes"]  # fmt: skip
    start = time.perf_counter()
    proc = subprocess.run(argv, cwd=home, env=env, capture_output=True, text=True, timeout=600)
    elapsed = time.perf_counter() - start
    last = (proc.stderr.strip().splitlines() or [""])[-1]
    if proc.returncode != 5 or not last.startswith(ANSWER):
        raise SystemExit(f"launch did not answer 'no cloud' (exit {proc.returncode}): {last}")
    return elapsed, (runtime / ".sky" / "api_server" / "server.log").exists()


def _import_sky(work: Path) -> float:
    env = {**os.environ, "HOME": str(work)}
    start = time.perf_counter()
    subprocess.run([sys.executable, "-c", "import sky"], env=env, check=True, capture_output=True)
    return time.perf_counter() - start


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()

    work = Path(tempfile.mkdtemp(prefix="bench-no-cloud-"))
    times: dict[str, list[float]] = {"through the server": [], "without a server": []}
    servers: dict[str, set[bool]] = {name: set() for name in times}
    floor: list[float] = []
    try:
        for _ in range(args.repeat):
            for name in times:
                elapsed, started = _launch(work, through_server=name == "through the server")
                times[name].append(elapsed)
                servers[name].add(started)
            floor.append(_import_sky(work))
    finally:
        shutil.rmtree(work, ignore_errors=True)

    slow = statistics.median(times["through the server"])
    print(f"`skybatch launch` without a cloud, {args.repeat} rounds, fresh HOME each "
          f"({os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f})")  # fmt: skip
    print(f"{'path':26} {'median s':>9} {'fastest s':>10} {'slowest s':>10} "
          f"{'÷ server':>9} {'server started':>15}")  # fmt: skip
    for name, ts in times.items():
        med = statistics.median(ts)
        started = "/".join("yes" if s else "no" for s in sorted(servers[name], reverse=True))
        print(f"{name:26} {med:9.1f} {min(ts):10.1f} {max(ts):10.1f} "
              f"{med / slow:8.2f}× {started:>15}")  # fmt: skip
    med, name = statistics.median(floor), 'python -c "import sky"'
    print(f"{name:26} {med:9.1f} {min(floor):10.1f} {max(floor):10.1f} "
          f"{med / slow:8.2f}× {'-':>15}")  # fmt: skip


if __name__ == "__main__":
    main()
