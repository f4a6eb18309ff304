"""Throughput figures and the estimator the planner asks.

Figures live in the ``throughput`` table with a kind: ``measured`` (``skybatch bench``,
finished runs), ``published`` (``data/throughput_refs.csv``, loaded on first use) or
``estimated``. :func:`estimate_throughput` answers for any (model, engine, task,
accelerator x count, shape), trying in order:

1. **measured** on that accelerator and count with this engine (rescaled to the asked
   shape by the roofline when the shape differs);
2. **scaled** from a figure measured on another accelerator, by the ratio of the two
   roofline times (:mod:`pricing._roofline`: decode by bandwidth, prefill by FLOPs,
   weighed by each phase's share);
3. **published** figures the same way, derated by :data:`PUBLISHED_DERATE` because they
   are best cases on tuned stacks, with a wider band;
4. **estimated** from the model's size alone: roofline x :data:`FIRST_PRINCIPLES_EFFICIENCY`.

Every answer carries its provenance (``source``) and a band (``low``/``high`` rows/s).
"""

from __future__ import annotations

import math
import statistics
from dataclasses import dataclass

from pricing._figures import (
    SHORT_SENTENCE_TOKENS,
    Figure,
    engine_family,
    figures_for,
)
from pricing._models import ModelInfo, is_encoder, model_info, model_key, name_precision
from pricing._roofline import bytes_per_param, encoder_time_per_row_s, fits, generate_time
from pricing._specs import GpuSpec, gpu_spec, normalize_accelerator

__all__ = [
    "FIRST_PRINCIPLES_EFFICIENCY",
    "PUBLISHED_DERATE",
    "ThroughputEstimate",
    "estimate_throughput",
    "gpus_needed",
    "memory_fit",
    "roofline_ratio",
]

# Published peaks are reached by tuned stacks; a first real run lands lower.
PUBLISHED_DERATE = 0.6
# Share of the roofline a serving engine reaches, calibrated on the published rows:
# TensorRT-LLM and vLLM >= 0.6 reach 0.4-0.75 of it (median 0.5), then derated as above.
FIRST_PRINCIPLES_EFFICIENCY = 0.3
# sentence-transformers reaches ~0.1 of the encoder roofline (bge-large on L4, sbert.net
# V100 table); tuned servers (TEI, infinity) 0.25-0.33.
ENCODER_EFFICIENCY = 0.08
# Scheduler batch caps: how many sequences an engine keeps in flight.
_BATCH_CAP = {"tensorrt": 2048, "trt": 2048, "sglang": 1024, "vllm": 256, "torch": 32}
# HF generate pads and recomputes; below a paged-attention engine at the same batch.
_TORCH_GENERATE_FACTOR = 0.5
# Encoders below this size are bound by launch and tokenizer overhead, not FLOPs: their
# speed grows with the square root of the FLOPs ratio.
_SMALL_ENCODER_B = 0.2


@dataclass(frozen=True)
class ThroughputEstimate:
    """Rows/s and tokens/s of one worker (accelerator x count), with band and provenance."""

    rows_per_s: float
    tokens_per_s: float
    low_rows_per_s: float
    high_rows_per_s: float
    kind: str  # "measured" | "scaled" | "published" | "estimated"
    source: str


def _batch_cap(engine: str) -> int:
    return _BATCH_CAP.get(engine_family(engine), 256)


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


def _seconds_per_row(
    *,
    model: ModelInfo,
    spec: GpuSpec,
    count: int,
    precision: str | None,
    encoder: bool,
    engine: str,
    input_tokens: float,
    output_tokens: float,
) -> float | None:
    if encoder:
        t = encoder_time_per_row_s(
            model=model, spec=spec, count=count, precision=precision, input_tokens=input_tokens
        )
        return t
    rt = generate_time(
        model=model,
        spec=spec,
        count=count,
        precision=precision,
        input_tokens=input_tokens,
        output_tokens=output_tokens,
        batch_cap=_batch_cap(engine),
    )
    if rt is None:
        return None
    factor = _TORCH_GENERATE_FACTOR if engine_family(engine) == "torch" else 1.0
    return rt.total_s / factor


def roofline_ratio(
    *,
    model: ModelInfo,
    src_accelerator: str,
    src_count: int,
    src_precision: str | None,
    src_engine: str,
    src_shape: tuple[float, float],
    dst_accelerator: str,
    dst_count: int,
    dst_precision: str | None,
    dst_engine: str,
    dst_shape: tuple[float, float],
    encoder: bool,
) -> float | None:
    """rows/s on the destination divided by rows/s on the source, by the roofline."""
    src, dst = gpu_spec(src_accelerator), gpu_spec(dst_accelerator)
    if src is None or dst is None:
        return None
    t_src = _seconds_per_row(
        model=model,
        spec=src,
        count=src_count,
        precision=src_precision,
        encoder=encoder,
        engine=src_engine,
        input_tokens=src_shape[0],
        output_tokens=src_shape[1],
    )
    t_dst = _seconds_per_row(
        model=model,
        spec=dst,
        count=dst_count,
        precision=dst_precision,
        encoder=encoder,
        engine=dst_engine,
        input_tokens=dst_shape[0],
        output_tokens=dst_shape[1],
    )
    if not t_src or not t_dst:
        return None
    ratio = t_src / t_dst
    if encoder and model.params_b < _SMALL_ENCODER_B and src_accelerator != dst_accelerator:
        # Overhead-bound: only part of a faster GPU's FLOPs turn into rows/s.
        shape_part = (
            _seconds_per_row(
                model=model,
                spec=src,
                count=src_count,
                precision=src_precision,
                encoder=True,
                engine=src_engine,
                input_tokens=dst_shape[0],
                output_tokens=0,
            )
            or t_src
        )
        gpu_ratio = shape_part / t_dst
        ratio = (t_src / shape_part) * gpu_ratio**0.5
    return ratio


def _shape_of(fig: Figure, encoder: bool) -> tuple[float, float]:
    # Conversational benchmarks without a stated shape (ShareGPT, OpenOrca): a typical
    # prompt of ~250 tokens; the output length comes from the request rate when stated.
    i_tok = fig.input_tokens if fig.input_tokens else (SHORT_SENTENCE_TOKENS if encoder else 250.0)
    o_tok = fig.output_tokens if fig.output_tokens is not None else (0.0 if encoder else 200.0)
    return i_tok, o_tok


def _rows_of(fig: Figure, shape: tuple[float, float], encoder: bool) -> float | None:
    if fig.rows_per_s:
        return fig.rows_per_s
    if fig.tokens_per_s:
        per_row = shape[0] if encoder else shape[1]
        return fig.tokens_per_s / per_row if per_row else None
    return None


def _shape_distance(a: tuple[float, float], b: tuple[float, float]) -> float:
    return abs(math.log((a[0] + 1) / (b[0] + 1))) + abs(math.log((a[1] + 1) / (b[1] + 1)))


def _tokens(rows_per_s: float, shape: tuple[float, float], encoder: bool) -> float:
    return rows_per_s * (shape[0] if encoder else shape[1])


def _scaled_from(
    figs: list[Figure],
    *,
    info: ModelInfo,
    encoder: bool,
    engine: str,
    accelerator: str,
    count: int,
    precision: str | None,
    shape: tuple[float, float],
) -> list[tuple[float, Figure, float]]:
    """(rows/s on the target, anchor, roofline ratio) for every usable figure."""
    out = []
    for fig in figs:
        src_shape = _shape_of(fig, encoder)
        rows = _rows_of(fig, src_shape, encoder)
        if not rows:
            continue
        ratio = roofline_ratio(
            model=info,
            src_accelerator=fig.accelerator,
            src_count=fig.count,
            src_precision=fig.precision,
            src_engine=fig.engine,
            src_shape=src_shape,
            dst_accelerator=accelerator,
            dst_count=count,
            dst_precision=precision,
            dst_engine=engine,
            dst_shape=shape,
            encoder=encoder,
        )
        if ratio:
            out.append((rows * ratio, fig, ratio))
    return out


def _describe(fig: Figure, target: str, count: int) -> str:
    src = f"{fig.accelerator}x{fig.count}" if fig.count > 1 else fig.accelerator
    dst = f"{target}x{count}" if count > 1 else target
    return f"{src} ({fig.engine}, {fig.precision or 'n/a'}) -> {dst}"


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
) -> ThroughputEstimate:
    """rows/s for one worker; see the module docstring for the order of sources.

    Raises :class:`~scheduler.errors.PlanError` when nothing can be said: the accelerator
    has neither a spec nor a measurement, or the model does not fit on it.
    """
    from scheduler.errors import PlanError

    acc = normalize_accelerator(accelerator)
    encoder = is_encoder(model, task)
    precision = precision or name_precision(model) or ("FP32" if encoder else "BF16")
    shape = (float(input_tokens), 0.0 if encoder else float(output_tokens))
    key = model_key(model)
    info = model_info(model)
    figs = figures_for(key)
    family = engine_family(engine)
    same_engine = [f for f in figs if engine_family(f.engine) == family]
    measured = [f for f in same_engine if f.kind == "measured"]

    # 1. measured on this very accelerator x count
    here = [f for f in measured if f.accelerator == acc and f.count == count]
    if here:
        best = min(here, key=lambda f: _shape_distance(_shape_of(f, encoder), shape))
        src_shape = _shape_of(best, encoder)
        rows = _rows_of(best, src_shape, encoder) or 0.0
        exact = _shape_distance(src_shape, shape) < 0.15 or info is None
        if not exact and info is not None:
            got = _scaled_from(
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
        band = 0.15 if exact else 0.3
        how = "" if exact else f", rescaled from {src_shape[0]:.0f}/{src_shape[1]:.0f} tokens"
        return ThroughputEstimate(
            rows_per_s=rows,
            tokens_per_s=_tokens(rows, shape, encoder),
            low_rows_per_s=rows * (1 - band),
            high_rows_per_s=rows * (1 + band),
            kind="measured" if exact else "scaled",
            source=f"measured on {acc}x{count} with {best.engine}{how} ({best.source})",
        )

    if family == "python":
        # A user function: nothing to scale from but measurements of the function itself.
        if measured:
            best = measured[0]
            rows = _rows_of(best, _shape_of(best, encoder), encoder) or 0.0
            return ThroughputEstimate(
                rows,
                _tokens(rows, shape, encoder),
                rows * 0.5,
                rows * 1.5,
                "scaled",
                f"python function measured on {best.accelerator}; assumed the same here",
            )
        rows = 100.0
        return ThroughputEstimate(
            rows,
            _tokens(rows, shape, encoder),
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
        got = _scaled_from(
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
            got.sort(key=lambda g: _shape_distance(_shape_of(g[1], encoder), shape))
            rows, fig, ratio = got[0]
            return ThroughputEstimate(
                rows,
                _tokens(rows, shape, encoder),
                rows * 0.65,
                rows * 1.35,
                "scaled",
                f"scaled from measured {_describe(fig, acc, count)} by roofline (x{ratio:.2f})",
            )

    # 3. published anchors, derated
    published = [f for f in figs if f.kind == "published"]
    got = _scaled_from(
        published,
        info=info,
        encoder=encoder,
        engine=engine,
        accelerator=acc,
        count=count,
        precision=precision,
        shape=shape,
    )
    if got:
        # Prefer anchors close in precision and shape; take the median of the best few.
        def rank(g: tuple[float, Figure, float]) -> float:
            f = g[1]
            score = _shape_distance(_shape_of(f, encoder), shape)
            score += 0.0 if (f.precision or "BF16") == precision else 1.0
            score += 0.0 if f.accelerator == acc else 0.5
            score += 0.0 if engine_family(f.engine) == family else 0.5
            return score

        got.sort(key=rank)
        # The median of the best-matching few (equally good anchors only): one odd
        # benchmark does not set the figure, and a worse match does not dilute a good one.
        best_rank = rank(got[0])
        top = [g for g in got if rank(g) <= best_rank + 0.25][:3]
        upper = statistics.median(g[0] for g in top)
        rows = upper * PUBLISHED_DERATE
        same_place = all(g[1].accelerator == acc and g[1].count == count for g in top)
        return ThroughputEstimate(
            rows,
            _tokens(rows, shape, encoder),
            rows * 0.6,
            upper * 1.1,
            "published" if same_place else "scaled",
            f"{'published' if same_place else 'scaled by roofline from published'} "
            f"{'; '.join(_describe(g[1], acc, count) for g in top)}, x{PUBLISHED_DERATE} "
            f"derating (published peaks are upper bounds)",
        )

    # 4. first principles
    t = _seconds_per_row(
        model=info,
        spec=spec,
        count=count,
        precision=precision,
        encoder=encoder,
        engine=engine,
        input_tokens=shape[0],
        output_tokens=shape[1],
    )
    efficiency = ENCODER_EFFICIENCY if encoder else FIRST_PRINCIPLES_EFFICIENCY
    rows = (1.0 / t) * efficiency if t else 0.0
    return ThroughputEstimate(
        rows,
        _tokens(rows, shape, encoder),
        rows * 0.4,
        rows * 2.0,
        "estimated",
        f"estimated from {info.params_b:g}B parameters on {acc}x{count} by roofline "
        f"x{efficiency} efficiency (no figure for this model)",
    )
