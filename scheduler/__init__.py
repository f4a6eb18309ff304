"""skybatch's scheduler: recipes, inputs and shards, the run store, workers, engines,
backends, the planner and the CLI.

The worker side (:mod:`scheduler.worker`, :mod:`scheduler.engines`, :mod:`scheduler.store`,
:mod:`scheduler.inputs`) imports neither ``tui`` nor ``pricing`` nor SkyPilot: it is what
runs on the GPU machine and must import fast.

Importing this package is cheap: the recipe model (pydantic, yaml) loads on first use of
``Recipe`` or ``load_recipe`` (PEP 562), so ``skybatch --help`` and the worker side never
pay for it unless they read a recipe.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

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

if TYPE_CHECKING:
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

_LAZY = {"Recipe": "scheduler.recipe", "load_recipe": "scheduler.recipe"}


def __getattr__(name: str) -> object:
    # PEP 562: resolve the recipe names on first use, then cache them on the module.
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'scheduler' has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value
