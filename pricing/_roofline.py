"""First-principles cost of inference on one accelerator group: memory fit and roofline.

Everything here is arithmetic over a :class:`~pricing._specs.GpuSpec` and a
:class:`~pricing._models.ModelInfo`; no database, no I/O.

Memory: weights (params x bytes per param) plus the KV cache of every sequence in flight
(layers x 2 x kv_heads x head_dim x bytes x context tokens), plus a fixed runtime reserve
per GPU, must fit in the usable share of the group's memory.

Time per row (one sequence of I input and O output tokens), at the largest batch B that
fits (capped by the engine's scheduler):

* prefill: compute-bound, ``(2 P I + 2 L d I^2) / FLOPs``;
* decode: each step reads the weights once and the KV cache of the batch, and does
  ``2 P B`` FLOPs: ``step = max(bytes / bandwidth, flops / FLOPs)``; O steps for B rows.

Decode is therefore priced by memory bandwidth while the batch is small and by FLOPs once
it is large; the two phases add up, so each weighs by its share of the time. The absolute
figures are optimistic (perfect kernels): the estimator scales measured figures by the
*ratio* of two roofline times, and derates when it has nothing measured.
"""

from __future__ import annotations

from dataclasses import dataclass

from pricing._models import ModelInfo
from pricing._specs import GpuSpec

__all__ = [
    "RooflineTime",
    "bytes_per_param",
    "encoder_time_per_row_s",
    "fits",
    "generate_time",
    "kv_bytes_per_token",
]

GIB = 1024**3
USABLE_MEMORY = 0.90  # what serving engines claim by default (vLLM gpu_memory_utilization)
RESERVE_GIB_PER_GPU = 1.5  # CUDA context, activations, graphs
# Tensor parallelism loses to communication: efficiency per group size.
TP_EFFICIENCY = {1: 1.0, 2: 0.9, 4: 0.8, 8: 0.7}


def bytes_per_param(precision: str | None) -> float:
    """Weight bytes per parameter for a precision name (BF16 when unknown)."""
    p = (precision or "BF16").upper()
    if "FP32" in p:
        return 4.0
    if "FP8" in p or "INT8" in p:
        return 1.0
    if "FP4" in p or "INT4" in p:
        return 0.5
    return 2.0


def kv_cache_bytes(weight_bytes: float) -> float:
    """Bytes per KV-cache element for weights of ``weight_bytes``: quantised (FP8/INT4)
    deployments keep the cache in 8 bits, everything else in 16 (never 32)."""
    return min(2.0, max(1.0, weight_bytes))


def kv_bytes_per_token(model: ModelInfo, kv_dtype_bytes: float = 2.0) -> float:
    """KV-cache bytes one token occupies (all layers), Llama-like guess when unknown."""
    if model.layers and model.kv_heads and model.head_dim:
        return float(model.layers * 2 * model.kv_heads * model.head_dim * kv_dtype_bytes)
    # Grouped-query attention with 8 KV heads of 128; depth grows slowly with size.
    layers = max(8.0, 32.0 * float((model.params_b / 8.0) ** 0.35))
    return layers * 2 * 8 * 128 * kv_dtype_bytes


def _usable_bytes(spec: GpuSpec, count: int) -> float:
    return (spec.memory_gib * USABLE_MEMORY - RESERVE_GIB_PER_GPU) * GIB * count


def fits(
    *,
    model: ModelInfo,
    spec: GpuSpec,
    count: int,
    context_tokens: int,
    batch_seqs: int = 1,
    dtype_bytes: float = 2.0,
) -> bool:
    """True when weights + the KV cache of ``batch_seqs`` full contexts fit."""
    weights = model.params_b * 1e9 * dtype_bytes
    kv = kv_bytes_per_token(model, kv_cache_bytes(dtype_bytes)) * context_tokens * batch_seqs
    if model.encoder:
        kv = 0.0  # no cache: activations only, covered by the reserve
    return weights + kv <= _usable_bytes(spec, count)


def _flops(spec: GpuSpec, count: int, precision: str | None) -> float:
    p = (precision or "BF16").upper()
    low_precision = "FP8" in p or "FP4" in p
    tflops = spec.fp8_tflops if low_precision and spec.fp8_tflops else spec.bf16_tflops
    return tflops * 1e12 * count * TP_EFFICIENCY.get(count, 0.7)


def _bandwidth(spec: GpuSpec, count: int) -> float:
    return spec.mem_bandwidth_gbps * 1e9 * count * TP_EFFICIENCY.get(count, 0.7)


@dataclass(frozen=True)
class RooflineTime:
    """Seconds of accelerator time per row, by phase, at batch ``batch``."""

    prefill_s: float
    decode_s: float
    batch: float

    @property
    def total_s(self) -> float:
        """Both phases."""
        return self.prefill_s + self.decode_s


def generate_time(
    *,
    model: ModelInfo,
    spec: GpuSpec,
    count: int,
    precision: str | None,
    input_tokens: float,
    output_tokens: float,
    batch_cap: int,
) -> RooflineTime | None:
    """Roofline seconds per row for generation, or None when the weights do not fit."""
    params = model.params_b * 1e9
    weights = params * bytes_per_param(precision)
    # FP8/FP4 deployments keep the KV cache in FP8 too (TensorRT-LLM and vLLM defaults
    # for quantised checkpoints), which doubles the batch that fits.
    kv_tok = kv_bytes_per_token(model, kv_cache_bytes(bytes_per_param(precision)))
    free = _usable_bytes(spec, count) - weights
    if free <= 0:
        return None
    ctx = max(1.0, input_tokens + output_tokens)
    batch = max(1.0, min(float(batch_cap), free / (kv_tok * ctx)))
    flops, bandwidth = _flops(spec, count, precision), _bandwidth(spec, count)
    layers_x_hidden = (model.layers or 32) * (model.hidden or 4096)
    attn_prefill = 2.0 * layers_x_hidden * input_tokens**2
    prefill_s = (2.0 * params * input_tokens + attn_prefill) / flops
    if output_tokens <= 0:
        return RooflineTime(prefill_s, 0.0, batch)
    mean_ctx = input_tokens + output_tokens / 2.0
    step_bytes = weights + batch * kv_tok * mean_ctx
    step_flops = batch * (2.0 * params + 4.0 * layers_x_hidden * mean_ctx)
    step_s = max(step_bytes / bandwidth, step_flops / flops)
    decode_s = output_tokens * step_s / batch
    return RooflineTime(prefill_s, decode_s, batch)


def encoder_time_per_row_s(
    *, model: ModelInfo, spec: GpuSpec, count: int, precision: str | None, input_tokens: float
) -> float:
    """Roofline seconds per row for one forward pass of an encoder (compute-bound)."""
    if model.layers and model.hidden:
        # Embedding tables cost no FLOPs: count the transformer blocks only.
        block_params = 12.0 * model.layers * model.hidden**2
    else:
        block_params = model.params_b * 1e9
    layers_x_hidden = (model.layers or 12) * (model.hidden or 768)
    flops_per_row = 2.0 * block_params * input_tokens + 4.0 * layers_x_hidden * input_tokens**2
    return flops_per_row / _flops(spec, count, precision)
