"""``skybatch verify``: check a run's committed files against their commit markers.

Exit codes: 0 every committed shard checked out (or the bad ones were quarantined with
``--repair``), 3 some committed file is missing or differs from its marker.
"""

from __future__ import annotations

import click

from scheduler.cli._common import cli, emit_json, open_run, run_store_option
from scheduler.errors import StoreError

__all__ = ["verify"]


@cli.command()
@click.argument("run_id")
@run_store_option
@click.option(
    "--repair",
    is_flag=True,
    help="Move bad markers (and their files) to quarantine/ so a resume redoes those shards.",
)
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
def verify(run_id: str, store_url: str | None, repair: bool, as_json: bool) -> None:
    """Check every committed output and dead-row file against its commit marker.

    Each file must exist with the size, sha256, row count and row-id digest its marker
    recorded. Exit 3 names what differs; `--repair` quarantines those shards, and running
    the same `skybatch run`/`launch` again redoes them.

    \b
    Examples:
      skybatch verify embed-minilm-1a2b3c4d5e
      skybatch verify embed-minilm-1a2b3c4d5e --repair
    """
    from scheduler.store import quarantine, verify_run

    store = open_run(run_id, store_url)
    report = verify_run(store)
    if repair and report.problems:
        quarantine(store, report)
    if as_json:
        emit_json(report.to_json())
    else:
        for problem in report.problems:
            click.echo(f"✘ {problem}", err=True)
        if report.ok:
            click.echo(f"✔ {run_id}: {report.shards_checked} committed shard(s) verified")
        elif report.quarantined:
            click.echo(
                f"{len(report.quarantined)} shard(s) quarantined in "
                f"{store.location}/quarantine/; run the same command again to redo them"
            )
    if report.problems and not report.quarantined:
        raise StoreError(
            f"run {run_id}: {len(report.problems)} of {report.shards_checked} committed "
            f"shard(s) do not match their markers; `skybatch verify {run_id} --repair` "
            "quarantines them so a resume redoes them"
        )
