"""The planner's value objects: the request, the options and the plan it returns.

:mod:`scheduler.plan._planner` builds them; :mod:`scheduler.plan` exports them.
``Plan.to_json`` is the ``skybatch plan --json`` contract of docs/ARCHITECTURE.md.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from scheduler.errors import PlanError
from scheduler.plan._model import CandidateModel
from scheduler.plan._workload import Workload

if TYPE_CHECKING:
    from scheduler.recipe import Recipe

__all__ = [
    "DEFAULT_DEADLINE_S",
    "OfferingChoice",
    "Plan",
    "PlanOption",
    "PlanRequest",
    "format_duration",
    "money",
]

DEFAULT_DEADLINE_S = 24 * 3600.0


def money(usd: float) -> str:
    """``$1,234`` or ``$12.34``."""
    return f"${usd:,.0f}" if usd >= 100 else f"${usd:,.2f}"


_URL_CLOUDS = {"s3": "aws", "s3a": "aws", "gs": "gcp", "gcs": "gcp", "az": "azure", "abfs": "azure"}


def cloud_of_url(url: str) -> str | None:
    """The cloud an object-store URL lives in (``s3://`` aws, ``gs://`` gcp), else None."""
    scheme = url.split("://", 1)[0].lower() if "://" in url else ""
    return _URL_CLOUDS.get(scheme)


def format_duration(seconds: float) -> str:
    """``8h``, ``1h30m``, ``45m``, ``90s`` (the way a recipe writes it)."""
    if seconds >= 3600 and seconds % 3600 == 0:
        return f"{seconds / 3600:g}h"
    if seconds >= 3600:
        return f"{int(seconds // 3600)}h{round(seconds % 3600 / 60)}m"
    if seconds >= 60:
        return f"{seconds / 60:g}m"
    return f"{seconds:g}s"


@dataclass(frozen=True)
class PlanRequest:
    """What the user asks for: the model, the deadline, the budget and where to run."""

    model: str
    engine: str
    task: str
    deadline_s: float
    budget_usd: float | None = None
    spot: Literal["prefer", "require", "never"] = "prefer"
    clouds: tuple[str, ...] | None = None
    regions: tuple[str, ...] | None = None
    accelerators: tuple[str, ...] | None = None
    max_workers: int = 16
    p_target: float = 0.95
    rows_per_shard: int | None = None
    deadline_defaulted: bool = False
    input_cloud: str | None = None  # where the input lives (s3:// aws, gs:// gcp), if a cloud
    store_cloud: str | None = None  # where the outputs go

    @classmethod
    def from_recipe(
        cls, recipe: Recipe, *, deadline_s: float | None = None, budget_usd: float | None = None
    ) -> PlanRequest:
        """Flags first, then the recipe's ``schedule``, then defaults."""
        s = recipe.schedule
        deadline = deadline_s if deadline_s is not None else s.deadline
        return cls(
            model=recipe.model.name,
            engine=recipe.model.engine,
            task=recipe.task,
            deadline_s=deadline if deadline is not None else DEFAULT_DEADLINE_S,
            budget_usd=budget_usd if budget_usd is not None else s.budget_usd,
            spot=s.spot,
            clouds=tuple(s.clouds) if s.clouds else None,
            regions=tuple(s.regions) if s.regions else None,
            accelerators=tuple(s.accelerators) if s.accelerators else None,
            max_workers=s.max_workers,
            p_target=s.p_target,
            rows_per_shard=recipe.shards.rows_per_shard,
            deadline_defaulted=deadline is None,
            input_cloud=cloud_of_url(recipe.input.path),
            store_cloud=cloud_of_url(recipe.store),
        )


@dataclass(frozen=True)
class OfferingChoice:
    """One SkyPilot candidate of an option: where, which instance, at what price."""

    cloud: str
    region: str
    instance_type: str
    usd_per_hour: float

    def to_json(self) -> dict[str, Any]:
        return {
            "cloud": self.cloud,
            "region": self.region,
            "instance_type": self.instance_type,
            "usd_per_hour": round(self.usd_per_hour, 4),
        }


@dataclass(frozen=True)
class PlanOption:
    """One way to run the job: ``workers`` × (accelerator × count) on spot or on demand.

    Each worker runs ``replicas_per_worker`` engines of ``tensor_parallel_size`` GPUs each.
    """

    accelerator: str
    accelerators_per_worker: int
    tensor_parallel_size: int
    replicas_per_worker: int
    spot: bool
    workers: int
    hours: float
    cost_usd: float
    p_on_time: float
    throughput_source: str  # measured | scaled | published | estimated
    throughput_detail: str
    rows_per_s: float  # per worker, the estimate's median
    rows_per_shard: int
    offerings: tuple[OfferingChoice, ...]
    on_time: bool  # P(on time) ≥ the target with at most max_workers workers
    within_budget: bool
    pareto: bool = False
    egress_usd: float = 0.0  # input/output crossing clouds, included in cost_usd
    model: CandidateModel | None = field(default=None, compare=False, repr=False)

    @property
    def feasible(self) -> bool:
        """On time and within budget: a plan the launcher may run."""
        return self.on_time and self.within_budget

    def describe(self) -> str:
        """``4× L4 spot``, ``2× (H100×4) on-demand`` or ``1× (H200×8, 4 replicas) spot``."""
        gpu = (
            self.accelerator
            if self.accelerators_per_worker == 1
            else f"({self.accelerator}×{self.accelerators_per_worker}{self._replicas()})"
        )
        return f"{self.workers}× {gpu} {'spot' if self.spot else 'on-demand'}"

    def _replicas(self) -> str:
        n = self.replicas_per_worker
        return f", {n} replicas" if n > 1 else ""

    def where(self) -> str:
        """``aws/us-east-1`` of the cheapest offering, ``+2`` for the other candidates."""
        first = self.offerings[0]
        more = f" +{len(self.offerings) - 1}" if len(self.offerings) > 1 else ""
        return f"{first.cloud}/{first.region}{more}"

    def to_json(self) -> dict[str, Any]:
        return {
            "accelerator": self.accelerator,
            "accelerators_per_worker": self.accelerators_per_worker,
            "tensor_parallel_size": self.tensor_parallel_size,
            "replicas_per_worker": self.replicas_per_worker,
            "spot": self.spot,
            "workers": self.workers,
            "hours": round(self.hours, 3),
            "cost_usd": round(self.cost_usd, 2),
            "p_on_time": round(self.p_on_time, 4),
            "throughput_source": self.throughput_source,
            "throughput_detail": self.throughput_detail,
            "rows_per_s": round(self.rows_per_s, 3),
            "rows_per_shard": self.rows_per_shard,
            "pareto": self.pareto,
            "on_time": self.on_time,
            "within_budget": self.within_budget,
            "egress_usd": round(self.egress_usd, 2),
            "offerings": [o.to_json() for o in self.offerings],
        }


@dataclass(frozen=True)
class Plan:
    """The ranked options, the choice (or why there is none) and what the plan assumed."""

    workload: Workload
    request: PlanRequest
    options: tuple[PlanOption, ...]
    chosen: int | None
    reason: str
    warnings: tuple[str, ...] = ()

    @property
    def choice(self) -> PlanOption | None:
        """The chosen option, or None."""
        return None if self.chosen is None else self.options[self.chosen]

    def require(self) -> PlanOption:
        """The chosen option; :class:`PlanError` with the one-line reason when none fits."""
        if self.chosen is None:
            raise PlanError(self.reason)
        return self.options[self.chosen]

    def usd_per_million_tokens(self, option: PlanOption) -> tuple[float | None, float | None]:
        """The headline: $ per 1M tokens (input + output) and per 1M output tokens."""
        w = self.workload
        total = w.rows * (w.input_tokens_per_row + w.output_tokens_per_row)
        out = w.rows * w.output_tokens_per_row
        per_total = option.cost_usd / total * 1e6 if total > 0 else None
        per_out = option.cost_usd / out * 1e6 if out > 0 else None
        return per_total, per_out

    def _option_json(self, option: PlanOption) -> dict[str, Any]:
        per_total, per_out = self.usd_per_million_tokens(option)
        return {
            **option.to_json(),
            "usd_per_million_tokens": None if per_total is None else round(per_total, 6),
            "usd_per_million_output_tokens": None if per_out is None else round(per_out, 6),
        }

    def to_json(self, *, top: int | None = None) -> dict[str, Any]:
        """The ``skybatch plan --json`` object (see docs/ARCHITECTURE.md, command contract)."""
        options = self.options if top is None else self.options[: max(top, 1)]
        return {
            "workload": self.workload.to_json(),
            "options": [self._option_json(o) for o in options],
            "chosen": self.chosen,
            "reason": self.reason,
            "deadline_s": self.request.deadline_s,
            "budget_usd": self.request.budget_usd,
            "p_target": self.request.p_target,
            "warnings": list(self.warnings),
        }
