"""The ``python`` engine: a user function turns a batch of row dicts into result dicts.

``model.name`` names the function in one of two forms:

* ``package.module:function`` (``function`` may be dotted, ``Class.method``): imported
  with the current directory on ``sys.path``, so a module beside the recipe's working
  directory works without installing it;
* ``path/to/file.py:function``: the file is loaded directly (its folder goes on
  ``sys.path`` so it can import its neighbours); a relative path is looked up from the
  current directory first and the recipe's directory second.

The function is called as ``function(rows, **model.options)``: ``rows`` is a list of row
dicts (``id``, ``text`` and the other input columns; copies, so the function may change
them) and it returns a list with one dict per row, in order. Options are passed as
keyword arguments; a function that cannot accept them (no such parameter and no
``**kwargs``) is refused when the engine loads, not halfway through a run. A result dict
holding the key ``"__error__"`` marks that row as failed, with the value as the reason
(it is dead-lettered, not retried). Anything else returned (a different length, a
non-list, a non-dict item) is an :class:`~scheduler.errors.EngineError` naming the
function and what it returned.

The module is imported once per worker, so module-level code is the place to load a model.
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.util
import inspect
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from scheduler.engines.base import Result, Row, RowFailure
from scheduler.errors import EngineError

if TYPE_CHECKING:
    from types import ModuleType

    from scheduler.recipe import Recipe

__all__ = ["ERROR_KEY", "PythonEngine", "load_function"]

ERROR_KEY = "__error__"

UserFunction = Callable[..., Any]


def _ensure_on_path(folder: str) -> None:
    if folder not in sys.path:
        sys.path.insert(0, folder)


def _import_file(spec: str, path_text: str, base_dir: Path | None) -> ModuleType:
    candidates = [Path(path_text).expanduser()]
    if base_dir is not None and not candidates[0].is_absolute():
        candidates.append(base_dir / path_text)
    path = next((p.resolve() for p in candidates if p.is_file()), None)
    if path is None:
        raise EngineError(f"model.name: {spec!r}: file {path_text} not found")
    _ensure_on_path(str(path.parent))
    # A name unique to the file, so two recipes' ``funcs.py`` never share a module.
    key = hashlib.sha256(str(path).encode()).hexdigest()[:8]
    module_name = f"skybatch_user_{path.stem}_{key}"
    if module_name in sys.modules:
        return sys.modules[module_name]
    loader_spec = importlib.util.spec_from_file_location(module_name, path)
    if loader_spec is None or loader_spec.loader is None:
        raise EngineError(f"model.name: {spec!r}: {path} is not a loadable Python file")
    module = importlib.util.module_from_spec(loader_spec)
    sys.modules[module_name] = module
    try:
        loader_spec.loader.exec_module(module)
    except BaseException:
        del sys.modules[module_name]
        raise
    return module


def _import(spec: str, module_text: str, base_dir: Path | None) -> ModuleType:
    try:
        if module_text.endswith(".py") or "/" in module_text or os.sep in module_text:
            return _import_file(spec, module_text, base_dir)
        _ensure_on_path(os.getcwd())
        return importlib.import_module(module_text)
    except EngineError:
        raise
    except ModuleNotFoundError as e:
        raise EngineError(
            f"model.name: {spec!r}: cannot import module {module_text!r} ({e}); run from the "
            "folder that holds it, install it, or give a file path (path/to/file.py:function)"
        ) from e
    except Exception as e:  # the user's module-level code may raise anything
        raise EngineError(
            f"model.name: {spec!r}: importing {module_text!r} failed ({type(e).__name__}: {e})"
        ) from e


def load_function(spec: str, *, base_dir: Path | None = None) -> tuple[UserFunction, ModuleType]:
    """Import ``module:function`` or ``file.py:function`` and return the function and module."""
    module_text, sep, attr_path = spec.rpartition(":")
    if not sep or not module_text or not attr_path:
        raise EngineError(
            f"model.name: {spec!r}: the python engine needs module:function "
            "(e.g. mypackage.infer:predict or ./infer.py:predict)"
        )
    module = _import(spec, module_text, base_dir)
    target: Any = module
    for part in attr_path.split("."):
        if not hasattr(target, part):
            raise EngineError(f"model.name: {spec!r}: {module_text} has no attribute {attr_path!r}")
        target = getattr(target, part)
    if not callable(target):
        raise EngineError(
            f"model.name: {spec!r}: {attr_path} is a {type(target).__name__}, not a function"
        )
    return target, module


def _check_options(spec: str, func: UserFunction, options: dict[str, Any]) -> None:
    if not options:
        return
    try:
        params = inspect.signature(func).parameters
    except (TypeError, ValueError):
        return  # builtins without a signature: let the call itself decide
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values()):
        return
    accepted = {
        name
        for i, (name, p) in enumerate(params.items())
        if p.kind is inspect.Parameter.KEYWORD_ONLY
        or (p.kind is inspect.Parameter.POSITIONAL_OR_KEYWORD and i > 0)
    }
    refused = sorted(set(options) - accepted)
    if refused:
        raise EngineError(
            f"model.options.{refused[0]}: {spec} takes no keyword argument {refused[0]!r}; "
            "add it (or **kwargs) to the function, or remove the option"
        )


def _describe_value(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


class PythonEngine:
    """Calls a user function ``module:function`` on each batch of rows."""

    whole_shard = False

    def __init__(self, recipe: Recipe) -> None:
        self.spec = recipe.model.name
        base_dir = Path(recipe.source).parent if recipe.source else None
        self._func, self._module = load_function(self.spec, base_dir=base_dir)
        self.options = dict(recipe.model.options)
        _check_options(self.spec, self._func, self.options)
        self.revision = recipe.model.revision or self._source_revision()

    def _source_revision(self) -> str:
        """A hash of the module's source file: the code that produced the results."""
        source = getattr(self._module, "__file__", None)
        if not source or not Path(source).is_file():
            return "local"
        return "local-" + hashlib.sha256(Path(source).read_bytes()).hexdigest()[:12]

    def infer(self, rows: list[Row]) -> list[Result]:
        """Call the function on copies of ``rows`` and check what it gives back."""
        out = self._func([dict(r) for r in rows], **self.options)
        if not isinstance(out, list | tuple):
            raise EngineError(
                f"{self.spec} returned {type(out).__name__} ({_describe_value(out)}); "
                f"it must return a list of {len(rows)} dicts, one per row"
            )
        if len(out) != len(rows):
            raise EngineError(
                f"{self.spec} returned {len(out)} results for {len(rows)} rows; "
                "it must return exactly one dict per row, in order"
            )
        results: list[Result] = []
        for i, item in enumerate(out):
            if not isinstance(item, dict):
                raise EngineError(
                    f"{self.spec} returned a {type(item).__name__} at position {i} "
                    f"({_describe_value(item)}); every result must be a dict"
                )
            if ERROR_KEY in item:
                results.append(RowFailure(str(item[ERROR_KEY])))
            else:
                results.append(item)
        return results

    def describe(self) -> dict[str, Any]:
        """What ran: the function, the revision of its source and where it can compute."""
        accelerator = "cpu"
        torch = sys.modules.get("torch")  # only if the user's module brought torch in
        if torch is not None and torch.cuda.is_available():
            accelerator = str(torch.cuda.get_device_name(0))
        return {
            "engine": "python",
            "model": self.spec,
            "revision": self.revision,
            "device": "cuda" if accelerator != "cpu" else "cpu",
            "accelerator": accelerator,
        }

    def close(self) -> None:
        """Call the module's ``close()`` if it defines one (to free a model it loaded)."""
        closer = getattr(self._module, "close", None)
        if callable(closer):
            closer()
