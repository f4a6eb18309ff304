"""What the planner asks of the price catalog: a small seam over :mod:`pricing`.

The planner only needs a handful of answers (offerings, GPUs per worker, throughput, start-up
and preemption figures). :class:`Market` states them as a Protocol so that unit tests and
the Monte Carlo benchmark can hand the planner a small hand-built market, while
:class:`CatalogMarket` answers from the DuckDB catalog. ``pricing`` (and with it DuckDB) is
imported when a :class:`CatalogMarket` is built, never when this module is imported.
"""

from __future__ import annotations

import contextlib
import contextvars
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    import pricing

__all__ = [
    "CatalogMarket",
    "EstimateLike",
    "Market",
    "OfferingLike",
    "catalog_market",
    "model_load_s",
]

# Start-up beyond provisioning and setup: downloading and loading the weights (their size
# is parameters x bytes per weight of the checkpoint's precision). Hubs and buckets give a
# worker roughly 0.5 GB/s; 30 s covers the engine's own start (CUDA context, graphs).
LOAD_BASE_S = 30.0
LOAD_GB_PER_S = 0.5
BYTES_PER_PARAM = 2.0  # bf16 weights, when the precision is not known


class OfferingLike(Protocol):
    """The parts of :class:`pricing.Offering` the planner reads."""

    @property
    def cloud(self) -> str: ...
    @property
    def region(self) -> str: ...
    @property
    def instance_type(self) -> str: ...
    @property
    def accelerator(self) -> str: ...
    @property
    def accelerator_count(self) -> int: ...
    @property
    def flags(self) -> tuple[str, ...]: ...
    def price(self, spot: bool) -> float | None: ...


class EstimateLike(Protocol):
    """The parts of :class:`pricing.ThroughputEstimate` the planner reads."""

    @property
    def rows_per_s(self) -> float: ...
    @property
    def low_rows_per_s(self) -> float: ...
    @property
    def high_rows_per_s(self) -> float: ...
    @property
    def kind(self) -> str: ...
    @property
    def source(self) -> str: ...


class Market(Protocol):
    """Everything the planner needs to know about prices, GPUs and clouds."""

    def offerings(
        self,
        *,
        accelerators: Sequence[str] | None,
        clouds: Sequence[str] | None,
        regions: Sequence[str] | None,
    ) -> Sequence[OfferingLike]:
        """Trusted offerings in the allowed accelerators, clouds and regions."""
        ...

    def gpus_needed(self, *, model: str, accelerator: str, context_tokens: int) -> int | None:
        """GPUs of this type one worker needs to hold the model (None: it cannot)."""
        ...

    def estimate(
        self,
        *,
        model: str,
        engine: str,
        task: str,
        accelerator: str,
        count: int,
        input_tokens: float,
        output_tokens: float,
    ) -> EstimateLike:
        """Rows/s of one worker, with its band and provenance."""
        ...

    def preemption_rate_per_hour(self, cloud: str, accelerator: str, region: str) -> float:
        """Spot preemptions per instance-hour of this GPU class on ``cloud`` (and region)."""
        ...

    def capacity_wait_s(self, cloud: str, accelerator: str) -> float:
        """The further start-up wait of each next spot worker (capacity comes one by one)."""
        ...

    def billing_increment_s(self, cloud: str) -> float:
        """The cloud rounds each instance's billed time up to a multiple of this."""
        ...

    def egress_usd_per_gb(self, cloud: str) -> float:
        """What a GB leaving ``cloud`` for another cloud costs (0 when unknown)."""
        ...

    def startup_s(self, cloud: str) -> float:
        """Provisioning + setup of one worker on ``cloud`` (model load not included)."""
        ...

    def model_load_s(self, model: str) -> float:
        """Seconds to download and load the model's weights."""
        ...

    def prices_age_days(self) -> float | None:
        """Age of the oldest price in use (None if unknown)."""
        ...


def model_load_s(params_b: float | None, bytes_per_param: float = BYTES_PER_PARAM) -> float:
    """Download (size ÷ bandwidth) + load time of a model of ``params_b`` billion weights."""
    if params_b is None:
        return LOAD_BASE_S
    return LOAD_BASE_S + params_b * bytes_per_param / LOAD_GB_PER_S


class CatalogMarket:
    """The :class:`Market` answered from the DuckDB catalog of :mod:`pricing`.

    Answers are memoised for the life of the object: each pricing call opens a short-lived
    DuckDB connection (tens of ms), and one plan asks the same questions many times.
    """

    def __init__(self) -> None:
        import pricing as _pricing  # DuckDB comes with it: only when a plan is made

        self._pricing = _pricing
        self._models: dict[str, pricing.ModelInfo | None] = {}
        self._startup: dict[str, float] = {}
        self._preempt: dict[str, float] = {}
        self._estimates: dict[tuple[object, ...], EstimateLike] = {}
        self._offerings: dict[tuple[object, ...], Sequence[OfferingLike]] = {}
        self._needed: dict[tuple[str, str, int], int | None] = {}
        self._age: tuple[float | None] | None = None
        # Per thread (context), not per object: the process shares one market, and the
        # TUI plans from worker threads; a batch's DuckDB session belongs to its thread.
        self._batch: contextvars.ContextVar[contextlib.ExitStack | None] = contextvars.ContextVar(
            f"skybatch-market-batch-{id(self)}", default=None
        )

    @contextlib.contextmanager
    def batch(self) -> Iterator[None]:
        """One DuckDB connection for the questions asked inside the block (a plan).

        The connection opens at the first question not answered from memory, so a plan
        that the memo answers in full touches no file at all.
        """
        if self._batch.get() is not None:
            yield
            return
        with contextlib.ExitStack() as stack:
            token = self._batch.set(stack)
            try:
                yield
            finally:
                self._batch.reset(token)

    def _read(self) -> None:
        """Before a pricing call: join the batch's session if one is open."""
        stack = self._batch.get()
        self._batch.set(None)  # enter once per batch
        session = getattr(self._pricing, "session", None)
        if stack is not None and session is not None:
            stack.enter_context(session())

    def _model(self, name: str) -> pricing.ModelInfo | None:
        if name not in self._models:
            self._read()
            self._models[name] = self._pricing.model_info(name)
        return self._models[name]

    def offerings(
        self,
        *,
        accelerators: Sequence[str] | None,
        clouds: Sequence[str] | None,
        regions: Sequence[str] | None,
    ) -> Sequence[OfferingLike]:
        accs = (
            [self._pricing.normalize_accelerator(a) for a in accelerators] if accelerators else None
        )
        key = (tuple(accs or ()), tuple(clouds or ()), tuple(regions or ()))
        if key not in self._offerings:
            self._read()
            self._offerings[key] = self._pricing.list_offerings(
                accelerators=accs, clouds=clouds, regions=regions
            )
        return self._offerings[key]

    def gpus_needed(self, *, model: str, accelerator: str, context_tokens: int) -> int | None:
        key = (model, accelerator, context_tokens)
        if key not in self._needed:
            info = self._model(model)
            self._read()
            # An unknown (small or custom) model: one GPU, as the user wrote it.
            self._needed[key] = (
                1
                if info is None
                else self._pricing.gpus_needed(
                    model=info,
                    accelerator=accelerator,
                    context_tokens=context_tokens,
                    # FP8/INT4 checkpoints (by name or config) take 1 or 0.5 bytes a weight, as the
                    # throughput estimate assumes too.
                    precision=self._pricing.precision_of(model),
                )
            )
        return self._needed[key]

    def estimate(
        self,
        *,
        model: str,
        engine: str,
        task: str,
        accelerator: str,
        count: int,
        input_tokens: float,
        output_tokens: float,
    ) -> EstimateLike:
        key = (model, engine, task, accelerator, count, input_tokens, output_tokens)
        if key not in self._estimates:
            self._read()
            self._estimates[key] = self._pricing.estimate_throughput(
                model=model,
                engine=engine,
                task=task,
                accelerator=accelerator,
                count=count,
                input_tokens=input_tokens,
                output_tokens=output_tokens,
            )
        return self._estimates[key]

    def preemption_rate_per_hour(self, cloud: str, accelerator: str, region: str) -> float:
        key = f"{cloud}/{accelerator}/{region}"
        if key not in self._preempt:
            self._read()
            self._preempt[key] = float(
                self._pricing.preemption_rate_per_hour(cloud, accelerator, region)
            )
        return self._preempt[key]

    def capacity_wait_s(self, cloud: str, accelerator: str) -> float:
        return float(self._pricing.spot_risk(cloud, accelerator).capacity_wait_s_per_worker)

    def billing_increment_s(self, cloud: str) -> float:
        return float(self._pricing.cloud_terms(cloud).billing_increment_s)

    def egress_usd_per_gb(self, cloud: str) -> float:
        return float(self._pricing.cloud_terms(cloud).egress_usd_per_gb or 0.0)

    def startup_s(self, cloud: str) -> float:
        if cloud not in self._startup:
            self._read()
            self._startup[cloud] = float(self._pricing.startup_s(cloud))
        return self._startup[cloud]

    def model_load_s(self, model: str) -> float:
        info = self._model(model)
        weight_bytes = self._pricing.bytes_per_param(self._pricing.precision_of(model))
        return model_load_s(info.params_b if info is not None else None, weight_bytes)

    def prices_age_days(self) -> float | None:
        if self._age is None:
            self._read()
            age = self._pricing.prices_age_days()
            self._age = (None if age is None else float(age),)
        return self._age[0]


_shared: tuple[tuple[object, ...], CatalogMarket] | None = None


def catalog_market() -> CatalogMarket:
    """A :class:`CatalogMarket` shared within this process while the database is unchanged.

    The TUI and the launcher plan again and again; any write to the DuckDB file (a refresh,
    a new throughput figure, run history) changes its mtime and starts a fresh market.
    """
    global _shared
    from pricing import db_signature

    sig = db_signature()
    if _shared is None or _shared[0] != sig:
        _shared = (sig, CatalogMarket())
    return _shared[1]
