"""Scaling a throughput figure to other conditions by the ratio of two roofline times.

A figure measured (or published) for one model on one accelerator group, precision, engine
and shape (input/output tokens) says how far a real stack gets from the roofline of
:mod:`pricing._roofline`; :func:`roofline_ratio` carries it to other conditions on the
assumption that the share of the roofline reached stays the same.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from pricing._figures import SHORT_SENTENCE_TOKENS, Figure, engine_family
from pricing._models import ModelInfo
from pricing._roofline import encoder_time_per_row_s, generate_time
from pricing._specs import GpuSpec, gpu_spec

__all__ = [
    "batch_cap",
    "describe",
    "roofline_ratio",
    "rows_of",
    "scaled_from",
    "seconds_per_row",
    "shape_distance",
    "shape_of",
    "tokens",
]

# Scheduler batch caps: how many sequences an engine keeps in flight.
_BATCH_CAP = {"tensorrt": 2048, "trt": 2048, "sglang": 1024, "vllm": 256, "torch": 32}
# HF generate pads and recomputes; below a paged-attention engine at the same batch.
_TORCH_GENERATE_FACTOR = 0.5
# Encoders below this size are bound by launch and tokenizer overhead, not FLOPs: their
# speed grows with the square root of the FLOPs ratio.
_SMALL_ENCODER_B = 0.2


def batch_cap(engine: str) -> int:
    """Sequences an engine keeps in flight."""
    return _BATCH_CAP.get(engine_family(engine), 256)


def seconds_per_row(
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
        batch_cap=batch_cap(engine),
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
    t_src = seconds_per_row(
        model=model,
        spec=src,
        count=src_count,
        precision=src_precision,
        encoder=encoder,
        engine=src_engine,
        input_tokens=src_shape[0],
        output_tokens=src_shape[1],
    )
    t_dst = seconds_per_row(
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
            seconds_per_row(
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


def shape_of(fig: Figure, encoder: bool) -> tuple[float, float]:
    # Conversational benchmarks without a stated shape (ShareGPT, OpenOrca): a typical
    # prompt of ~250 tokens; the output length comes from the request rate when stated.
    i_tok = fig.input_tokens if fig.input_tokens else (SHORT_SENTENCE_TOKENS if encoder else 250.0)
    o_tok = fig.output_tokens if fig.output_tokens is not None else (0.0 if encoder else 200.0)
    return i_tok, o_tok


def rows_of(fig: Figure, shape: tuple[float, float], encoder: bool) -> float | None:
    if fig.rows_per_s:
        return fig.rows_per_s
    if fig.tokens_per_s:
        per_row = shape[0] if encoder else shape[1]
        return fig.tokens_per_s / per_row if per_row else None
    return None


def shape_distance(a: tuple[float, float], b: tuple[float, float]) -> float:
    return abs(math.log((a[0] + 1) / (b[0] + 1))) + abs(math.log((a[1] + 1) / (b[1] + 1)))


def tokens(rows_per_s: float, shape: tuple[float, float], encoder: bool) -> float:
    return rows_per_s * (shape[0] if encoder else shape[1])


def scaled_from(
    figs: Sequence[Figure],
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
        src_shape = shape_of(fig, encoder)
        rows = rows_of(fig, src_shape, encoder)
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


def describe(fig: Figure, target: str, count: int) -> str:
    src = f"{fig.accelerator}x{fig.count}" if fig.count > 1 else fig.accelerator
    dst = f"{target}x{count}" if count > 1 else target
    return f"{src} ({fig.engine}, {fig.precision or 'n/a'}) -> {dst}"
