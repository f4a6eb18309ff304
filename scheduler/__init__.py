"""skybatch's scheduler: recipes, inputs and shards, the run store, workers, engines,
backends, the planner and the CLI.

The worker side (:mod:`scheduler.worker`, :mod:`scheduler.engines`, :mod:`scheduler.store`,
:mod:`scheduler.inputs`) imports neither ``tui`` nor ``pricing`` nor SkyPilot: it is what
runs on the GPU machine and must import fast.
"""

from __future__ import annotations

from scheduler.errors import (
    BudgetError,
    DeadlineMissed,
    EngineError,
    InputError,
    LaunchError,
    PlanError,
    RecipeError,
    ResumeRefused,
    SkybatchError,
    StoreError,
    UsageError,
)
from scheduler.recipe import Recipe, load_recipe

__all__ = [
    "BudgetError",
    "DeadlineMissed",
    "EngineError",
    "InputError",
    "LaunchError",
    "PlanError",
    "Recipe",
    "RecipeError",
    "ResumeRefused",
    "SkybatchError",
    "StoreError",
    "UsageError",
    "load_recipe",
]
