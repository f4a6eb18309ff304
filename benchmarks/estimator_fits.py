"""The held-out fits behind the estimator's shipped constants (``bench_estimator.py`` prints them).

Each path of :func:`pricing.estimate_throughput` is fed published figures it was not
shown, and actual ÷ predicted is collected per path; :func:`fit_ratios` turns a path's
ratios into the centre and band it should ship. ``tests/unit/test_pricing_estimator.py``
pins the shipped constants to these fits.
"""

from __future__ import annotations

import itertools
import math
import statistics
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import pricing
from pricing import Figure
from pricing import _bands as shipped
from pricing._figures import engine_family
from pricing._models import is_encoder, model_info
from pricing._scaling import roofline_ratio, rows_of, scaled_from, shape_of
from scheduler.errors import SkybatchError

# The bands the estimator shipped before they were fitted, for the side-by-side columns.
OLD_SCALED = (1.0, (0.65, 1.35))
OLD_FIRST_PRINCIPLES = (0.3, (0.4, 2.0))
OLD_ENCODER = (0.08, (0.4, 2.0))
OLD_RESCALED = (1.0, (0.7, 1.3))


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


def same_row(a: Figure, b: Figure) -> bool:
    return a is b


def _estimate(
    fig: Figure, input_tokens: float, output_tokens: float, figures: Sequence[Figure]
) -> pricing.ThroughputEstimate | None:
    """The estimator's answer for ``fig``'s model, GPU and shape, knowing only ``figures``."""
    try:
        return pricing.estimate_throughput(
            model=fig.model,
            engine=fig.engine,
            task=fig.task,
            accelerator=fig.accelerator,
            count=fig.count,
            input_tokens=input_tokens,
            output_tokens=output_tokens,
            precision=fig.precision,
            figures=figures,
        )
    except SkybatchError:
        return None


def same_gpu(a: Figure, b: Figure) -> bool:
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
        est = _estimate(fig, i_tok, o_tok, rest)
        if est is None or est.kind == "estimated" or est.rows_per_s <= 0:
            continue  # nothing published to scale from: the first-principles path
        out.append(HeldOut(fig, rows, est.rows_per_s / pricing.PUBLISHED_DERATE, est.kind))
    return out


def _quantile(values: Sequence[float], q: float) -> float:
    ordered = sorted(values)
    pos = q * (len(ordered) - 1)
    lo, hi = math.floor(pos), math.ceil(pos)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (pos - lo)


# Student's t, 95th percentile, by degrees of freedom: the small-sample prediction interval.
_T95 = (6.314, 2.920, 2.353, 2.132, 2.015, 1.943, 1.895, 1.860, 1.833, 1.812,
        1.796, 1.782, 1.771, 1.761, 1.753, 1.746, 1.740, 1.734, 1.729)  # fmt: skip
SMALL_SAMPLE = len(_T95) + 1


def fit_ratios(ratios: Sequence[float]) -> tuple[float, float, float]:
    """(centre, band low, band high) of actual ÷ predicted: the median in log space, and
    the 5 % and 95 % quantiles once divided by it.

    Under :data:`SMALL_SAMPLE` rows those quantiles are nearly the extremes and cover a
    further row well under 90 % of the time, so the band widens to the log-normal
    prediction interval for one more row, mean ± t(0.95, n - 1) · s · √(1 + 1/n) of the
    log ratios.
    """
    centre = math.exp(statistics.median(math.log(r) for r in ratios))
    low = _quantile(ratios, 0.05) / centre
    high = _quantile(ratios, 0.95) / centre
    n = len(ratios)
    if 2 <= n < SMALL_SAMPLE:
        logs = [math.log(r / centre) for r in ratios]
        half = _T95[n - 2] * statistics.stdev(logs) * math.sqrt(1 + 1 / n)
        mean = statistics.mean(logs)
        low, high = min(low, math.exp(mean - half)), max(high, math.exp(mean + half))
    return centre, low, high


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


def shape_pairs(figures: Sequence[Figure]) -> list[float]:
    """actual ÷ predicted of each figure rescaled by the roofline from the same benchmark's
    figure at another shape on the same GPUs: a figure measured there, asked at another shape.

    Every ordered pair counts (a single ``skybatch bench`` run may sit at any shape).
    """
    groups: dict[tuple[object, ...], list[Figure]] = {}
    for f in figures:
        key = (f.model_key, f.engine, f.precision, f.accelerator, f.count, f.task)
        groups.setdefault(key, []).append(f)
    out = []
    for figs in groups.values():
        for a, b in itertools.permutations(figs, 2):
            enc = is_encoder(a.model, a.task)
            sa, sb = shape_of(a, enc), shape_of(b, enc)
            info = model_info(a.model)
            if sa == sb or info is None:
                continue
            got = scaled_from(
                [a],
                info=info,
                encoder=enc,
                engine=b.engine,
                accelerator=b.accelerator,
                count=b.count,
                precision=b.precision,
                shape=sb,
            )
            rb = rows_of(b, sb, enc)
            if got and rb:
                out.append(rb / got[0][0])
    return out


def first_principles(figures: Sequence[Figure]) -> list[HeldOut]:
    """Each figure with a stated shape predicted from no figure at all (kind ``decoder`` or
    ``encoder`` under the torch engine, ``tuned encoder`` otherwise); ``raw`` is the
    roofline before the shipped efficiency."""
    out = []
    for fig in figures:
        got = _actual(fig)
        if got is None:
            continue
        rows, i_tok, o_tok = got
        est = _estimate(fig, i_tok, o_tok, [])
        if est is None or est.kind != "estimated" or est.rows_per_s <= 0:
            continue
        enc = is_encoder(fig.model, fig.task)
        efficiency, _ = shipped.first_principles_fit(encoder=enc, engine=fig.engine)
        kind = "decoder"
        if enc:
            kind = "encoder" if engine_family(fig.engine) == "torch" else "tuned encoder"
        out.append(HeldOut(fig, rows, est.rows_per_s / efficiency, kind))
    return out


def path_ratios(figures: Sequence[Figure]) -> dict[str, list[float]]:
    """actual ÷ raw prediction per fitted path other than the published one."""
    fp = first_principles(figures)
    return {
        "rescaled": shape_pairs(figures),
        "scaled": [p.actual / p.predicted for p in cross_gpu_pairs(figures)],
        "first principles": [r.actual / r.raw for r in fp if r.kind == "decoder"],
        "encoder": [r.actual / r.raw for r in fp if r.kind == "encoder"],
        "tuned encoder": [r.actual / r.raw for r in fp if r.kind == "tuned encoder"],
    }


def shipped_fits() -> dict[str, tuple[float, tuple[float, float]]]:
    """(centre, band) the estimator ships per path."""
    return {
        "rescaled": (1.0, shipped.RESCALED_BAND),
        "scaled": (1.0, shipped.SCALED_BAND),
        "first principles": (shipped.FIRST_PRINCIPLES_EFFICIENCY, shipped.FIRST_PRINCIPLES_BAND),
        "encoder": (shipped.ENCODER_EFFICIENCY, shipped.ENCODER_BAND),
        "tuned encoder": (shipped.TUNED_ENCODER_EFFICIENCY, shipped.TUNED_ENCODER_BAND),
    }
