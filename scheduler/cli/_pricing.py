"""``skybatch pricing show|refresh|estimate``: the price catalog and the estimator.

``pricing`` reads and refreshes the price catalog in DuckDB (see :mod:`pricing`) and says
what the estimator expects of a model on each accelerator. ``skybatch bench``, which
measures this machine, is in :mod:`scheduler.cli._bench`.
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Any

import click

from scheduler.cli._common import cli, emit_json
from scheduler.errors import SkybatchError, UsageError

if TYPE_CHECKING:
    from pricing import Offering

__all__ = ["pricing_group"]


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
