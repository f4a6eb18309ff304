"""How much does skybatch cost over plain sentence-transformers, on this machine?

Measured side by side in one run, on the same rows and batch size:

* ``skybatch run`` with one local worker (MiniLM embeddings, the demo recipe's settings),
* ``SentenceTransformer.encode`` called directly in one process,

each as rows/s with the model load excluded (steady state) and included (wall clock of
the whole process, Python start-up and imports too), and the ratio skybatch ÷ direct
(target: ≥ 0.95 in steady state). skybatch runs twice: with ``model.batch_size`` equal to
the direct batch size, and with a window of a whole shard (``model.batch_size`` =
rows per shard, ``options.micro_batch_size`` = the direct batch size), where the engine
sorts a whole shard by length as ``encode`` sorts all rows; the forward passes have the
same size on every side. Both sides run as fresh subprocesses with the same
thread count, alternating, ``--repeats`` times; the table shows the median.

Steady state for skybatch is taken from the store, not guessed: from the start of the
first shard (its commit time minus its ``seconds``) to the last commit, so reading input,
writing Parquet and committing markers are all inside the figure. For the direct call it
is the time of ``encode`` over all rows.

Then the store's own per-shard overhead (claim + write output + verify + commit, in ms)
is measured on the store API with a shard of the same size (ids + 384-float embeddings).

Usage::

    python benchmarks/bench_local.py                 # demo data, batch 64, 500 rows/shard
    python benchmarks/bench_local.py --rows 1000 --repeats 3 --json

The rows are ``recipes/data/sentences.jsonl`` when it exists (the demo data set), else
generated sentences of varied length.

Measured 2026-11-23 on the 2-CPU development VM (shared, load average ~4), all 4,000 demo
rows, 500 rows/shard, batch 64, ``--threads 1 --repeats 5``, median::

    rows/s                       ST.encode   skybatch      skybatch+window
    steady state (load excl.)      149.5     144.0 (0.96)  143.2 (0.96)
    wall clock (load incl.)        120.6     119.8 (0.99)  121.1 (1.00)
    per CPU second (load incl.)    123.2     119.5 (0.97)  124.8 (1.01)
    store per-shard overhead: claim 0.2 ms, write 14.4 ms, verify 1.6 ms, commit 1.1 ms

Before the worker cut shards into length-sorted batches, the plain run reached 0.82-0.84
of ``encode`` in steady state: ``encode`` sorts all its input by length, and batches of
64 rows in file order carry more padding.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
DEMO_DATA = REPO / "recipes" / "data" / "sentences.jsonl"
MODEL = "sentence-transformers/all-MiniLM-L6-v2"


# -- the rows ---------------------------------------------------------------------------------


def _generated_rows(n: int) -> list[dict[str, Any]]:
    rng = random.Random(0)
    words = "the a river city market engineer built quietly storm bridge data model winter"
    words += " children learned music across old new slowly because after every small large"
    rows = []
    for i in range(n):
        text = " ".join(rng.choices(words.split(), k=rng.randint(4, 40))).capitalize() + "."
        rows.append({"id": f"g{i}", "text": text})
    return rows


def load_rows(n: int | None) -> tuple[list[dict[str, Any]], str]:
    """The benchmark's rows and where they come from."""
    if DEMO_DATA.exists():
        rows = []
        with DEMO_DATA.open(encoding="utf-8") as f:
            for line in f:
                if line.strip():
                    rows.append(json.loads(line))
                if n is not None and len(rows) >= n:
                    break
        return rows, str(DEMO_DATA.relative_to(REPO))
    return _generated_rows(n or 3000), "generated sentences"


# -- the direct baseline (child process) ------------------------------------------------------


def direct_child(data: str, batch_size: int) -> None:
    """Load MiniLM and encode every row; print the timings as one JSON line."""
    t0 = time.perf_counter()
    from sentence_transformers import SentenceTransformer

    from scheduler.engines._models import resolve_model

    texts = [json.loads(line)["text"] for line in Path(data).read_text().splitlines() if line]
    model = SentenceTransformer(str(resolve_model(MODEL).path), device="cpu")
    t1 = time.perf_counter()
    vectors = model.encode(
        texts, batch_size=batch_size, normalize_embeddings=True, show_progress_bar=False
    )
    t2 = time.perf_counter()
    print(json.dumps({"load_s": t1 - t0, "encode_s": t2 - t1, "rows": len(vectors)}))


def _children_cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def run_direct(data: Path, batch_size: int, env: dict[str, str]) -> dict[str, float]:
    """One direct-baseline process: wall seconds (start-up included) and encode seconds."""
    cmd = [sys.executable, __file__, "--direct-child", str(data), "--batch-size", str(batch_size)]
    cpu, started = _children_cpu_s(), time.perf_counter()
    out = subprocess.run(cmd, capture_output=True, text=True, env=env, check=True)
    wall = time.perf_counter() - started
    child = json.loads(out.stdout.strip().splitlines()[-1])
    return {
        "rows": child["rows"],
        "wall_s": wall,
        "steady_s": child["encode_s"],
        "cpu_s": _children_cpu_s() - cpu,
    }


# -- skybatch run ---------------------------------------------------------------------------


def write_recipe(
    path: Path, data: Path, batch_size: int, rows_per_shard: int, micro: int | None = None
) -> Path:
    """A copy of the demo recipe pointed at the benchmark rows."""
    options: dict[str, Any] = {"normalize": True, "device": "cpu"}
    if micro is not None:
        options["micro_batch_size"] = micro
    recipe = {
        "name": "bench-minilm",
        "input": {"path": str(data), "format": "jsonl", "id_column": "id", "text_column": "text"},
        "task": "embed",
        "model": {
            "engine": "torch",
            "name": MODEL,
            "batch_size": batch_size,
            "options": options,
        },
        "shards": {"rows_per_shard": rows_per_shard},
    }
    path.write_text(json.dumps(recipe))  # JSON is YAML
    return path


def run_skybatch(recipe: Path, store: Path, run_id: str, env: dict[str, str]) -> dict[str, float]:
    """One ``skybatch run --workers 1``: wall seconds and the steady-state span from the store."""
    from scheduler.store import RunStore

    cmd = [sys.executable, "-m", "scheduler.cli", "run", str(recipe), "--workers", "1"]
    cmd += ["--store", str(store), "--run-id", run_id, "--json"]
    cpu, started = _children_cpu_s(), time.perf_counter()
    out = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=REPO)
    wall = time.perf_counter() - started
    cpu = _children_cpu_s() - cpu  # the CLI waits for its worker, so this includes it
    if out.returncode != 0:
        raise SystemExit(f"skybatch run failed ({out.returncode}): {out.stderr.strip()[-2000:]}")
    summary = json.loads(out.stdout)
    markers = list(RunStore(str(store), run_id).markers().values())
    ends = [datetime.fromisoformat(m.committed_at).timestamp() for m in markers]
    starts = [end - m.seconds for end, m in zip(ends, markers, strict=True)]
    return {
        "rows": float(summary["rows_out"]),
        "wall_s": wall,
        "steady_s": max(ends) - min(starts),
        "shards": float(len(markers)),
        "busy_s": sum(m.seconds for m in markers),
        "cpu_s": cpu,
    }


# -- the store's per-shard overhead --------------------------------------------------------


def store_overhead(folder: Path, rows_per_shard: int, shards: int) -> dict[str, float]:
    """Median ms per shard for claim, write output, verify and commit on a local store."""
    import pyarrow as pa

    from scheduler.store import DoneMarker, RunStore, digest_ids

    store = RunStore(str(folder / "overhead"), "overhead-bench")
    manifest = [
        {"shard_id": f"{i:05d}", "file": "x", "offset": 0, "rows": rows_per_shard}
        for i in range(shards)
    ]
    store.create({"input_fingerprint": "bench"}, manifest)
    rng = random.Random(1)
    ids = [f"r{i}" for i in range(rows_per_shard)]
    table = pa.table(
        {
            "id": ids,
            "embedding": [[rng.random() for _ in range(384)] for _ in ids],
            "model_revision": ["local"] * rows_per_shard,
        }
    )
    parts: dict[str, list[float]] = {"claim": [], "write": [], "verify": [], "commit": []}
    for shard in manifest:
        t0 = time.perf_counter()
        lease = store.claim(shard["shard_id"], "bench-worker", ttl_s=300)
        assert lease is not None
        t1 = time.perf_counter()
        out = store.write_output(lease, table)
        t2 = time.perf_counter()
        store.verify(out)
        t3 = time.perf_counter()
        marker = DoneMarker(
            shard_id=lease.shard_id,
            attempt=lease.attempt,
            attempt_id=lease.attempt_id,
            worker=lease.worker,
            out_file=out.path,
            out_size=out.size,
            out_sha256=out.sha256,
            dead_file=None,
            rows_in=rows_per_shard,
            rows_out=rows_per_shard,
            rows_dead=0,
            ids_digest=digest_ids(ids),
        )
        if not store.commit(marker):
            raise SystemExit("store overhead: a commit on a fresh shard was refused")
        t4 = time.perf_counter()
        for key, seconds in zip(parts, (t1 - t0, t2 - t1, t3 - t2, t4 - t3), strict=True):
            parts[key].append(seconds * 1000)
    result = {f"{k}_ms": statistics.median(v) for k, v in parts.items()}
    totals = [sum(p) for p in zip(*parts.values(), strict=True)]
    result["total_ms"] = statistics.median(totals)
    return result


# -- main ---------------------------------------------------------------------------------


def _median(runs: list[dict[str, float]], key: str) -> float:
    return statistics.median(r[key] for r in runs)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=None, help="rows to use (default: all)")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--rows-per-shard", type=int, default=500)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--overhead-shards", type=int, default=20)
    parser.add_argument(
        "--threads", type=int, default=None, help="torch threads on both sides (default: CPUs)"
    )
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument("--direct-child", metavar="DATA", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.direct_child:
        direct_child(args.direct_child, args.batch_size)
        return

    rows, source = load_rows(args.rows)
    load_before = os.getloadavg()[0]
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")]))
    # Same thread count on both sides (the local backend sets this for one worker too).
    env["OMP_NUM_THREADS"] = str(args.threads or os.cpu_count() or 1)
    b, window = args.batch_size, args.rows_per_shard
    sides = {
        "ST.encode": f"SentenceTransformer.encode(all rows, batch_size={b})",
        "skybatch": f"skybatch run -w 1, model.batch_size {b}",
        "skybatch+window": f"skybatch run -w 1, model.batch_size {window}, micro_batch_size {b}",
    }
    runs: dict[str, list[dict[str, float]]] = {side: [] for side in sides}
    with tempfile.TemporaryDirectory(prefix="skybatch-bench-") as tmp:
        folder = Path(tmp)
        data = folder / "rows.jsonl"
        data.write_text("".join(json.dumps(r) + "\n" for r in rows))
        recipes = {
            "skybatch": write_recipe(folder / "plain.yaml", data, b, window),
            "skybatch+window": write_recipe(folder / "window.yaml", data, window, window, b),
        }
        for i in range(args.repeats):
            # Rotate the order so drift in machine load hits every side alike.
            names = list(sides)
            for side in names[i % 3 :] + names[: i % 3]:
                if side == "ST.encode":
                    runs[side].append(run_direct(data, b, env))
                else:
                    run_id = f"bench-{side.replace('+', '-')}-{i}"
                    runs[side].append(run_skybatch(recipes[side], folder / "runs", run_id, env))
                # Progress on stderr, so a long run shows (and keeps) its figures as it goes.
                print(f"repeat {i + 1} {side}: {json.dumps(runs[side][-1])}", file=sys.stderr)
        overhead = store_overhead(folder, args.rows_per_shard, args.overhead_shards)

    n = len(rows)
    rates = {
        side: {
            # CPU seconds (load included) are steadier than wall time on a shared machine.
            key: n / _median(runs[side], f"{key}_s")
            for key in ("steady", "wall", "cpu")
        }
        for side in sides
    }
    base = rates["ST.encode"]
    ratios = {
        side: {key: rates[side][key] / base[key] for key in base}
        for side in sides
        if side != "ST.encode"
    }
    figures = {
        "rows": n,
        "source": source,
        "batch_size": b,
        "rows_per_shard": window,
        "repeats": args.repeats,
        "threads": int(env["OMP_NUM_THREADS"]),
        "cpus": os.cpu_count(),
        "load_avg_1m": [round(load_before, 2), round(os.getloadavg()[0], 2)],
        "sides": sides,
        "rows_per_s": rates,
        "ratios": ratios,
        "store_overhead_ms": overhead,
        "runs": runs,
    }
    if args.json:
        print(json.dumps(figures, indent=2))
        return
    print(
        f"{n} rows ({source}), {window} rows/shard, {figures['threads']} threads, median of "
        f"{args.repeats}; load average {load_before:.1f} -> {os.getloadavg()[0]:.1f} "
        f"on {os.cpu_count()} CPUs"
    )
    for side, what in sides.items():
        print(f"  {side:16} {what}")
    print(f"\n{'rows/s':28}" + "".join(f"{side:>18}" for side in sides))
    labels = {
        "steady": "steady state (load excl.)",
        "wall": "wall clock (load incl.)",
        "cpu": "per CPU second (load incl.)",
    }
    for key, label in labels.items():
        cells = "".join(
            f"{rates[side][key]:>10.1f}"
            + (f" ({ratios[side][key]:.2f})" if side in ratios else " " * 7)
            + " "
            for side in sides
        )
        print(f"{label:28}{cells}")
    print("(ratio to ST.encode in brackets; target >= 0.95 in steady state)")
    print(
        "store per-shard overhead: "
        + ", ".join(f"{k.removesuffix('_ms')} {v:.1f} ms" for k, v in overhead.items())
    )


if __name__ == "__main__":
    main()
