"""Throughput figures and the estimator the planner asks.

Figures live in the ``throughput`` table with a kind: ``measured`` (``skybatch bench``,
finished runs), ``published`` (``data/throughput_refs.csv``, loaded on first use) or
``estimated``. :func:`estimate_throughput` answers for any (model, engine, task,
accelerator x count, shape), trying in order:

1. **measured** on that accelerator and count with this engine (rescaled to the asked
   shape by the roofline when the shape differs), with :data:`MEASURED_BAND` (assumed)
   or :data:`RESCALED_BAND`;
2. **scaled** from a figure measured on another accelerator, by the ratio of the two
   roofline times (:mod:`pricing._scaling`: decode by bandwidth, prefill by FLOPs,
   weighed by each phase's share), with the band :data:`SCALED_BAND`;
3. **published** figures the same way, times :data:`PUBLISHED_DERATE`, with the band
   :data:`PUBLISHED_BAND`;
4. **estimated** from the model's size alone: roofline x :data:`FIRST_PRINCIPLES_EFFICIENCY`
   (encoders: :data:`ENCODER_EFFICIENCY` under the torch engine,
   :data:`TUNED_ENCODER_EFFICIENCY` otherwise), with the matching band.

Every constant but :data:`MEASURED_BAND` is fitted to the published rows, each predicted
without itself (``benchmarks/bench_estimator.py`` prints the fits and the held-out errors;
``tests/unit/test_pricing_estimator.py`` pins the constants to them).

Quantised checkpoints (FP8, INT8, INT4, FP4 by name) are priced by what the GPU does with
them: a format the GPU computes in (FP8 on Hopper, Ada and Blackwell) is never slower than
the same model in BF16 there (the BF16 estimate scaled by the roofline, at least); a format
it only stores (FP8 on an A100, INT4 anywhere: weight-only kernels dequantise to BF16) is
never slower than BF16 either, and gets no speed-up beyond it.

Every answer carries its provenance (``source``) and a band (``low``/``high`` rows/s).
"""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from dataclasses import dataclass

from pricing._figures import Figure, engine_family, figures_for
from pricing._models import ModelInfo, is_encoder, model_info, model_key, precision_of
from pricing._roofline import bytes_per_param, fits, generate_time
from pricing._scaling import (
    describe,
    roofline_ratio,
    rows_of,
    scaled_from,
    seconds_per_row,
    shape_distance,
    shape_of,
    tokens,
)
from pricing._specs import GpuSpec, gpu_spec, normalize_accelerator

__all__ = [
    "ENCODER_BAND",
    "ENCODER_EFFICIENCY",
    "FIRST_PRINCIPLES_BAND",
    "FIRST_PRINCIPLES_EFFICIENCY",
    "MEASURED_BAND",
    "PUBLISHED_BAND",
    "PUBLISHED_DERATE",
    "RESCALED_BAND",
    "SCALED_BAND",
    "TUNED_ENCODER_BAND",
    "TUNED_ENCODER_EFFICIENCY",
    "ThroughputEstimate",
    "estimate_throughput",
    "first_principles_fit",
    "gpus_needed",
    "memory_fit",
    "roofline_ratio",
]

# Held-out fit over the published rows (benchmarks/bench_estimator.py, every row of a
# model on a GPU held out at once): the median of actual / predicted, and its 5 % and
# 95 % quantiles as the band. Scaled by the roofline, the other GPUs' figures predict a
# held-out one without bias (median error 10 %), so no blanket derating remains; a run
# that falls short of a tuned stack shows in the band and, once measured, replaces it.
PUBLISHED_DERATE = 1.0
PUBLISHED_BAND = (0.72, 1.31)
# A figure measured on this GPU and count: run-to-run noise (assumed: nothing published
# measures it) and, asked at another shape, the band of every ordered pair of one
# benchmark's figures at two shapes on the same GPUs, the second predicted from the first
# by the roofline (630 pairs, all from TensorRT-LLM's tables: 10 shapes on 7 GPU groups).
MEASURED_BAND = (0.85, 1.15)
RESCALED_BAND = (0.69, 1.46)
# Scaled from a figure measured on another GPU: the band of every ordered pair of one
# benchmark's figures on two GPUs, the second predicted from the first by the roofline
# (no bias: both directions count). Wide because one published harness (vLLM 0.5.4
# behind its OpenAI server) gains only half the roofline's A100 -> H100 speed-up.
SCALED_BAND = (0.45, 2.22)
# No figure for the model: the share of the roofline reached, fitted to every published
# figure with a stated shape (each held out by construction: this path uses none). The
# decoder rows are mostly TensorRT-LLM's tables (0.35-0.77 of the roofline); vLLM and
# SGLang 0.6 reach 0.40-0.51, inside the band.
FIRST_PRINCIPLES_EFFICIENCY = 0.57
FIRST_PRINCIPLES_BAND = (0.68, 1.27)
# Encoders, by what runs them: sentence-transformers or a plain transformers forward pass
# (the torch engine) reaches 0.05-0.12 of the roofline, tuned runtimes (TEI, infinity,
# ONNX Runtime, TensorRT) 0.25-0.33; one centre between them would suit neither. Six
# figures each, from three and two sources, so the band is the log-normal prediction
# interval for one more figure, not the nearly-extreme 5 %/95 % quantiles. No published
# figure covers vLLM's embedding runner: it takes the tuned runtimes' fit (assumed).
ENCODER_EFFICIENCY = 0.08
ENCODER_BAND = (0.42, 2.15)
TUNED_ENCODER_EFFICIENCY = 0.27
TUNED_ENCODER_BAND = (0.81, 1.34)


@dataclass(frozen=True)
class ThroughputEstimate:
    """Rows/s and tokens/s of one worker (accelerator x count), with band and provenance."""

    rows_per_s: float
    tokens_per_s: float
    low_rows_per_s: float
    high_rows_per_s: float
    kind: str  # "measured" | "scaled" | "published" | "estimated"
    source: str


def first_principles_fit(*, encoder: bool, engine: str) -> tuple[float, tuple[float, float]]:
    """(share of the roofline, band) of the first-principles path for this model and engine."""
    if not encoder:
        return FIRST_PRINCIPLES_EFFICIENCY, FIRST_PRINCIPLES_BAND
    if engine_family(engine) == "torch":
        return ENCODER_EFFICIENCY, ENCODER_BAND
    return TUNED_ENCODER_EFFICIENCY, TUNED_ENCODER_BAND


def computes_in(spec: GpuSpec, precision: str | None) -> bool:
    """True when the GPU's tensor cores compute in ``precision`` (not just store it)."""
    p = (precision or "BF16").upper()
    if "FP8" in p:
        return spec.fp8_tflops is not None
    return bytes_per_param(p) >= 2.0  # BF16/FP16/FP32; INT4/FP4 run weight-only kernels


# ---------------------------------------------------------------------------- memory


def memory_fit(
    *,
    model: ModelInfo,
    accelerator: str,
    count: int,
    context_tokens: int,
    batch_seqs: int = 1,
    dtype_bytes: float = 2.0,
) -> bool:
    """True when ``count`` accelerators hold the weights and ``batch_seqs`` full contexts."""
    spec = gpu_spec(accelerator)
    if spec is None:
        return False
    return fits(
        model=model,
        spec=spec,
        count=count,
        context_tokens=context_tokens,
        batch_seqs=batch_seqs,
        dtype_bytes=dtype_bytes,
    )


def gpus_needed(
    *,
    model: ModelInfo,
    accelerator: str,
    context_tokens: int,
    max_count: int = 8,
    precision: str | None = None,
) -> int | None:
    """Smallest tensor-parallel size of 1, 2, 4, 8 that holds the model, or None.

    ``precision`` is the weights' (``FP8``, ``INT4``... as :func:`name_precision` reads
    it from a model name); BF16 when None.
    """
    for count in (1, 2, 4, 8):
        if count > max_count:
            break
        if memory_fit(
            model=model,
            accelerator=accelerator,
            count=count,
            context_tokens=context_tokens,
            dtype_bytes=bytes_per_param(precision),
        ):
            return count
    return None


# ---------------------------------------------------------------------------- estimator


def estimate_throughput(
    *,
    model: str,
    engine: str,
    task: str,
    accelerator: str,
    count: int,
    input_tokens: float,
    output_tokens: float,
    precision: str | None = None,
    figures: Sequence[Figure] | None = None,
) -> ThroughputEstimate:
    """rows/s for one worker; see the module docstring for the order of sources.

    ``figures`` replaces the stored figures of the model (the held-out benchmark).

    Raises :class:`~scheduler.errors.PlanError` when nothing can be said: the accelerator
    has neither a spec nor a measurement, or the model does not fit on it.
    """
    from scheduler.errors import PlanError

    acc = normalize_accelerator(accelerator)
    encoder = is_encoder(model, task)
    precision = precision or precision_of(model) or ("FP32" if encoder else "BF16")
    shape = (float(input_tokens), 0.0 if encoder else float(output_tokens))
    key = model_key(model)
    info = model_info(model)
    figs = list(figures) if figures is not None else figures_for(key)
    family = engine_family(engine)
    same_engine = [f for f in figs if engine_family(f.engine) == family]
    measured = [f for f in same_engine if f.kind == "measured"]

    # 1. measured on this very accelerator x count
    here = [f for f in measured if f.accelerator == acc and f.count == count]
    if here:
        best = min(here, key=lambda f: shape_distance(shape_of(f, encoder), shape))
        src_shape = shape_of(best, encoder)
        rows = rows_of(best, src_shape, encoder) or 0.0
        exact = shape_distance(src_shape, shape) < 0.15 or info is None
        if not exact and info is not None:
            got = scaled_from(
                [best],
                info=info,
                encoder=encoder,
                engine=engine,
                accelerator=acc,
                count=count,
                precision=best.precision,
                shape=shape,
            )
            if got:
                rows = got[0][0]
        low, high = MEASURED_BAND if exact else RESCALED_BAND
        how = "" if exact else f", rescaled from {src_shape[0]:.0f}/{src_shape[1]:.0f} tokens"
        return ThroughputEstimate(
            rows_per_s=rows,
            tokens_per_s=tokens(rows, shape, encoder),
            low_rows_per_s=rows * low,
            high_rows_per_s=rows * high,
            kind="measured" if exact else "scaled",
            source=f"measured on {acc}x{count} with {best.engine}{how} ({best.source})",
        )

    if family == "python":
        # A user function: nothing to scale from but measurements of the function itself.
        if measured:
            best = measured[0]
            rows = rows_of(best, shape_of(best, encoder), encoder) or 0.0
            return ThroughputEstimate(
                rows,
                tokens(rows, shape, encoder),
                rows * 0.5,
                rows * 1.5,
                "scaled",
                f"python function measured on {best.accelerator}; assumed the same here",
            )
        rows = 100.0
        return ThroughputEstimate(
            rows,
            tokens(rows, shape, encoder),
            1.0,
            10_000.0,
            "estimated",
            "python function never measured: assumed 100 rows/s; run `skybatch bench`",
        )

    if info is None:
        raise PlanError(
            f"throughput: model {model!r} is unknown and its name states no size; "
            f"run `skybatch bench --model {model} --engine {engine}` on a GPU first"
        )
    spec = gpu_spec(acc)
    if spec is None:
        raise PlanError(
            f"throughput: no spec for accelerator {acc!r} and nothing measured on it; "
            f"run `skybatch bench` there or choose another accelerator"
        )
    if not encoder and (
        generate_time(
            model=info,
            spec=spec,
            count=count,
            precision=precision,
            input_tokens=shape[0],
            output_tokens=shape[1],
            batch_cap=1,
        )
        is None
    ):
        raise PlanError(
            f"throughput: {info.name} ({precision}) does not fit on {count} x {acc}; "
            "use more GPUs per worker (gpus_needed) or a larger accelerator"
        )

    # 2. scaled from a measurement on another accelerator
    if measured:
        got = scaled_from(
            measured,
            info=info,
            encoder=encoder,
            engine=engine,
            accelerator=acc,
            count=count,
            precision=precision,
            shape=shape,
        )
        if got:
            got.sort(key=lambda g: shape_distance(shape_of(g[1], encoder), shape))
            rows, fig, ratio = got[0]
            return ThroughputEstimate(
                rows,
                tokens(rows, shape, encoder),
                rows * SCALED_BAND[0],
                rows * SCALED_BAND[1],
                "scaled",
                f"scaled from measured {describe(fig, acc, count)} by roofline (x{ratio:.2f})",
            )

    # 3. published anchors, derated
    published = [f for f in figs if f.kind == "published"]
    got_pub = _from_published(
        published,
        info=info,
        encoder=encoder,
        engine=engine,
        accelerator=acc,
        count=count,
        precision=precision,
        shape=shape,
    )
    if got_pub is not None:
        return got_pub

    # 4. first principles
    t = seconds_per_row(
        model=info,
        spec=spec,
        count=count,
        precision=precision,
        encoder=encoder,
        engine=engine,
        input_tokens=shape[0],
        output_tokens=shape[1],
    )
    efficiency, (low, high) = first_principles_fit(encoder=encoder, engine=engine)
    rows = (1.0 / t) * efficiency if t else 0.0
    return ThroughputEstimate(
        rows,
        tokens(rows, shape, encoder),
        rows * low,
        rows * high,
        "estimated",
        f"estimated from {info.params_b:g}B parameters on {acc}x{count} by roofline "
        f"x{efficiency} efficiency (no figure for this model)",
    )


def _published_median(
    published: Sequence[Figure],
    *,
    info: ModelInfo,
    encoder: bool,
    engine: str,
    accelerator: str,
    count: int,
    precision: str,
    shape: tuple[float, float],
) -> tuple[float, list[Figure]] | None:
    """Rows/s the best-matching published anchors give (before derating), and they."""
    got = scaled_from(
        published,
        info=info,
        encoder=encoder,
        engine=engine,
        accelerator=accelerator,
        count=count,
        precision=precision,
        shape=shape,
    )
    if not got:
        return None
    family = engine_family(engine)

    # Prefer anchors close in precision and shape; take the median of the best few.
    def rank(g: tuple[float, Figure, float]) -> float:
        f = g[1]
        score = shape_distance(shape_of(f, encoder), shape)
        score += 0.0 if (f.precision or "BF16") == precision else 1.0
        score += 0.0 if f.accelerator == accelerator else 0.5
        score += 0.0 if engine_family(f.engine) == family else 0.5
        return score

    got.sort(key=rank)
    # The median of the best-matching few (equally good anchors only): one odd benchmark
    # does not set the figure, and a worse match does not dilute a good one.
    best_rank = rank(got[0])
    top = [g for g in got if rank(g) <= best_rank + 0.25][:3]
    return statistics.median(g[0] for g in top), [g[1] for g in top]


def _from_published(
    published: Sequence[Figure],
    *,
    info: ModelInfo,
    encoder: bool,
    engine: str,
    accelerator: str,
    count: int,
    precision: str,
    shape: tuple[float, float],
) -> ThroughputEstimate | None:
    """The published path: anchors at this precision, and for a quantised checkpoint
    never below the same model in BF16 on this GPU (see the module docstring)."""

    def median_at(p: str) -> tuple[float, list[Figure]] | None:
        return _published_median(
            published,
            info=info,
            encoder=encoder,
            engine=engine,
            accelerator=accelerator,
            count=count,
            precision=p,
            shape=shape,
        )

    found = median_at(precision)
    note = ""
    spec = gpu_spec(accelerator)
    if not encoder and bytes_per_param(precision) < 2.0 and spec is not None:
        bf16 = median_at("BF16")
        if bf16 is not None:
            speedup = 1.0
            if computes_in(spec, precision):
                speedup = max(
                    1.0,
                    roofline_ratio(
                        model=info,
                        src_accelerator=accelerator,
                        src_count=count,
                        src_precision="BF16",
                        src_engine=engine,
                        src_shape=shape,
                        dst_accelerator=accelerator,
                        dst_count=count,
                        dst_precision=precision,
                        dst_engine=engine,
                        dst_shape=shape,
                        encoder=False,
                    )
                    or 1.0,
                )
            floor = bf16[0] * speedup
            if found is None or floor > found[0]:
                how = "computes in" if speedup > 1.0 else "only stores"
                note = (
                    f"; {precision} floored at BF16 x{speedup:.2f} ({accelerator} {how} "
                    f"{precision})"
                )
                found = (floor, bf16[1])
    if found is None:
        return None
    upper, top = found
    rows = upper * PUBLISHED_DERATE
    low, high = PUBLISHED_BAND
    same_place = all(f.accelerator == accelerator and f.count == count for f in top)
    derated = f", x{PUBLISHED_DERATE:g} derating" if PUBLISHED_DERATE != 1.0 else ""
    return ThroughputEstimate(
        rows,
        tokens(rows, shape, encoder),
        rows * low,
        rows * high,
        "published" if same_place and not note else "scaled",
        f"{'published' if same_place else 'scaled by roofline from published'} "
        f"{'; '.join(describe(f, accelerator, count) for f in top)}{derated}{note}",
    )
