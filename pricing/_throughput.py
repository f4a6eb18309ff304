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

The constants live in :mod:`pricing._bands`; every one but :data:`MEASURED_BAND` is fitted to the published rows, each predicted
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

from collections.abc import Sequence

from pricing._bands import (
    MEASURED_BAND,
    RESCALED_BAND,
    SCALED_BAND,
    ThroughputEstimate,
    first_principles_fit,
)
from pricing._figures import Figure, engine_family, figures_for
from pricing._models import is_encoder, model_info, model_key, precision_of
from pricing._published import from_published
from pricing._roofline import generate_time
from pricing._scaling import (
    describe,
    rows_of,
    scaled_from,
    seconds_per_row,
    shape_distance,
    shape_of,
    tokens,
)
from pricing._specs import gpu_spec, normalize_accelerator

__all__ = ["estimate_throughput"]


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
    got_pub = from_published(
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
