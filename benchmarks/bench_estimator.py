"""The throughput estimator against the published figures it was not shown.

Every published row of ``pricing/data/throughput_refs.csv`` (offline throughput, with
its source) is predicted from the *other* rows, as the planner would predict it, and the
prediction is compared with the published value. Two ways of holding out:

- ``row``: the row alone (its neighbours at other shapes, GPUs and precisions stay);
- ``gpu``: every row of that model on that accelerator (the estimate must come from
  other GPUs: the planner's case for a GPU nobody has published for).

The estimator's :data:`pricing.PUBLISHED_DERATE` and :data:`pricing.PUBLISHED_BAND` are
the median and the 5 %/95 % quantiles of actual ÷ predicted under ``gpu`` hold-out,
before derating; the table shows what the data say beside what the code holds, and the
held-out error (median and 90th percentile of |log ratio|, as a percentage) with them.

    python benchmarks/bench_estimator.py [--rows]
"""

from __future__ import annotations

import argparse
import math
import os
import statistics
import sys
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import pricing  # noqa: E402
from pricing import Figure  # noqa: E402
from scheduler.errors import SkybatchError  # noqa: E402


@dataclass(frozen=True)
class HeldOut:
    figure: Figure
    actual: float  # rows/s published
    raw: float  # rows/s predicted before derating
    kind: str


def _actual(fig: Figure) -> tuple[float, float, float] | None:
    """(rows/s, input tokens, output tokens) of a figure with a known shape."""
    if fig.task == "generate":
        if not fig.output_tokens or not fig.tokens_per_s:
            return None
        i_tok = fig.input_tokens if fig.input_tokens else 250.0
        return fig.tokens_per_s / fig.output_tokens, i_tok, fig.output_tokens
    if fig.rows_per_s and fig.input_tokens:
        return fig.rows_per_s, fig.input_tokens, 0.0
    return None


def _same_row(a: Figure, b: Figure) -> bool:
    return a is b


def _same_gpu(a: Figure, b: Figure) -> bool:
    return a.model_key == b.model_key and a.accelerator == b.accelerator


def held_out(figures: Sequence[Figure], hold: Callable[[Figure, Figure], bool]) -> list[HeldOut]:
    """Each figure predicted from the figures ``hold`` does not tie to it."""
    out = []
    for fig in figures:
        got = _actual(fig)
        if got is None:
            continue
        rows, i_tok, o_tok = got
        rest = [f for f in figures if f.model_key == fig.model_key and not hold(fig, f)]
        try:
            est = pricing.estimate_throughput(
                model=fig.model,
                engine=fig.engine,
                task=fig.task,
                accelerator=fig.accelerator,
                count=fig.count,
                input_tokens=i_tok,
                output_tokens=o_tok,
                precision=fig.precision,
                figures=rest,
            )
        except SkybatchError:
            continue
        if est.kind == "estimated" or est.rows_per_s <= 0:
            continue  # nothing published to scale from: the first-principles path
        out.append(HeldOut(fig, rows, est.rows_per_s / pricing.PUBLISHED_DERATE, est.kind))
    return out


def _quantile(values: Sequence[float], q: float) -> float:
    ordered = sorted(values)
    pos = q * (len(ordered) - 1)
    lo, hi = math.floor(pos), math.ceil(pos)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (pos - lo)


def fit(results: Sequence[HeldOut]) -> tuple[float, float, float]:
    """(derate, band low, band high): median and 5/95 % quantiles of actual / raw."""
    ratios = [r.actual / r.raw for r in results]
    derate = statistics.median(ratios)
    low = _quantile(ratios, 0.05) / derate
    high = _quantile(ratios, 0.95) / derate
    return derate, low, high


def errors(results: Sequence[HeldOut], derate: float) -> tuple[float, float, float]:
    """Median and p90 of |error| (as %, log-symmetric) and the share within ±30 %."""
    errs = [abs(math.log(r.actual / (r.raw * derate))) for r in results]
    within = sum(1 for e in errs if e <= math.log(1.3)) / len(errs)
    return (
        100 * math.expm1(statistics.median(errs)),
        100 * math.expm1(_quantile(errs, 0.9)),
        100 * within,
    )


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--rows", action="store_true", help="print every held-out row")
    args = p.parse_args(argv)
    os.environ.setdefault("SKYBATCH_HOME", tempfile.mkdtemp(prefix="skybatch-bench-"))
    figures = pricing.published_figures()
    code = pricing.PUBLISHED_DERATE
    print(f"{len(figures)} published figures; held out one at a time\n")
    print(
        f"{'hold-out':<8} {'rows':>5} {'derate':>7} {'band 5%':>8} {'band 95%':>9} "
        f"{'med err':>8} {'p90 err':>8} {'±30%':>6} {'med err (code)':>15}"
    )
    fitted: tuple[float, float, float] | None = None
    for name, hold in (("row", _same_row), ("gpu", _same_gpu)):
        results = held_out(figures, hold)
        d, lo, hi = fit(results)
        med, p90, within = errors(results, d)
        med_code, _, _ = errors(results, code)
        print(
            f"{name:<8} {len(results):>5} {d:>7.2f} {lo:>8.2f} {hi:>9.2f} "
            f"{med:>7.0f}% {p90:>7.0f}% {within:>5.0f}% {med_code:>14.0f}%"
        )
        if name == "gpu":
            fitted = (d, lo, hi)
        if args.rows:
            for r in results:
                f = r.figure
                print(
                    f"    {f.model_key:<16} {f.accelerator}x{f.count} {f.precision or '-':<5} "
                    f"{f.engine[:28]:<28} actual {r.actual:9.2f} predicted "
                    f"{r.raw * d:9.2f} ({r.kind})"
                )
    assert fitted is not None
    lo_code, hi_code = pricing.PUBLISHED_BAND
    print(
        f"\nin the code: derate {code:.2f}, band {lo_code:.2f}..{hi_code:.2f}; "
        f"fitted (gpu hold-out): derate {fitted[0]:.2f}, band {fitted[1]:.2f}..{fitted[2]:.2f}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
