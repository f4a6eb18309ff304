"""Workload: how many rows a recipe has and how many tokens each one costs.

The planner needs three numbers: rows, input tokens per row and output tokens per row.
Where each one comes from, in order (the first that applies wins, and the plan names it):

rows
    1. ``rows=`` given by the caller (the launcher, which has sharded the input already);
    2. the input's own metadata (Parquet footers, line counts) for a local input;
    3. ``input.rows_estimate`` for an input that cannot be read from here (a bucket, data
       that does not exist yet), so cloud recipes plan out of the box and offline;
    4. the metadata of a remote input (needs the network and credentials).
input tokens per row
    measured on a sample of the input with the model's own tokenizer when its files are on
    this machine (``tokenizer.json`` in a local model directory, the Hugging Face cache or a
    package that ships the weights; never a download), else ``len(text) / 4`` (the usual
    rule of thumb for English BPE tokenizers, named in the plan as an approximation);
    ``input.avg_input_tokens`` stands in for a remote input, like ``rows_estimate``. For
    ``generate`` the prompt (system text and template) is counted, not just the text.
output tokens per row
    ``generate`` only: what earlier runs of the same recipe produced (committed markers in a
    local store) → ``sampling.expected_tokens`` → ``sampling.max_tokens`` (an upper bound).
"""

from __future__ import annotations

import importlib
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from scheduler.errors import InputError, SkybatchError
from scheduler.recipe import Recipe, resolve_input_path

if TYPE_CHECKING:
    from scheduler.inputs import Input

__all__ = ["Workload", "count_tokens", "measure_workload"]

CHARS_PER_TOKEN = 4.0
CHAT_OVERHEAD_TOKENS = 8  # role markers and the assistant header of a chat template
DEFAULT_SAMPLE_ROWS = 256


@dataclass(frozen=True)
class Workload:
    """The size of a run, as the planner sees it."""

    rows: int
    input_tokens_per_row: float
    output_tokens_per_row: float
    max_input_tokens: int  # ~p99 of the sample: sizes the KV cache in the memory check
    max_output_tokens: int
    rows_source: str
    input_tokens_source: str
    output_tokens_source: str

    @property
    def input_gb(self) -> float:
        """Rough size of the input text (characters ÷ 4 per token, a byte per character)."""
        return self.rows * self.input_tokens_per_row * CHARS_PER_TOKEN / 1e9

    @property
    def output_gb(self) -> float:
        """Rough size of the outputs: the generated text, or a 1024-float embedding per row
        at most (4 KB) for the other tasks."""
        per_row = self.output_tokens_per_row * CHARS_PER_TOKEN or 4096.0
        return self.rows * per_row / 1e9

    @property
    def context_tokens(self) -> int:
        """Tokens one sequence may hold at once (prompt + generated)."""
        return max(1, self.max_input_tokens + self.max_output_tokens)

    def to_json(self) -> dict[str, Any]:
        """The ``workload`` object of ``skybatch plan --json``."""
        return {
            "rows": self.rows,
            "input_tokens_per_row": round(self.input_tokens_per_row, 1),
            "output_tokens_per_row": round(self.output_tokens_per_row, 1),
            "rows_source": self.rows_source,
            "input_tokens_source": self.input_tokens_source,
            "output_tokens_source": self.output_tokens_source,
        }


def _is_local(path: str) -> bool:
    if path.startswith("file://"):
        return True
    if "://" in path:
        return False
    p = Path(path)
    return p.exists() or any(p.parent.glob(p.name))


def _tokenizer_file(name: str, revision: str | None) -> Path | None:
    """``tokenizer.json`` of a model if it is on this machine (no network, ever)."""
    local = Path(name).expanduser()
    if local.is_dir():
        candidate = local / "tokenizer.json"
        return candidate if candidate.is_file() else None
    try:  # weights that a pip package ships (resolution owned by the engines)
        from scheduler.engines import PACKAGED_MODELS

        module = PACKAGED_MODELS.get(name.lower())
        if module is not None:
            root = Path(importlib.import_module(module).get_model_path())
            if (root / "tokenizer.json").is_file():
                return root / "tokenizer.json"
    except (ImportError, AttributeError, OSError):
        pass
    if "/" not in name or name.count("/") > 1:
        return None
    try:
        from huggingface_hub import try_to_load_from_cache

        found = try_to_load_from_cache(name, "tokenizer.json", revision=revision)
    except Exception:  # a malformed repo id or an unreadable cache: no tokenizer
        return None
    return Path(found) if isinstance(found, str) else None


def count_tokens(
    texts: Sequence[str], *, model: str, revision: str | None = None
) -> tuple[list[int], str]:
    """Token counts of ``texts`` and how they were counted.

    Uses the model's tokenizer (the fast ``tokenizers`` library on its ``tokenizer.json``,
    which imports in milliseconds where transformers takes seconds) when its files are on
    this machine, else ``len(text) / 4``.
    """
    path = _tokenizer_file(model, revision) if ":" not in model else None
    if path is not None:
        try:
            from tokenizers import Tokenizer

            tok = Tokenizer.from_file(str(path))
            tok.no_truncation()  # count what the row holds, not what the model keeps
            tok.no_padding()
            encoded = tok.encode_batch(list(texts))
            return [len(e.ids) for e in encoded], f"tokenizer of {model}"
        except Exception:  # a tokenizer file this library cannot read: approximate
            pass
    counts = [max(1, math.ceil(len(t) / CHARS_PER_TOKEN)) for t in texts]
    return counts, "approximation: characters / 4 (the model's tokenizer is not on this machine)"


def _prompt_text(recipe: Recipe, text: str) -> str:
    if recipe.task != "generate":
        return text
    prompt = recipe.prompt
    if prompt is None:
        return text
    # str.replace, not format: a template may hold other braces (JSON examples).
    body = prompt.template.replace("{text}", text)
    return f"{prompt.system}\n{body}" if prompt.system else body


def _percentile(values: Sequence[int], q: float) -> int:
    ordered = sorted(values)
    idx = min(len(ordered) - 1, max(0, math.ceil(q * len(ordered)) - 1))
    return ordered[idx]


def _earlier_output_tokens(recipe: Recipe) -> tuple[float, int] | None:
    """Mean output tokens per row that earlier runs of this recipe committed (local store)."""
    if "://" in recipe.store and not recipe.store.startswith("file://"):
        return None  # a remote store costs a round trip per marker: not for a quick plan
    if not Path(recipe.store.removeprefix("file://")).is_dir():
        return None
    try:
        from scheduler.store import RunStore, iter_runs

        digest = recipe.digest()
        tokens = rows = 0
        for run_id in iter_runs(recipe.store):
            store = RunStore(recipe.store, run_id)
            if store.run_info().recipe_digest != digest:
                continue
            for marker in store.markers().values():
                if marker.tokens_out > 0:
                    tokens += marker.tokens_out
                    rows += marker.rows_out
    except (SkybatchError, OSError, ValueError):
        return None
    return (tokens / rows, rows) if rows else None


def _output_tokens(recipe: Recipe) -> tuple[float, int, str]:
    if recipe.task != "generate":
        return 0.0, 0, f"none (task {recipe.task})"
    sampling = recipe.sampling
    earlier = _earlier_output_tokens(recipe)
    if earlier is not None:
        mean, rows = earlier
        return mean, sampling.max_tokens, f"earlier runs of this recipe ({rows} rows)"
    if sampling.expected_tokens is not None:
        return float(sampling.expected_tokens), sampling.max_tokens, "sampling.expected_tokens"
    return (
        float(sampling.max_tokens),
        sampling.max_tokens,
        "sampling.max_tokens (an upper bound; set sampling.expected_tokens for a tighter plan)",
    )


def measure_workload(
    recipe: Recipe,
    *,
    rows: int | None = None,
    sample_rows: int = DEFAULT_SAMPLE_ROWS,
    source: Callable[[], Input] | None = None,
) -> Workload:
    """Measure the workload of ``recipe`` (see the module docstring for the sources).

    ``source`` opens the input (the launch flow's, opened and counted once per launch);
    by default it is opened here.
    """
    spec = recipe.input
    path = resolve_input_path(recipe)
    local = _is_local(path)
    use_row_hint = not local and spec.rows_estimate is not None
    token_hint = None if local else spec.avg_input_tokens
    sample: list[dict[str, Any]] = []
    total: int | None = rows
    rows_source = "given by the caller" if rows is not None else ""
    if rows is None and use_row_hint:
        total, rows_source = spec.rows_estimate, "input.rows_estimate in the recipe"
    if total is None or token_hint is None:
        sample, n_files, total_rows = _read_input(
            recipe, path, sample_rows=sample_rows, source=source
        )
        if total is None:
            total = total_rows
            rows_source = f"input metadata ({n_files} file{'s' if n_files != 1 else ''})"
    if total is None or total <= 0:
        raise InputError(f"{path}: the input has no rows; nothing to plan")

    out_mean, out_max, out_source = _output_tokens(recipe)
    if token_hint is not None:
        in_mean = float(token_hint)
        in_max = math.ceil(2 * in_mean)  # no sample to take a percentile of: assume 2x
        in_source = "input.avg_input_tokens in the recipe"
    elif sample:
        texts = [_prompt_text(recipe, str(r.get("text", ""))) for r in sample]
        counts, how = count_tokens(texts, model=recipe.model.name, revision=recipe.model.revision)
        overhead = CHAT_OVERHEAD_TOKENS if recipe.task == "generate" and _chat(recipe) else 0
        counts = [c + overhead for c in counts]
        in_mean = sum(counts) / len(counts)
        in_max = _percentile(counts, 0.99)
        in_source = f"{how}, sample of {len(counts)} rows"
    else:
        raise InputError(f"{path}: no rows could be sampled from the input to count tokens")
    return Workload(
        rows=int(total),
        input_tokens_per_row=in_mean,
        output_tokens_per_row=out_mean,
        max_input_tokens=int(in_max),
        max_output_tokens=int(out_max),
        rows_source=rows_source,
        input_tokens_source=in_source,
        output_tokens_source=out_source,
    )


def _chat(recipe: Recipe) -> bool:
    return recipe.prompt.chat if recipe.prompt is not None else True


def _read_input(
    recipe: Recipe, path: str, *, sample_rows: int, source: Callable[[], Input] | None = None
) -> tuple[list[dict[str, Any]], int, int]:
    """A sample of rows, the number of files and the total rows of the input."""
    from scheduler.inputs import open_input

    try:
        inp = source() if source is not None else open_input(recipe.input, path)
        return list(inp.sample(sample_rows)), len(inp.files), int(inp.total_rows)
    except InputError as e:
        if _is_local(path):
            raise
        raise InputError(
            f"{e} (to plan without reading the input, set input.rows_estimate and "
            "input.avg_input_tokens in the recipe)"
        ) from e
    except (OSError, ValueError) as e:
        raise InputError(
            f"{path}: cannot read the input to plan it ({type(e).__name__}: {e}); set "
            "input.rows_estimate and input.avg_input_tokens in the recipe to plan without it"
        ) from e
