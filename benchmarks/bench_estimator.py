"""The throughput estimator against the published figures it was not shown: every band it ships.

Every published row of ``pricing/data/throughput_refs.csv`` (offline throughput, with
its source) is predicted without itself, as the planner would predict it, and the
prediction is compared with the published value. One fit per path of
:func:`pricing.estimate_throughput`, each held out by construction:

- **published** (anchors of this model scaled by the roofline): ``row`` holds the row alone
  out (its neighbours at other shapes, GPUs and precisions stay); ``gpu`` every row of
  that model on that accelerator (the planner's case for a GPU nobody has published
  for). Fits :data:`pricing.PUBLISHED_DERATE` and :data:`pricing.PUBLISHED_BAND`.
- **rescaled** (a figure measured on this GPU, asked at another shape): every ordered
  pair of one benchmark's figures at two shapes on the same GPUs, the second predicted
  from the first alone. Fits ``RESCALED_BAND``.
- **scaled** (a figure measured on another GPU, carried over by the roofline): every
  ordered pair of figures from one benchmark (same model, engine, precision and shape,
  another GPU), the second predicted from the first alone. Fits ``SCALED_BAND``.
- **first principles** (no figure for the model: roofline x efficiency): every figure
  with a stated shape, predicted with no figure at all; decoders, encoders under the
  torch engine (sentence-transformers, a plain forward pass) and encoders under tuned
  runtimes apart. Fits ``FIRST_PRINCIPLES_*``, ``ENCODER_*`` and ``TUNED_ENCODER_*``.

Every fit is the same: the centre is the median of actual ÷ predicted in log space, the
band the 5 % and 95 % quantiles of actual ÷ (predicted x centre). Those quantiles because
the planner reads a band as the 5-95 % range of a log-normal throughput
(``scheduler.plan``'s ``sigma_from_band``): a band at them makes its P(on time) say what
the published figures say. Under 20 rows the band widens to the log-normal prediction
interval for one more row (``estimator_fits.fit_ratios``). The table shows what the data say beside what the code holds,
the held-out error (median and 90th percentile of |log ratio|, as a percentage), and how
many held-out rows the old fixed bands and the fitted ones cover (the fitted band's
coverage with each row left out of its own fit). The fits live in ``estimator_fits.py``;
``tests/unit/test_pricing_estimator.py`` pins the shipped constants to them.

    python benchmarks/bench_estimator.py [--rows]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from estimator_fits import (
    OLD_ENCODER,
    OLD_FIRST_PRINCIPLES,
    OLD_RESCALED,
    OLD_SCALED,
    coverage,
    cross_gpu_pairs,
    errors,
    first_principles,
    fit,
    fit_ratios,
    held_out,
    left_out_coverage,
    path_ratios,
    ratio_errors,
    same_gpu,
    same_row,
    shipped_fits,
)

import pricing
from pricing import Figure
from pricing._figures import engine_family


def _published_table(figures: Sequence[Figure], show_rows: bool) -> None:
    code = pricing.PUBLISHED_DERATE
    print(
        f"{'hold-out':<8} {'rows':>5} {'derate':>7} {'band 5%':>8} {'band 95%':>9} "
        f"{'med err':>8} {'p90 err':>8} {'±30%':>6} {'med err (code)':>15}"
    )
    fitted: tuple[float, float, float] | None = None
    for name, hold in (("row", same_row), ("gpu", same_gpu)):
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
        if show_rows:
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


def _paths_table(figures: Sequence[Figure], show_rows: bool) -> None:
    ratios = path_ratios(figures)
    code = shipped_fits()
    old = {
        "rescaled": OLD_RESCALED,
        "scaled": OLD_SCALED,
        "first principles": OLD_FIRST_PRINCIPLES,
        "encoder": OLD_ENCODER,
        "tuned encoder": OLD_ENCODER,
    }
    print(
        "\nthe other paths, each row predicted without itself "
        "(centre: efficiency; 1 when a figure of the model is rescaled)\n"
    )
    print(
        f"{'path':<17} {'rows':>5} {'centre':>7} {'band lo':>8} {'band hi':>9} "
        f"{'med err':>8} {'p90 err':>8} {'in the code':>20} {'old (fixed)':>18} "
        f"{'old covers':>11} {'fit covers':>11}"
    )
    for name, rs in ratios.items():
        centre, lo, hi = fit_ratios(rs)
        med, p90, _ = ratio_errors(rs, centre)
        c_centre, c_band = code[name]
        o_centre, o_band = old[name]
        print(
            f"{name:<17} {len(rs):>5} {centre:>7.3f} {lo:>8.2f} {hi:>9.2f} "
            f"{med:>7.0f}% {p90:>7.0f}% "
            f"{f'{c_centre:.2f} x{c_band[0]:.2f}..{c_band[1]:.2f}':>20} "
            f"{f'{o_centre:.2f} x{o_band[0]:.2f}..{o_band[1]:.2f}':>18} "
            f"{coverage(rs, o_centre, o_band):>10.0f}% {left_out_coverage(rs):>10.0f}%"
        )
    # The centre pools every engine; what each engine family reaches of the roofline:
    by_family: dict[tuple[str, str], list[float]] = {}
    for r in first_principles(figures):
        key = (r.kind, engine_family(r.figure.engine))
        by_family.setdefault(key, []).append(r.actual / r.raw)
    print(
        "\nfirst principles by engine family (rows, median share of the roofline): "
        + "; ".join(
            f"{kind} {family} {len(v)}, {statistics.median(v):.3f}"
            for (kind, family), v in sorted(by_family.items())
        )
    )
    if show_rows:
        for r in first_principles(figures):
            f = r.figure
            print(
                f"    {r.kind:<8} {f.model_key:<20} {f.accelerator}x{f.count} "
                f"{f.precision or '-':<5} {f.engine[:28]:<28} actual ÷ roofline "
                f"{r.actual / r.raw:6.3f}"
            )
        for p in cross_gpu_pairs(figures):
            print(f"    scaled   {p.label:<55} {p.engine[:24]:<24} {p.actual / p.predicted:6.2f}")


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--rows", action="store_true", help="print every held-out row")
    args = p.parse_args(argv)
    os.environ.setdefault("SKYBATCH_HOME", tempfile.mkdtemp(prefix="skybatch-bench-"))
    figures = pricing.published_figures()
    print(f"{len(figures)} published figures; held out one at a time\n")
    _published_table(figures, args.rows)
    _paths_table(figures, args.rows)
    return 0


if __name__ == "__main__":
    sys.exit(main())
