"""``skybatch plan``: ranked GPU/cloud/spot/worker options for a recipe, and the choice.

Imports stay light until the command runs: the planner pulls in :mod:`pricing` (and DuckDB)
only when it prices a plan, and rich/plotext load inside the command.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import click

from scheduler.cli._common import cli, emit_json, read_recipe, recipe_argument
from scheduler.errors import PlanError, UsageError

if TYPE_CHECKING:
    from scheduler.plan import Plan

_SOURCE_STYLE = {"measured": "green", "scaled": "cyan", "published": "cyan", "estimated": "yellow"}


def _deadline(value: str | None) -> float | None:
    if value is None:
        return None
    from scheduler.recipe import parse_duration  # pydantic + yaml: not at `--help` time

    try:
        return parse_duration(value)
    except ValueError as e:
        raise UsageError(f"--deadline: {e}") from None


def _money_fine(usd: float | None) -> str:
    """Cents matter per million tokens: ``$0.042``, ``$1.23``."""
    if usd is None:
        return "-"
    return f"${usd:,.3f}" if usd < 1 else f"${usd:,.2f}"


def render_table(plan: Plan, *, top: int) -> object:
    """The options as a rich Table (chosen ★, Pareto frontier ◆)."""
    from rich.table import Table

    from scheduler.plan import money as _money

    target = plan.request.p_target
    table = Table(box=None, pad_edge=False, header_style="bold", padding=(0, 1))
    for name, justify in (
        ("", "left"),
        ("GPU", "left"),
        ("clouds/regions", "left"),
        ("spot", "left"),
        ("workers", "right"),
        ("hours", "right"),
        ("$", "right"),
        ("P(on time)", "right"),
        ("throughput", "left"),
    ):
        table.add_column(name, justify=justify, no_wrap=True, overflow="ellipsis")  # type: ignore[arg-type]
    for i, o in enumerate(plan.options[:top]):
        mark = ("★" if i == plan.chosen else " ") + ("◆" if o.pareto else " ")
        gpu = o.accelerator + (
            f"×{o.accelerators_per_worker}" if o.accelerators_per_worker > 1 else ""
        )
        if o.replicas_per_worker > 1:  # engines per worker, each on its own GPUs
            gpu += f" ({o.replicas_per_worker}×tp{o.tensor_parallel_size})"
        p_style = "green" if o.p_on_time >= target else "red"
        cost_style = "" if o.within_budget else "red"
        source = o.throughput_source
        table.add_row(
            mark,
            gpu,
            o.where(),
            "spot" if o.spot else "on-demand",
            str(o.workers),
            f"{o.hours:.1f}",
            f"[{cost_style}]{_money(o.cost_usd)}[/]" if cost_style else _money(o.cost_usd),
            f"[{p_style}]{o.p_on_time:.3f}[/]",
            f"[{_SOURCE_STYLE.get(source, '')}]{source}[/]",
            style="bold" if i == plan.chosen else None,
        )
    return table


def render_plot(plan: Plan, *, width: int = 80, height: int = 20) -> str:
    """A terminal chart of cost against finish time, the Pareto frontier joined up."""
    import plotext as plt

    fig = plt.figure
    fig.clear()
    fig.plot_size(width, height)
    fig.theme("colorless")
    series = (
        (sorted((o for o in plan.options if o.pareto), key=lambda o: o.hours), "◆", True),
        ([o for o in plan.options if not o.pareto], "•", False),
        ([plan.choice] if plan.choice is not None else [], "★", False),
    )
    for options, marker, joined in series:
        if options:
            signal = fig.signal(
                [o.hours for o in options], [o.cost_usd for o in options], marker=marker
            )
            signal.lines(joined)
            fig.draw(signal)
    fig.title(
        f"expected cost (USD) against finish time (hours); deadline {plan.request.deadline_s / 3600:g} h"
    )
    chart = str(plt.uncolorize(str(fig.build()))).rstrip()
    return chart + "\n◆ Pareto frontier   • other options   ★ chosen"


@cli.command()
@recipe_argument
@click.option(
    "--deadline",
    metavar="DURATION",
    help="Finish within this long, e.g. 8h, 90m (overrides the recipe).",
)
@click.option(
    "--budget",
    type=click.FloatRange(min=0, min_open=True),
    metavar="USD",
    help="Spend at most this much (overrides the recipe).",
)
@click.option(
    "--top",
    type=click.IntRange(min=1),
    default=10,
    show_default=True,
    help="Show this many options.",
)
@click.option(
    "--json",
    "as_json",
    is_flag=True,
    help="Print one JSON object (workload, options, chosen, reason).",
)
@click.option(
    "--plot", is_flag=True, help="Also draw cost against finish time, with the Pareto frontier."
)
def plan(
    recipe: str,
    deadline: str | None,
    budget: float | None,
    top: int,
    as_json: bool,
    plot: bool,
) -> None:
    """Rank GPU, cloud/region, spot and worker-count options for RECIPE by expected cost.

    Each option is the fewest workers that finish by the deadline with P(on time) at least
    schedule.p_target (0.95), with start-up, model load and spot preemptions priced in.
    ★ marks the choice, ◆ the cost/finish-time Pareto frontier. Exits 4 when no option
    meets the deadline and budget, saying why in one line.

    \b
    Examples:
      skybatch plan recipes/summarize-llama-10m.yaml
      skybatch plan recipes/summarize-llama-10m.yaml --deadline 12h --budget 1500 --plot
      skybatch plan recipes/embed-50m.yaml --top 3 --json
    """
    from scheduler.plan import plan_recipe

    r = read_recipe(recipe)
    result = plan_recipe(r, deadline_s=_deadline(deadline), budget_usd=budget)
    if as_json:
        emit_json(result.to_json(top=top))
    else:
        _print_human(result, top=top, plot=plot)
    if result.chosen is None:
        raise PlanError(result.reason)


def _print_human(result: Plan, *, top: int, plot: bool) -> None:
    import shutil

    from rich.console import Console

    from scheduler.plan import format_duration
    from scheduler.plan import money as _money
    from scheduler.units import duration_text

    # Piped output gets 120 columns (rich would cut it at 80); a terminal keeps its width.
    console = Console(highlight=False, width=shutil.get_terminal_size((120, 24)).columns)
    w = result.workload
    req = result.request
    console.print(
        f"[bold]{w.rows:,} rows[/] · {w.input_tokens_per_row:,.0f} input tokens/row "
        f"({w.input_tokens_source}) · {w.output_tokens_per_row:,.0f} output tokens/row "
        f"({w.output_tokens_source})"
    )
    budget = f", budget {_money(req.budget_usd)}" if req.budget_usd else ""
    console.print(
        f"deadline {format_duration(req.deadline_s)}{budget}, P(on time) ≥ {req.p_target:g}, "
        f"spot: {req.spot}, at most {req.max_workers} workers; rows from {w.rows_source}"
    )
    if result.options:
        console.print(render_table(result, top=top))
        hidden = len(result.options) - top
        if hidden > 0:
            console.print(f"[dim]… {hidden} more (--top {len(result.options)})[/]")
    for warning in result.warnings:
        console.print(f"[yellow]warning:[/] {warning}")
    if plot and result.options:
        click.echo(render_plot(result))
    choice = result.choice
    if choice is not None:
        console.print(f"[bold]Choice:[/] {result.reason}.")
        per_total, per_out = result.usd_per_million_tokens(choice)
        if per_total is not None:
            out_text = f", {_money_fine(per_out)} per 1M output tokens" if per_out else ""
            console.print(
                f"[bold]{_money_fine(per_total)} per 1M tokens[/] (input + output){out_text}"
            )
        console.print(
            f"[dim]rows_per_shard {choice.rows_per_shard:,} (about "
            f"{duration_text(choice.rows_per_shard / choice.rows_per_s)} per shard); "
            f"throughput: {choice.throughput_detail}[/]"
        )
