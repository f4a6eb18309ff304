"""The throughput estimator's fitted constants: efficiencies, bands and the derating.

Each path of :func:`pricing._throughput.estimate_throughput` scales its rows/s by a band
(``low``/``high`` multipliers) and, with no figure at all, by a share of the roofline.
Every constant but :data:`MEASURED_BAND` is fitted to the published rows, each predicted
without itself (``benchmarks/bench_estimator.py`` prints the fits and the held-out errors;
``tests/unit/test_pricing_estimator.py`` pins the constants to them).
"""

from __future__ import annotations

from dataclasses import dataclass

from pricing._figures import engine_family

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
    "first_principles_fit",
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
