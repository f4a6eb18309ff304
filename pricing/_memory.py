"""Memory fit: whether a model and its contexts fit on N accelerators, and the least N.

The planner asks these before any throughput: a worker that cannot hold the weights and
one full context per sequence in flight is never offered.
"""

from __future__ import annotations

from pricing._models import ModelInfo
from pricing._roofline import bytes_per_param, fits
from pricing._specs import gpu_spec

__all__ = ["gpus_needed", "memory_fit"]


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
