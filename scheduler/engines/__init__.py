"""Engines: ``torch`` (embed, classify, score, generate), ``vllm`` (generate, embed) and
``python`` (a user function ``module:function``).

Each engine module is imported only when a recipe asks for it, so the worker side stays
light: ``import scheduler.engines`` loads neither torch nor vllm.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from scheduler.engines._models import PACKAGED_MODELS
from scheduler.engines._prompts import INVALID_REQUEST, PROMPT_TOO_LONG
from scheduler.engines.base import Engine, Result, Row, RowFailure, is_out_of_memory
from scheduler.errors import EngineError

if TYPE_CHECKING:
    from scheduler.recipe import Recipe

__all__ = [
    "INVALID_REQUEST",
    "PACKAGED_MODELS",
    "PROMPT_TOO_LONG",
    "Engine",
    "Result",
    "Row",
    "RowFailure",
    "check_model",
    "check_options",
    "create_engine",
    "is_out_of_memory",
    "model_revision",
]


def check_options(recipe: Recipe) -> None:
    """Reject bad engine options up front (``validate``, before a run is created).

    Cheap: no engine is loaded and torch is not imported.
    """
    if recipe.model.engine == "torch":
        from scheduler.engines._torch_options import parse_generate_options, parse_options
        from scheduler.errors import RecipeError

        options = dict(recipe.model.options)
        try:
            if recipe.task == "generate":
                parse_generate_options(options)
            else:
                parse_options(recipe.task, options)
        except RecipeError as e:
            raise RecipeError(f"{recipe.source or '<recipe>'}: {e}") from e


def check_model(recipe: Recipe) -> str | None:
    """Whether the recipe's model can load on this machine; a one-line problem, or None.

    Cheap: no engine is loaded. For the python engine the function is imported (its
    module-level code runs, as a worker's would). For torch and vllm, a local path must
    exist, and a Hub id must be in the Hugging Face cache or a package that ships it
    unless downloads are allowed (``HF_HUB_OFFLINE=0``; local workers start offline).
    """
    import os

    from scheduler.recipe import resolve_model_name

    if recipe.model.engine == "python":
        from pathlib import Path

        from scheduler.engines.python import load_function

        base = Path(recipe.source).parent if recipe.source else None
        try:
            # As written in the recipe: relative files are found as a worker finds them.
            load_function(recipe.model.name, base_dir=base)
        except EngineError as e:
            return str(e)
        return None
    from scheduler.engines._models import resolve_local

    name = resolve_model_name(recipe)
    try:
        if resolve_local(name, recipe.model.revision) is not None:
            return None
    except (OSError, ValueError, ImportError) as e:
        return f"model.name: {name!r}: cannot look for it on this machine ({e})"
    if name.startswith((".", "/", "~")) or "/" not in name or name.count("/") > 1:
        return f"model.name: {name!r} does not exist; give an existing model path or a Hub id"
    downloads = os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in {"0", "false", "no", "off"}
    if downloads:
        return None  # the worker downloads it from the Hub
    return (
        f"model.name: {name!r} is not in the Hugging Face cache and local workers start "
        f"offline; download it once (huggingface-cli download {name}) or allow downloads "
        "with HF_HUB_OFFLINE=0"
    )


def model_revision(recipe: Recipe) -> str | None:
    """The revision a run records: the pinned one, else what the local weights say.

    For a model found on this machine (a path, the Hugging Face cache, a package that
    ships weights) that is the cache's commit or a hash of the files, so a run made from
    other weights gets another id and a resume from changed weights is refused. A model
    that is not here (a cloud run downloads it on the worker) keeps the pinned revision.
    """
    pinned = recipe.model.revision
    if pinned or recipe.model.engine == "python":
        return pinned
    from scheduler.engines._models import resolve_local
    from scheduler.recipe import resolve_model_name

    try:
        # A relative model path is found as everywhere else (cwd, then beside the
        # recipe), so the run id does not depend on where skybatch was started.
        found = resolve_local(resolve_model_name(recipe), None)
    except (OSError, ValueError, ImportError):
        return None
    return found.revision if found is not None else None


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
