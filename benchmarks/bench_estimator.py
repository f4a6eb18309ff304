"""The throughput estimator against the published figures it was not shown: every band it ships.

Every published row of ``pricing/data/throughput_refs.csv`` (offline throughput, with
its source) is predicted without itself, as the planner would predict it, and the
prediction is compared with the published value. One fit per path of
:func:`pricing.estimate_throughput`, each held out by construction:

- **published** (anchors of this model scaled by the roofline): ``row`` holds the row alone
  out (its neighbours at other shapes, GPUs and precisions stay); ``gpu`` every row of
  that model on that accelerator (the planner's case for a GPU nobody has published
  for). Fits :data:`pricing.PUBLISHED_DERATE` and :data:`pricing.PUBLISHED_BAND`.
- **scaled** (a figure measured on another GPU, carried over by the roofline): every
  ordered pair of figures from one benchmark (same model, engine, precision and shape,
  another GPU), the second predicted from the first alone. Fits ``SCALED_BAND``.
- **first principles** (no figure for the model: roofline x efficiency): every figure
  with a stated shape, predicted with no figure at all, decoders and encoders apart.
  Fits ``FIRST_PRINCIPLES_EFFICIENCY``/``_BAND`` and ``ENCODER_EFFICIENCY``/``_BAND``.

Every fit is the same: the centre is the median of actual ÷ predicted in log space, the
band the 5 % and 95 % quantiles of actual ÷ (predicted x centre). Those quantiles because
the planner reads a band as the 5-95 % range of a log-normal throughput
(``scheduler.plan``'s ``sigma_from_band``): a band at them makes its P(on time) say what
the published figures say. The table shows what the data say beside what the code holds,
the held-out error (median and 90th percentile of |log ratio|, as a percentage), and how
many held-out rows the old fixed bands and the fitted ones cover (the fitted band's
coverage with each row left out of its own fit). ``tests/unit/test_pricing_estimator.py``
pins the shipped constants to these fits.

    python benchmarks/bench_estimator.py [--rows]
"""

from __future__ import annotations

import argparse
import itertools
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
from pricing import _throughput as shipped  # noqa: E402
from pricing._figures import engine_family  # noqa: E402
from pricing._models import is_encoder, model_info  # noqa: E402
from pricing._scaling import roofline_ratio, rows_of, shape_of  # noqa: E402
from scheduler.errors import SkybatchError  # noqa: E402

# The bands the estimator shipped before they were fitted, for the side-by-side columns.
OLD_SCALED = (1.0, (0.65, 1.35))
OLD_FIRST_PRINCIPLES = (0.3, (0.4, 2.0))
OLD_ENCODER = (0.08, (0.4, 2.0))


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


def fit_ratios(ratios: Sequence[float]) -> tuple[float, float, float]:
    """(centre, band low, band high) of actual ÷ predicted: the median in log space, and
    the 5 % and 95 % quantiles once divided by it."""
    centre = math.exp(statistics.median(math.log(r) for r in ratios))
    return (
        centre,
        _quantile(ratios, 0.05) / centre,
        _quantile(ratios, 0.95) / centre,
    )


def fit(results: Sequence[HeldOut]) -> tuple[float, float, float]:
    """(derate, band low, band high) of actual ÷ raw prediction (:func:`fit_ratios`)."""
    return fit_ratios([r.actual / r.raw for r in results])


def errors(results: Sequence[HeldOut], derate: float) -> tuple[float, float, float]:
    """Median and p90 of |error| (as %, log-symmetric) and the share within ±30 %."""
    return ratio_errors([r.actual / r.raw for r in results], derate)


def ratio_errors(ratios: Sequence[float], centre: float) -> tuple[float, float, float]:
    """:func:`errors` of actual ÷ raw ratios predicted at ``centre``."""
    errs = [abs(math.log(r / centre)) for r in ratios]
    within = sum(1 for e in errs if e <= math.log(1.3)) / len(errs)
    return (
        100 * math.expm1(statistics.median(errs)),
        100 * math.expm1(_quantile(errs, 0.9)),
        100 * within,
    )


def coverage(ratios: Sequence[float], centre: float, band: tuple[float, float]) -> float:
    """Share (%) of rows whose actual lies in the band around the prediction x centre."""
    inside = sum(1 for r in ratios if band[0] <= r / centre <= band[1])
    return 100 * inside / len(ratios)


def left_out_coverage(ratios: Sequence[float]) -> float:
    """:func:`coverage` of each row by the band fitted to the other rows alone."""
    inside = 0
    for i, r in enumerate(ratios):
        centre, lo, hi = fit_ratios([x for j, x in enumerate(ratios) if j != i])
        inside += lo <= r / centre <= hi
    return 100 * inside / len(ratios)


@dataclass(frozen=True)
class Pair:
    label: str
    engine: str
    actual: float  # rows/s published on the second GPU
    predicted: float  # rows/s the first GPU's figure gives there by the roofline


def cross_gpu_pairs(figures: Sequence[Figure]) -> list[Pair]:
    """Each figure predicted from the same benchmark's figure on another GPU: the scaled path.

    Same model, engine, precision, shape and GPU count; only the accelerator differs (plus
    TensorRT-LLM's 70B table, which pairs H200 x1 with H100 x2). Both directions count.
    """
    groups: dict[tuple[object, ...], list[Figure]] = {}
    for f in figures:
        key = (f.model_key, f.engine, f.precision, f.input_tokens, f.output_tokens, f.task)
        groups.setdefault(key, []).append(f)
    out = []
    for figs in groups.values():
        for a, b in itertools.permutations(figs, 2):
            if a.accelerator == b.accelerator:
                continue  # tensor-parallel sweeps on one GPU type are not a GPU-to-GPU test
            if a.count != b.count and "TensorRT" not in a.engine:
                continue
            enc = is_encoder(a.model, a.task)
            info = model_info(a.model)
            if info is None:
                continue
            sa, sb = shape_of(a, enc), shape_of(b, enc)
            ratio = roofline_ratio(
                model=info,
                src_accelerator=a.accelerator,
                src_count=a.count,
                src_precision=a.precision,
                src_engine=a.engine,
                src_shape=sa,
                dst_accelerator=b.accelerator,
                dst_count=b.count,
                dst_precision=b.precision,
                dst_engine=b.engine,
                dst_shape=sb,
                encoder=enc,
            )
            ra, rb = rows_of(a, sa, enc), rows_of(b, sb, enc)
            if ratio is None or not ra or not rb:
                continue
            label = (
                f"{a.model_key} {a.precision} {sa[0]:.0f}/{sb[1]:.0f} "
                f"{a.accelerator}x{a.count}->{b.accelerator}x{b.count}"
            )
            out.append(Pair(label, a.engine, rb, ra * ratio))
    return out


def first_principles(figures: Sequence[Figure]) -> list[HeldOut]:
    """Each figure with a stated shape predicted from no figure at all (kind ``decoder`` or
    ``encoder``); ``raw`` is the roofline before the shipped efficiency."""
    out = []
    for fig in figures:
        got = _actual(fig)
        if got is None:
            continue
        rows, i_tok, o_tok = got
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
                figures=[],
            )
        except SkybatchError:
            continue
        if est.kind != "estimated" or est.rows_per_s <= 0:
            continue
        enc = is_encoder(fig.model, fig.task)
        efficiency = shipped.ENCODER_EFFICIENCY if enc else shipped.FIRST_PRINCIPLES_EFFICIENCY
        out.append(HeldOut(fig, rows, est.rows_per_s / efficiency, "encoder" if enc else "decoder"))
    return out


def path_ratios(figures: Sequence[Figure]) -> dict[str, list[float]]:
    """actual ÷ raw prediction per fitted path other than the published one."""
    fp = first_principles(figures)
    return {
        "scaled": [p.actual / p.predicted for p in cross_gpu_pairs(figures)],
        "first principles": [r.actual / r.raw for r in fp if r.kind == "decoder"],
        "encoder": [r.actual / r.raw for r in fp if r.kind == "encoder"],
    }


def shipped_fits() -> dict[str, tuple[float, tuple[float, float]]]:
    """(centre, band) the estimator ships per path."""
    return {
        "scaled": (1.0, shipped.SCALED_BAND),
        "first principles": (shipped.FIRST_PRINCIPLES_EFFICIENCY, shipped.FIRST_PRINCIPLES_BAND),
        "encoder": (shipped.ENCODER_EFFICIENCY, shipped.ENCODER_BAND),
    }


def _published_table(figures: Sequence[Figure], show_rows: bool) -> None:
    code = pricing.PUBLISHED_DERATE
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
    old = {"scaled": OLD_SCALED, "first principles": OLD_FIRST_PRINCIPLES, "encoder": OLD_ENCODER}
    print(
        "\nthe other paths, each row predicted without itself "
        "(centre: efficiency, or 1 for scaled)\n"
    )
    print(
        f"{'path':<17} {'rows':>5} {'centre':>7} {'band 5%':>8} {'band 95%':>9} "
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
