"""The deadline planner: which GPU, where, spot or not, how many workers, how long, how much.

Modules: ``_planner`` (the search over candidates), ``_candidates`` (accelerator × GPU
count × spot, their replicas and models), ``_types`` (request, options, plan),
``_model`` (the analytic finish-time / cost / P(on time) model), ``_market`` (the seam over
:mod:`pricing`), ``_measure`` (what a measured throughput would save) and ``_workload``
(rows and tokens per row). Import from here.
"""

from __future__ import annotations

from scheduler.plan._market import (
    CatalogMarket,
    catalog_market,
    model_load_s,
)
from scheduler.plan._model import (
    CandidateModel,
    evaluate,
    p_on_time,
    sigma_from_band,
)
from scheduler.plan._planner import (
    STARTUP_SIGMA,
    plan_recipe,
    plan_workload,
    rows_per_shard_for,
)
from scheduler.plan._types import (
    DEFAULT_DEADLINE_S,
    OfferingChoice,
    Plan,
    PlanOption,
    PlanRequest,
    format_duration,
    money,
)
from scheduler.plan._workload import (
    CHAT_OVERHEAD_TOKENS,
    Workload,
    count_tokens,
    measure_workload,
)

__all__ = [
    "CHAT_OVERHEAD_TOKENS",
    "DEFAULT_DEADLINE_S",
    "STARTUP_SIGMA",
    "CandidateModel",
    "CatalogMarket",
    "OfferingChoice",
    "Plan",
    "PlanOption",
    "PlanRequest",
    "Workload",
    "catalog_market",
    "count_tokens",
    "evaluate",
    "format_duration",
    "measure_workload",
    "model_load_s",
    "money",
    "p_on_time",
    "plan_recipe",
    "plan_workload",
    "rows_per_shard_for",
    "sigma_from_band",
]
