"""What ``skybatch launch`` was asked for and which option it runs: run ids, plan options.

Run ids may be templates for recurring jobs: ``{date}`` (2026-11-23), ``{time}`` (0215),
``{datetime}``, ``{name}`` (the recipe's name) and any strftime code (``%Y%m%d``), in UTC.
The option a launch runs is a typed, frozen :class:`~scheduler.store.LaunchOption`: the
planner's choice, ``--plan N``, ``--gpu G --workers N`` (the cheapest catalog offerings of
G), or for the local backend this machine with a notional price. It is made here once and
handed, as is, to the guard, the scalers, task building and ``outcome_of``.
"""

from __future__ import annotations

import socket
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

from scheduler.errors import PlanError, RecipeError, UsageError
from scheduler.launch._summary import Outcome
from scheduler.recipe import Recipe
from scheduler.store import LaunchOption, Offering, validate_run_id

if TYPE_CHECKING:
    from scheduler.inputs import Input

__all__ = [
    "LaunchRequest",
    "LaunchResult",
    "choose_option",
    "describe_option",
    "render_run_id",
    "with_schedule",
]


@dataclass(frozen=True)
class LaunchRequest:
    """Everything ``skybatch launch`` was asked to do."""

    recipe_path: str
    backend: str = "skypilot"
    deadline_s: float | None = None
    budget_usd: float | None = None
    plan_index: int | None = None
    gpu: str | None = None
    workers: int | None = None
    dry_run: bool = False
    all_documents: bool = False  # --dry-run --all: every worker's task, not each distinct one
    wait: bool = False
    yes: bool = False
    run_id: str | None = None
    store_url: str | None = None
    summary_md: str | None = None
    incremental: bool = False
    secrets: tuple[str, ...] = ()
    guard: bool = True
    guard_interval_s: float = 180.0
    poll_s: float = 2.0
    usd_per_hour: float = 0.0  # local workers: a notional price, for budgets and tests
    progress: bool = True


@dataclass
class LaunchResult:
    """What a launch did."""

    run_id: str
    store: str
    backend: str
    option: LaunchOption
    dry_run_yaml: str | None = None
    jobs: dict[str, int] = field(default_factory=dict)
    outcome: Outcome | None = None
    #: The backend that started the workers (a detached launch's caller may wait on it).
    backend_object: Any = field(default=None, repr=False, compare=False)
    #: Why a dry run could not derive the run id (``run_id`` is then empty).
    run_id_problem: str | None = None

    def to_json(self) -> dict[str, Any]:
        """The ``launch --json`` object."""
        if self.outcome is not None:
            return {**self.outcome.to_json(), "jobs": self.jobs, "plan": self.option.to_json()}
        return {
            "run_id": self.run_id or None,
            **({"run_id_problem": self.run_id_problem} if self.run_id_problem else {}),
            "store": self.store,
            "backend": self.backend,
            "state": "dry-run" if self.dry_run_yaml is not None else "launched",
            "jobs": self.jobs,
            "plan": self.option.to_json(),
        }


# ---------------------------------------------------------------------- run ids


def render_run_id(template: str, *, name: str, now: datetime | None = None) -> str:
    """Expand a run-id template (see the module docstring) and validate the result."""
    now = now or datetime.now(timezone.utc)
    fields = {
        "date": now.strftime("%Y-%m-%d"),
        "time": now.strftime("%H%M"),
        "datetime": now.strftime("%Y%m%dT%H%M"),
        "name": name,
    }
    try:
        text = template.format(**fields) if "{" in template else template
    except (KeyError, IndexError, ValueError) as e:
        raise UsageError(
            f"--run-id {template!r}: unknown field {e}; use {{date}}, {{time}}, "
            "{datetime}, {name} or strftime codes such as %Y%m%d"
        ) from e
    if "%" in text:
        text = now.strftime(text)
    return validate_run_id(text)


# ---------------------------------------------------------------------- choosing what to run


def _local_option(workers: int, usd_per_hour: float) -> LaunchOption:
    here = Offering("local", socket.gethostname(), "this machine", usd_per_hour)
    return LaunchOption("local", gpus_per_worker=1, workers=workers, offerings=(here,))


def _gpus_needed(recipe: Recipe, acc: str, source: Callable[[], Input] | None) -> int:
    """GPUs one engine of the recipe's model needs on ``acc`` (the planner's memory check);
    a GPU that cannot hold it even eight at a time is refused."""
    from scheduler.errors import SkybatchError
    from scheduler.plan import catalog_market, measure_workload

    try:
        context = measure_workload(recipe, source=source).context_tokens
    except SkybatchError:  # the input cannot be read from here: a modest context
        context = 2048 + (recipe.sampling.max_tokens if recipe.task == "generate" else 0)
    need = catalog_market().gpus_needed(
        model=recipe.model.name, accelerator=acc, context_tokens=context
    )
    if need is None:
        raise PlanError(
            f"--gpu {acc}: {recipe.model.name} does not fit in the memory of up to 8 {acc} "
            "per worker; pick a GPU with more memory (see `skybatch plan RECIPE`)"
        )
    return need


def _manual_option(
    recipe: Recipe, gpu: str, workers: int, source: Callable[[], Input] | None = None
) -> LaunchOption:
    """``--gpu G --workers N``: the cheapest trusted offerings of G with enough of them per
    worker to hold the model (one engine of ``need`` GPUs, replicated when more fit)."""
    import pricing

    acc = pricing.normalize_accelerator(gpu)
    need = _gpus_needed(recipe, acc, source)
    spot = recipe.schedule.spot != "never"
    offers = [
        o
        for o in pricing.list_offerings(
            accelerators=[acc], clouds=recipe.schedule.clouds, regions=recipe.schedule.regions
        )
        if o.accelerator_count >= need
    ]
    priced = sorted(
        ((o.price(spot), o) for o in offers if o.price(spot) is not None),
        key=lambda p: (p[1].accelerator_count, p[0]),
    )
    if not priced and spot and recipe.schedule.spot == "prefer":
        spot = False
        priced = sorted(
            ((o.price(False), o) for o in offers if o.price(False) is not None),
            key=lambda p: (p[1].accelerator_count, p[0]),
        )
    if not priced:
        at_least = f" with at least {need} per instance" if need > 1 else ""
        raise PlanError(
            f"--gpu {gpu}: no trusted {'spot ' if spot else ''}price for {acc}{at_least} in "
            "the catalog for this recipe's clouds/regions; see `skybatch pricing show`"
        )
    count = priced[0][1].accelerator_count
    offerings = [
        Offering(o.cloud, o.region, o.instance_type, float(price or 0.0))
        for price, o in priced
        if o.accelerator_count == count
    ][:3]
    return LaunchOption(
        acc,
        gpus_per_worker=count,
        spot=spot,
        workers=workers,
        offerings=tuple(offerings),
        tensor_parallel_size=need,
        replicas_per_worker=count // need,
    )


def with_recipe_tp(recipe: Recipe, option: LaunchOption) -> LaunchOption:
    """The option with the recipe's ``model.options.tensor_parallel_size``, if it sets one.

    The plan gives each engine the fewest GPUs that hold the model; a recipe may ask for
    more per engine when they divide a worker's GPUs. Fewer than the model needs, or a
    number that does not divide the worker's GPUs, contradicts the option and is refused.
    """
    raw = recipe.model.options.get("tensor_parallel_size")
    if raw is None or recipe.model.engine != "vllm" or option.accelerator == "local":
        return option
    where = f"{recipe.source or 'the recipe'}: model.options.tensor_parallel_size"
    if isinstance(raw, bool) or not isinstance(raw, int) or raw < 1:
        raise RecipeError(f"{where} {raw!r}: give a whole number of GPUs (1, 2, 4, 8)")
    gpus, need = option.gpus_per_worker, option.tp_size
    if raw > gpus or gpus % raw or raw < need:
        why = (
            f"fewer than the {need} {option.accelerator} the model needs"
            if raw < need
            else f"does not divide the {gpus} {option.accelerator} of a worker"
        )
        raise RecipeError(
            f"{where} {raw} contradicts the launch option ({gpus}× {option.accelerator} per "
            f"worker): {why}; remove it to use the plan's, or pick --gpu with a fitting count"
        )
    return option.with_(tensor_parallel_size=raw, replicas_per_worker=gpus // raw)


def choose_option(
    recipe: Recipe, req: LaunchRequest, *, source: Callable[[], Input] | None = None
) -> tuple[LaunchOption, dict[str, Any] | None]:
    """The option to launch and the whole plan (``plan --json``) when the planner made it.

    ``source`` opens the input once for the whole launch (the planner samples it).
    Workers on this machine need no plan: they run here at a notional price.
    """
    from scheduler.backends import backend_class

    if not backend_class(req.backend).remote:
        return _local_option(req.workers or 1, req.usd_per_hour), None
    if req.gpu:
        if not req.workers:
            raise UsageError("--gpu needs --workers N (how many workers of that GPU)")
        return with_recipe_tp(recipe, _manual_option(recipe, req.gpu, req.workers, source)), None
    from scheduler.plan import plan_recipe

    plan = plan_recipe(recipe, deadline_s=req.deadline_s, budget_usd=req.budget_usd, source=source)
    data = plan.to_json()
    if req.plan_index is not None:
        if not 0 <= req.plan_index < len(plan.options):
            raise UsageError(
                f"--plan {req.plan_index}: the plan has options 0..{len(plan.options) - 1}; "
                "see `skybatch plan RECIPE`"
            )
        chosen = plan.options[req.plan_index]
    else:
        chosen = plan.require()
    option = LaunchOption.from_json(chosen.to_json(), where="the plan's option")
    if req.workers:
        option = option.with_(workers=req.workers)
    return with_recipe_tp(recipe, option), data


def describe_option(option: LaunchOption) -> str:
    """``3× H100 spot on aws/us-east-1 +2 · 2.1 h · $41.00 · P(on time) 0.97``."""
    gpu = option.accelerator
    if option.gpus_per_worker > 1:
        gpu = f"({gpu}×{option.gpus_per_worker})"
    offs = option.offerings
    where = f"{offs[0].cloud}/{offs[0].region}" if offs else "anywhere"
    if len(offs) > 1:
        where += f" +{len(offs) - 1}"
    parts = [f"{option.workers}× {gpu} {'spot' if option.spot else 'on-demand'} on {where}"]
    if option.hours is not None:
        parts.append(f"{option.hours:.1f} h")
    if option.cost_usd is not None:
        parts.append(f"${option.cost_usd:,.2f}")
    if option.p_on_time is not None:
        parts.append(f"P(on time) {option.p_on_time:.2f}")
    return " · ".join(parts)


def with_schedule(recipe: Recipe, req: LaunchRequest) -> Recipe:
    """The recipe with ``--deadline``/``--budget`` applied (they do not change the run id)."""
    update: dict[str, Any] = {}
    if req.deadline_s is not None:
        update["deadline"] = req.deadline_s
    if req.budget_usd is not None:
        update["budget_usd"] = req.budget_usd
    if not update:
        return recipe
    return recipe.model_copy(update={"schedule": recipe.schedule.model_copy(update=update)})
