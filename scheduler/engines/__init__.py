"""Engines: ``torch`` (embed, classify, score, generate), ``vllm`` (generate, embed) and
``python`` (a user function ``module:function``).

Each engine module is imported only when a recipe asks for it, so the worker side stays
light: ``import scheduler.engines`` loads neither torch nor vllm.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from scheduler.engines.base import Engine, Result, Row, RowFailure, is_out_of_memory
from scheduler.errors import EngineError

if TYPE_CHECKING:
    from scheduler.recipe import Recipe

__all__ = ["Engine", "Result", "Row", "RowFailure", "create_engine", "is_out_of_memory"]


def create_engine(recipe: Recipe) -> Engine:
    """Build (and load) the engine a recipe asks for."""
    engine, task = recipe.model.engine, recipe.task
    if engine == "python":
        from scheduler.engines.python import PythonEngine

        return PythonEngine(recipe)
    if engine == "torch" and task == "generate":
        from scheduler.engines.torch_generate import TorchGenerateEngine

        return TorchGenerateEngine(recipe)
    if engine == "torch":
        from scheduler.engines.torch import TorchEngine

        return TorchEngine(recipe)
    if engine == "vllm":
        from scheduler.engines.vllm import VllmEngine

        return VllmEngine(recipe)
    raise EngineError(f"model.engine: unknown engine {engine!r} (use torch, vllm or python)")
