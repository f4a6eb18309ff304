"""Task ``generate`` on the ``torch`` engine: transformers causal LMs for small models and
machines without vLLM (CPUs included).

The model loads once (``AutoModelForCausalLM`` + ``AutoTokenizer``, ``model.revision``
pinned). Each batch is prompted through :mod:`scheduler.engines._prompts` (the tokenizer's
chat template when it has one and ``prompt.chat`` is on, else system + template text),
left-padded and sent to one batched ``generate`` per set of sampling parameters. Sampling
follows the vLLM engine's fields: temperature 0 is greedy; ``seed`` seeds torch's RNG
(inside a forked RNG state, so the process's own stream is untouched) before each call, so
the same rows in the same batches give the same completions.

``model.options`` (checked by ``skybatch validate`` too, see
:func:`~scheduler.engines._torch_options.parse_generate_options`): ``device`` (``auto``:
CUDA, else MPS, else CPU; ``cpu``, ``cuda``, ``cuda:1``, ``mps``), ``dtype`` (``auto``:
bfloat16 on a CUDA GPU that has it, else float16 there, float32 elsewhere; ``float32``,
``float16``, ``bfloat16``) and ``max_model_len`` (the context limit prompts are checked
against; default the model's ``max_position_embeddings``).
"""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING, Any

from scheduler.engines._prompts import (
    Sampling,
    build_request,
    check_length,
    encode_prompt,
    stop_text,
)
from scheduler.engines._torch_options import parse_generate_options
from scheduler.engines.base import Result, Row, RowFailure
from scheduler.errors import EngineError, RecipeError

if TYPE_CHECKING:
    from scheduler.recipe import Recipe

__all__ = ["TorchGenerateEngine"]


class TorchGenerateEngine:
    """Batched transformers generation (see the module docstring)."""

    whole_shard = False

    def __init__(self, recipe: Recipe) -> None:
        try:
            opts = parse_generate_options(dict(recipe.model.options))
        except RecipeError as e:
            raise EngineError(str(e)) from e
        try:
            import torch
            import transformers
        except ImportError as e:
            raise EngineError(
                "model.engine: torch generation needs torch and transformers; "
                "run: pip install 'skybatch[torch]'"
            ) from e
        from scheduler.engines.torch import _pick_device, _pick_dtype

        # transformers' own stubs are stricter than its runtime; one Any handle keeps
        # mypy about our code, not theirs.
        tf: Any = transformers
        tf.utils.logging.disable_progress_bar()  # worker logs are read by people; no bars
        self._tf = tf
        self._torch = torch
        self._recipe = recipe
        self.device = _pick_device(opts.device)  # auto: CUDA, else MPS, else CPU
        dtype: Any = _pick_dtype(opts.dtype, self.device)
        if (
            opts.dtype == "auto"
            and self.device.startswith("cuda")
            and torch.cuda.is_bf16_supported()
        ):
            dtype = torch.bfloat16  # LLM weights are trained in bf16, where fp16 can overflow
        name, revision = recipe.model.name, recipe.model.revision
        try:
            self._tokenizer: Any = tf.AutoTokenizer.from_pretrained(name, revision=revision)
            self._model: Any = tf.AutoModelForCausalLM.from_pretrained(
                name, revision=revision, dtype=dtype
            )
        except (OSError, ValueError) as e:
            raise EngineError(
                f"model.name: cannot load {name!r}"
                f"{f' at revision {revision}' if revision else ''} for generation ({e}); "
                "check the name or path (downloads are off when HF_HUB_OFFLINE=1)"
            ) from e
        self._model.to(self.device)
        self._model.eval()
        tok = self._tokenizer
        tok.padding_side = "left"  # decoder-only models continue from the right edge
        if tok.pad_token_id is None:
            tok.pad_token = tok.eos_token
        self._eos_ids = _eos_ids(self._model, tok)
        self.max_model_len = _context_limit(opts.max_model_len, self._model.config)

    def infer(self, rows: list[Row]) -> list[Result]:
        """One result per row, in order; rows that cannot be prompted are row failures."""
        results: list[Result | None] = [None] * len(rows)
        # Rows that differ only in max_tokens share one generate call (run to the largest
        # limit, each row cut at its own): generation is causal, so a row's first n tokens
        # do not depend on how many more follow, and OpenAI batches vary max_tokens a lot.
        groups: dict[Sampling, list[tuple[int, list[int], int]]] = {}
        for i, row in enumerate(rows):
            request = build_request(row, self._recipe)
            if isinstance(request, RowFailure):
                results[i] = request
                continue
            ids = encode_prompt(request, self._tokenizer)[1]
            if not ids:
                results[i] = RowFailure("prompt is empty after tokenisation")
                continue
            too_long = check_length(
                len(ids), request.sampling.max_tokens, self.max_model_len, what=self._limit_name
            )
            if too_long is not None:
                results[i] = too_long
                continue
            key = replace(request.sampling, max_tokens=0)
            groups.setdefault(key, []).append((i, ids, request.sampling.max_tokens))
        for sampling, members in groups.items():
            outputs = self._generate([(ids, limit) for _, ids, limit in members], sampling)
            for (i, _, _), result in zip(members, outputs, strict=True):
                results[i] = result
        return [r if r is not None else RowFailure("no result") for r in results]

    @property
    def _limit_name(self) -> str:
        if "max_model_len" in self._recipe.model.options:
            return "model.options.max_model_len"
        return "the model's max_position_embeddings"

    def _generate(self, prompts: list[tuple[list[int], int]], s: Sampling) -> list[Result]:
        """One batched ``generate`` call over (prompt ids, max_tokens); a result per prompt."""
        torch, tok = self._torch, self._tokenizer
        ids = [p for p, _ in prompts]
        batch: dict[str, Any] = tok.pad({"input_ids": ids}, padding=True, return_tensors="pt")
        batch = {k: v.to(self.device) for k, v in batch.items()}
        sample = s.temperature > 0.0
        config = self._tf.GenerationConfig(
            max_new_tokens=max(limit for _, limit in prompts),
            do_sample=sample,
            # Passing temperature/top_p to greedy decoding only earns a warning.
            **({"temperature": s.temperature, "top_p": s.top_p} if sample else {}),
            pad_token_id=tok.pad_token_id,
            eos_token_id=sorted(self._eos_ids) or None,
            stop_strings=list(s.stop) if s.stop else None,
        )
        with torch.inference_mode(), torch.random.fork_rng(devices=self._rng_devices()):
            if s.seed is not None:
                torch.manual_seed(s.seed)
            out = self._model.generate(**batch, generation_config=config, tokenizer=tok)
        width = batch["input_ids"].shape[1]
        results: list[Result] = []
        for (prompt, limit), seq in zip(prompts, out[:, width:].tolist(), strict=True):
            results.append(self._decode(len(prompt), seq[:limit], s))
        return results

    def _decode(self, prompt_tokens: int, seq: list[int], s: Sampling) -> Result:
        # A finished row is padded to the batch's length; its end is the first EOS/pad.
        ends = {*self._eos_ids, self._tokenizer.pad_token_id}
        end = next((j for j, t in enumerate(seq) if t in ends), None)
        tokens = seq if end is None else seq[:end]
        text = str(self._tokenizer.decode(tokens, skip_special_tokens=True))
        text, stopped = stop_text(text, s.stop)
        if stopped:
            reason, count = "stop", len(tokens)
        elif end is None:
            reason, count = "length", len(tokens)
        elif seq[end] in self._eos_ids:
            reason, count = "stop", len(tokens) + 1  # the EOS token was generated too
        else:
            # Padding with no EOS: transformers stopped the row on a stop string that spans
            # the prompt's end, which the completion's text alone cannot show.
            reason, count = "stop", len(tokens)
        return {
            "completion": text,
            "prompt_tokens": prompt_tokens,
            "completion_tokens": count,
            "finish_reason": reason,
        }

    def _rng_devices(self) -> list[Any]:
        return [self._torch.device(self.device)] if self.device.startswith("cuda") else []

    def describe(self) -> dict[str, Any]:
        """What ran: engine, model, revision, device, accelerator."""
        torch = self._torch
        accelerator = None
        if self.device.startswith("cuda") and torch.cuda.is_available():
            accelerator = str(torch.cuda.get_device_name(torch.device(self.device)))
        return {
            "engine": "torch",
            "model": self._recipe.model.name,
            "revision": self._recipe.model.revision,
            "device": self.device,
            "accelerator": accelerator,
            "dtype": str(next(self._model.parameters()).dtype).removeprefix("torch."),
            "max_model_len": self.max_model_len,
        }

    def close(self) -> None:
        """Drop the model and give cached GPU memory back."""
        self._model = None
        if self.device.startswith("cuda"):
            self._torch.cuda.empty_cache()


def _eos_ids(model: Any, tokenizer: Any) -> set[int]:
    raw = getattr(model.generation_config, "eos_token_id", None)
    if raw is None:
        raw = tokenizer.eos_token_id
    if raw is None:
        return set()
    return {int(x) for x in (raw if isinstance(raw, list) else [raw])}


def _context_limit(asked: int | None, config: Any) -> int | None:
    if asked is not None:
        return asked
    for attr in ("max_position_embeddings", "n_positions", "max_sequence_length"):
        value = getattr(config, attr, None)
        if isinstance(value, int) and value > 0:
            return value
    return None
