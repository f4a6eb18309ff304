"""Cloud-style commands: launch, watch, cancel (SkyPilot, or local workers for parity).

Exit codes of ``launch --wait`` and ``watch`` (for CI; see recipes/ci/README.md)::

    0 done · 1 failed or stopped · 2 bad usage/recipe · 3 store refused · 4 no plan fits
    5 SkyPilot could not launch (e.g. no cloud enabled) · 6 over budget · 7 deadline missed
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import click

from scheduler.cli._common import cli, emit_json, open_run, recipe_argument, run_store_option

if TYPE_CHECKING:
    from scheduler.launch import Outcome
    from scheduler.store import RunStore

_json_option = click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
_store_option = click.option(
    "--store", "store_url", default=None, metavar="PATH|URL",
    help="Run store (default: the recipe's `store`, or SKYBATCH_STORE, or ./runs).",
)  # fmt: skip


def _duration(ctx: click.Context, param: click.Parameter, value: str | None) -> float | None:
    if value is None:
        return None
    from scheduler.recipe import parse_duration  # pydantic + yaml: not at `--help` time

    try:
        return parse_duration(value)
    except ValueError as e:
        raise click.BadParameter(str(e)) from e


def _finish(
    outcome: Outcome, summary_md: str | None, as_json: bool, result_json: dict[str, object]
) -> None:
    from scheduler.launch import write_summary

    written = write_summary(outcome, summary_md)
    if as_json:
        emit_json(result_json)
    else:
        s = outcome.summary
        click.echo(
            f"{outcome.verdict}: {int(s.get('rows_in') or 0):,} rows in → "
            f"{int(s.get('rows_out') or 0):,} out, {int(s.get('rows_dead') or 0):,} dead · "
            f"${outcome.spend_usd:,.2f} · exit {outcome.exit_code}"
        )
        for path in written:
            click.echo(f"  summary: {path}", err=True)
    if outcome.exit_code:
        raise SystemExit(outcome.exit_code)


@cli.command()
@recipe_argument
@click.option("--deadline", callback=_duration, default=None, metavar="DURATION",
              help="Finish within this (8h, 90m).")  # fmt: skip
@click.option("--budget", type=float, default=None, metavar="USD", help="Spend at most this.")
@click.option("--plan", "plan_index", type=int, default=None, metavar="N",
              help="Launch option N of `skybatch plan` instead of the chosen one.")  # fmt: skip
@click.option("--gpu", default=None, help="Pick the GPU yourself (with --workers).")
@click.option("--workers", "-w", type=click.IntRange(1, 1024), default=None, help="Workers.")
@click.option("--backend", type=click.Choice(["skypilot", "local"]), default="skypilot",
              show_default=True, help="Managed jobs on SkyPilot, or processes here.")  # fmt: skip
@_store_option
@click.option("--run-id", default=None, metavar="TEMPLATE",
              help="Run id; may hold {date}, {time}, {name} or strftime codes (nightly-{date}).")  # fmt: skip
@click.option(
    "--dry-run",
    is_flag=True,
    help="Print the plan, each distinct SkyPilot task YAML and the workers; launch nothing.",
)
@click.option("--all", "all_documents", is_flag=True,
              help="With --dry-run: print every worker's task, not each distinct one once.")  # fmt: skip
@click.option(
    "--rehearse", is_flag=True,
    help="Run each worker's exact task here on a sandboxed VM (no cloud, no GPU paid) and watch it.",
)  # fmt: skip
@click.option("--wait", is_flag=True, help="Watch until the run ends (deadline guard on).")
@click.option("--yes", "-y", is_flag=True, help="Do not ask for confirmation.")
@click.option("--summary-md", default=None, metavar="PATH", help="Write a markdown summary here.")
@click.option("--incremental", is_flag=True, help="Process only rows no earlier run committed.")
@click.option("--secret", "secrets", multiple=True, metavar="NAME",
              help="Pass this environment variable to workers as a SkyPilot secret.")  # fmt: skip
@click.option("--guard-interval", callback=_duration, default="3m", show_default=True, metavar="DURATION",
              help="How often the deadline guard re-plans.")  # fmt: skip
@click.option("--no-guard", is_flag=True, help="Never add workers.")
@click.option("--usd-per-hour", type=float, default=0.0, hidden=True,
              help="Local backend: a notional price per worker-hour.")  # fmt: skip
@_json_option
def launch(
    recipe: str,
    deadline: float | None,
    budget: float | None,
    plan_index: int | None,
    gpu: str | None,
    workers: int | None,
    backend: str,
    store_url: str | None,
    run_id: str | None,
    dry_run: bool,
    all_documents: bool,
    rehearse: bool,
    wait: bool,
    yes: bool,
    summary_md: str | None,
    incremental: bool,
    secrets: tuple[str, ...],
    guard_interval: float,
    no_guard: bool,
    usd_per_hour: float,
    as_json: bool,
) -> None:
    """Plan, confirm and launch a recipe: one SkyPilot managed job per worker.

    Runs again with the same input resume the same run. Without an enabled cloud it says
    so and exits 5; `--backend local` runs the same flow on this machine.

    \b
    Examples:
      skybatch launch recipes/summarize-vllm.yaml --deadline 8h --dry-run
      skybatch launch recipes/summarize-vllm.yaml --deadline 8h --budget 300 --yes --wait
      skybatch launch recipes/embed-minilm.yaml --backend local -w 2 --yes --run-id 'nightly-{date}'
      skybatch launch recipes/summarize-vllm.yaml -w 2 --rehearse --store s3://my-bucket/runs
    """
    from scheduler.launch import LaunchRequest
    from scheduler.launch import launch as do_launch

    factory = None
    if rehearse:
        if backend != "skypilot" or dry_run:
            raise click.UsageError(
                "--rehearse plays a SkyPilot launch: drop --backend local/--dry-run"
            )
        factory = _rehearsal_factory(recipe)
        wait = yes = True  # it spends nothing, and a rehearsal is watched to its end

    req = LaunchRequest(
        recipe_path=recipe,
        backend=backend,
        deadline_s=deadline,
        budget_usd=budget,
        plan_index=plan_index,
        gpu=gpu,
        workers=workers,
        dry_run=dry_run,
        all_documents=all_documents,
        wait=wait,
        yes=yes,
        run_id=run_id,
        store_url=store_url,
        summary_md=summary_md,
        incremental=incremental,
        secrets=secrets,
        guard=not no_guard,
        guard_interval_s=guard_interval or 180.0,
        usd_per_hour=usd_per_hour,
        progress=not as_json,
    )
    result = do_launch(
        req,
        echo=lambda line: click.echo(line, err=True),
        confirm=lambda q: click.confirm(q, default=False, err=True),
        session_factory=factory,
    )
    if result.dry_run_yaml is not None:
        if as_json:
            emit_json(result.to_json() | {"yaml": result.dry_run_yaml})
        else:
            click.echo(result.dry_run_yaml, nl=False)
        return
    if result.outcome is not None:
        _finish(result.outcome, summary_md, as_json, result.to_json())
    elif as_json:
        emit_json(result.to_json())
    else:
        click.echo(
            f"launched {result.run_id}: skybatch status {result.run_id} --store {result.store}"
        )


def _rehearsal_factory(recipe_path: str) -> Callable[[], Any]:
    """A :class:`~scheduler.backends.rehearsal.RehearsalSession` maker over the recipe's clouds."""
    from scheduler.backends.rehearsal import RehearsalSession
    from scheduler.recipe import load_recipe
    from scheduler.settings import skybatch_home

    clouds = load_recipe(recipe_path).schedule.clouds
    root = skybatch_home() / "rehearsals"

    def make() -> RehearsalSession:
        return RehearsalSession(root=root, clouds=clouds, echo=lambda m: click.echo(m, err=True))

    return make


def _open(run_id: str, store_url: str | None) -> RunStore:
    return open_run(run_id, store_url)


@cli.command()
@click.argument("run_id")
@run_store_option
@click.option("--summary-md", default=None, metavar="PATH", help="Write a markdown summary here.")
@click.option("--guard-interval", callback=_duration, default="3m", show_default=True, metavar="DURATION",
              help="How often the deadline guard re-plans.")  # fmt: skip
@click.option("--no-guard", is_flag=True, help="Never add workers.")
@click.option(
    "--poll", "poll_s", type=float, default=5.0, show_default=True, help="Seconds between looks."
)
@_json_option
def watch(
    run_id: str,
    store_url: str | None,
    summary_md: str | None,
    guard_interval: float,
    no_guard: bool,
    poll_s: float,
    as_json: bool,
) -> None:
    """Follow a launched run to its end, with the deadline guard; exit code as launch --wait.

    \b
    Example:
      skybatch watch summarize-vllm-1a2b3c4d5e --store s3://my-bucket/skybatch-runs
    """
    from scheduler import launch as fl
    from scheduler.backends import open_backend
    from scheduler.store import LaunchOption

    store = _open(run_id, store_url)
    option = store.run_info().option or LaunchOption("unknown", workers=0)
    started = time.time()
    # Workers the guard adds to a local run belong to this command and stop with it.
    with open_backend(store) as backend:
        guard = fl.make_guard(
            store, backend, option, enabled=not no_guard, interval_s=guard_interval or 180.0
        )
        fl.watch(store, guard=guard, poll_s=poll_s, backend=backend)
        outcome = fl.finish(store, backend, started=started, option=option)
    _finish(outcome, summary_md, as_json, outcome.to_json())


@cli.command()
@click.argument("run_id")
@run_store_option
@_json_option
def cancel(run_id: str, store_url: str | None, as_json: bool) -> None:
    """Stop a run's workers; committed shards stay, and a later launch resumes the run.

    \b
    Example:
      skybatch cancel summarize-vllm-1a2b3c4d5e --store s3://my-bucket/skybatch-runs
    """

    from scheduler.backends import open_backend

    store = _open(run_id, store_url)
    store.write_meta("cancel", {"at": time.time(), "by": "skybatch cancel"})
    store.log_event("cancelled", "cancel requested")
    with open_backend(store) as backend:
        stopped = backend.cancel()
        what = "managed job(s)" if backend.remote else "worker(s)"
    if as_json:
        emit_json({"run_id": run_id, "cancelled": True, "stopped": stopped})
    else:
        click.echo(f"cancelled {run_id}: {len(stopped)} {what} stopped; launch again to resume")
