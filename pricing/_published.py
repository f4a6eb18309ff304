"""The estimator's published path: the median of the best-matching published anchors.

Anchors are scaled to the asked conditions by the roofline (:mod:`pricing._scaling`) and
ranked by how close they are in shape, precision, accelerator and engine. A quantised
checkpoint is never priced below the same model in BF16 on the same GPU (see
:mod:`pricing._throughput`).
"""

from __future__ import annotations

import statistics
from collections.abc import Sequence

from pricing._bands import PUBLISHED_BAND, PUBLISHED_DERATE, ThroughputEstimate
from pricing._figures import Figure, engine_family
from pricing._models import ModelInfo
from pricing._roofline import bytes_per_param
from pricing._scaling import describe, roofline_ratio, scaled_from, shape_distance, shape_of, tokens
from pricing._specs import GpuSpec, gpu_spec

__all__ = ["computes_in", "from_published"]


def computes_in(spec: GpuSpec, precision: str | None) -> bool:
    """True when the GPU's tensor cores compute in ``precision`` (not just store it)."""
    p = (precision or "BF16").upper()
    if "FP8" in p:
        return spec.fp8_tflops is not None
    return bytes_per_param(p) >= 2.0  # BF16/FP16/FP32; INT4/FP4 run weight-only kernels


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


def from_published(
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
