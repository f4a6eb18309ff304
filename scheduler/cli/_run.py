"""Local commands: validate, run, status, results.

Exit codes (see the README): 0 done, 1 the run failed (too many dead rows, cancelled or
stopped), 2 bad usage, recipe or input, 3 the store refused an operation, 130 interrupted.
"""

from __future__ import annotations

import time
from typing import Any

import click

from scheduler.cli._common import (
    cli,
    emit_json,
    open_run,
    read_recipe,
    recipe_argument,
    resolve_store_url,
    run_store_option,
)
from scheduler.errors import RecipeError, SkybatchError, StoreUnavailable, UsageError
from scheduler.units import duration_text

store_option = click.option(
    "--store", "store_url", default=None, metavar="PATH|URL",
    help="Run store (default: the recipe's `store`, or SKYBATCH_STORE, or ./runs).",
)  # fmt: skip
json_option = click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")


@cli.command()
@recipe_argument
@click.option(
    "--check-input",
    is_flag=True,
    help="Also read a remote input (s3://, gs://): by default only its shape is checked.",
)
@json_option
def validate(recipe: str, check_input: bool, as_json: bool) -> None:
    """Check a recipe without running it: every problem, one line each.

    Checks what can be known before a run: the recipe's fields, that a local input
    exists, that the prompt template parses and names columns the input has, that the
    model is on this machine (a path, the Hugging Face cache, a package that ships it)
    or a python-engine function imports, and that engine options are known.

    \b
    Example:
      skybatch validate recipes/embed-minilm.yaml
    """
    from scheduler.preflight import check_recipe

    r = read_recipe(recipe)
    problems = check_recipe(r, check_input=check_input)
    if problems:
        lines = [f"{recipe}: {p}" for p in problems]
        raise RecipeError(
            lines[0] + (f" (+{len(lines) - 1} more)" if len(lines) > 1 else ""), problems=lines
        )
    if as_json:
        emit_json({"recipe": recipe, "valid": True, "name": r.name, "task": r.task})
    else:
        click.echo(f"{recipe}: ok ({r.task} with {r.model.engine}:{r.model.name})")


@cli.command()
@recipe_argument
@click.option(
    "--workers",
    "-w",
    type=click.IntRange(1, 256),
    default=1,
    show_default=True,
    help="Worker processes on this machine.",
)
@store_option
@click.option("--run-id", default=None, help="Use this run id instead of the derived one.")
@click.option("--no-progress", is_flag=True, help="Do not draw the progress bar.")
@json_option
def run(
    recipe: str,
    workers: int,
    store_url: str | None,
    run_id: str | None,
    no_progress: bool,
    as_json: bool,
) -> None:
    """Run a recipe here, with local worker processes (no cloud account needed).

    Running the same command again resumes: committed shards are skipped. Ctrl-C stops
    the workers cleanly.

    \b
    Example:
      skybatch run recipes/embed-minilm.yaml --workers 2
    """
    from scheduler.backends.local import run_local
    from scheduler.runs import prepare_run, record_history, summarize

    r = read_recipe(recipe)
    started = time.monotonic()
    store = prepare_run(r, store_url=store_url, run_id=run_id, backend="local")
    interrupted = False
    try:
        if not as_json:
            click.echo(f"run {store.run_id} → {store.location}", err=True)
        run_local(store, workers=workers, progress=not (no_progress or as_json))
    except KeyboardInterrupt:
        interrupted = True
    except (StoreUnavailable, RecipeError):
        # The store itself failed (exit 3), or the recipe cannot run on this machine (its
        # tensor_parallel_size above the GPUs shown, exit 2): no summary to read.
        raise
    except SkybatchError as e:  # the workers could not go on: the store says why
        click.echo(f"skybatch: error: {e}", err=True)
    summary = summarize(store, wall_s=time.monotonic() - started)
    record_history(store, summary, backend="local")
    if as_json:
        emit_json(summary)
    else:
        _print_summary(summary)
    if interrupted:
        raise SystemExit(130)
    if summary["state"] != "done":
        raise SystemExit(1)


def _print_summary(s: dict[str, Any]) -> None:
    mark = {"done": "✔", "failed": "✘"}.get(s["state"], "⏸")
    rows = (
        f"{s['rows_in']:,} rows in"
        if s["rows_done"] == s["rows_in"]
        else f"{s['rows_done']:,} of {s['rows_in']:,} rows done"
    )
    click.echo(
        f"{mark} {s['state']}: {rows} → {s['rows_out']:,} out, "
        f"{s['rows_dead']:,} dead · {duration_text(s['wall_s'])} · {s['rows_per_s']:.1f} rows/s"
    )
    if s["state"] == "failed" and s.get("failure_reason"):
        click.echo(f"  why: {s['failure_reason']}")
        click.echo("  fix it, then run the same command again to resume")
    elif s["state"] == "failed":
        click.echo(
            f"  dead rows are {s['error_rate']:.2%} of rows, above max_error_rate "
            f"{s['max_error_rate']:.2%}; see `skybatch status {s['run_id']}`"
        )
    elif s["state"] != "done":
        click.echo("  stopped before the end: run the same command again to resume")
    click.echo(f"  results: skybatch results {s['run_id']} --store {s['store']}")


@cli.command()
@click.argument("run_id", required=False)
@run_store_option
@json_option
def status(run_id: str | None, store_url: str | None, as_json: bool) -> None:
    """Show a run's progress, or list the runs in a store.

    \b
    Examples:
      skybatch status                       # every run in ./runs
      skybatch status embed-minilm-1a2b3c4d5e --json
    """
    from scheduler.store import RunStore, iter_runs, read_dead_reasons, read_status

    url = resolve_store_url(store_url)
    if run_id is None:
        rows, broken = [], {}
        for rid in iter_runs(url):
            try:
                rows.append(read_status(RunStore(url, rid)))
            except SkybatchError as e:  # one damaged run must not hide the others
                broken[rid] = str(e)
        if as_json:
            emit_json({"store": url, "runs": [s.to_json() for s in rows], "unreadable": broken})
            return
        if not rows and not broken:
            click.echo(f"no runs in {url}")
            return
        for rid, why in broken.items():
            click.echo(f"? {rid:<40} unreadable: {why}")
        for s in rows:
            click.echo(
                f"{s.state.glyph} {s.run_id:<40} {s.state.value:<9} "
                f"{s.fraction_done:6.1%}  {s.rows_done:,}/{s.rows_total:,} rows  "
                f"dead {s.rows_dead:,}" + (f" · {s.failure_reason}" if s.failure_reason else "")
            )
        return
    store = open_run(run_id, url)
    st = read_status(store)
    extra: dict[str, Any] = {}
    try:
        from scheduler.backends import open_backend

        with open_backend(store) as backend:
            jobs = backend.jobs()
            billed = backend.billed_usd() if jobs else None
        if jobs:
            extra["jobs"] = jobs
            # SkyPilot bills from submission: provisioning and recoveries included.
            extra["jobs_spend_usd"] = round(billed or 0.0, 4)
    except SkybatchError as e:
        extra["jobs_error"] = str(e)
    if st.rows_dead:
        extra["dead_reasons"] = read_dead_reasons(store)
        extra["dead_rows_at"] = f"{store.location}/dead"
    if as_json:
        emit_json({**st.to_json(), **extra})
        return
    click.echo(f"{st.state.glyph} {st.run_id} [{st.state.value}] {st.recipe_name} · {st.backend}")
    if st.failure_reason:
        click.echo(f"  failed  {st.failure_reason}")
    click.echo(
        f"  rows    {st.rows_done:,}/{st.rows_total:,} ({st.fraction_done:.1%}) · "
        f"out {st.rows_out:,} · dead {st.rows_dead:,}"
    )
    click.echo(
        f"  shards  done {st.shards_done} · claimed {st.shards_claimed} · "
        f"pending {st.shards_pending} · failing {st.shards_failed} of {st.shards_total}"
    )
    click.echo(
        f"  rate    {st.rows_per_s:.1f} rows/s · ETA {duration_text(st.eta_s)} · "
        f"elapsed {duration_text(st.elapsed_s)}"
    )
    click.echo(
        f"  spend   ${st.spend_usd:.2f}"
        + (f" of ${st.budget_usd:.2f}" if st.budget_usd else "")
        + f" · now ${st.usd_per_hour:.2f}/h"
    )
    for w in st.workers:
        click.echo(
            f"  worker  {w.worker_id:<12} {w.state:<8} {w.rows_per_s:7.1f} rows/s "
            f"shards {w.shards_done} · {w.accelerator or '?'}"
            + (f" · {w.cloud}/{w.region}" if w.cloud else "")
        )
    for job in extra.get("jobs", []):
        from scheduler.backends.skypilot import describe_job

        click.echo(f"  job     {describe_job(job)}")
    if extra.get("jobs"):
        click.echo(f"  billed  ${extra['jobs_spend_usd']:.2f} by SkyPilot's job times")
    if extra.get("jobs_error"):
        click.echo(f"  jobs    {extra['jobs_error']}")
    for reason, count in extra.get("dead_reasons", []):
        click.echo(f"  dead    {count:>7,} × {reason}")
    if st.rows_dead:
        click.echo(f"  dead rows: {extra['dead_rows_at']}/<shard>.<attempt>.jsonl")


@cli.command()
@click.argument("run_id")
@run_store_option
@click.option("--sql", default=None, help="A DuckDB query over the view `results`.")
@click.option(
    "--export",
    "export_path",
    default=None,
    type=click.Path(dir_okay=False),
    help="Write the committed outputs to one .parquet or .jsonl file.",
)
@click.option(
    "--format",
    "export_format",
    type=click.Choice(["auto", "openai-batch"]),
    default="auto",
    show_default=True,
    help="openai-batch: OpenAI Batch API output lines plus an errors file.",
)
@click.option("--limit", type=int, default=10, show_default=True, help="Rows to show.")
@json_option
def results(
    run_id: str,
    store_url: str | None,
    sql: str | None,
    export_path: str | None,
    export_format: str,
    limit: int,
    as_json: bool,
) -> None:
    """Query or export a run's committed outputs with DuckDB.

    Only shards with a commit marker are visible: the view `results` never shows an
    attempt that lost a race or was interrupted.

    \b
    Examples:
      skybatch results embed-minilm-1a2b3c4d5e --sql "select count(*) from results"
      skybatch results embed-minilm-1a2b3c4d5e --export embeddings.parquet
    """
    from scheduler.results import export_results, query_results

    store = open_run(run_id, store_url)
    if export_path:
        summary = export_results(store, export_path, fmt=export_format)
        if as_json:
            emit_json(summary)
        else:
            click.echo(
                f"wrote {summary['rows']:,} rows to {export_path}"
                + (
                    f" and {summary['errors']:,} errors to {summary['errors_path']}"
                    if summary.get("errors_path")
                    else ""
                )
            )
        return
    if export_format != "auto":
        raise UsageError("--format goes with --export PATH")
    query = sql or f"select * from results limit {int(limit)}"
    columns, rows = query_results(store, query)
    if as_json:
        emit_json(
            {
                "run_id": run_id,
                "columns": columns,
                "rows": [dict(zip(columns, r, strict=True)) for r in rows],
            }
        )
        return
    from rich.console import Console
    from rich.table import Table

    table = Table(*columns, title=f"{run_id}: {query}")
    for r in rows:
        table.add_row(*[_cell(v) for v in r])
    Console().print(table)


def _cell(value: Any) -> str:
    if isinstance(value, list | tuple) and len(value) > 4:
        head = ", ".join(f"{v:.4f}" if isinstance(v, float) else str(v) for v in value[:3])
        return f"[{head}, … ({len(value)})]"
    return str(value)
