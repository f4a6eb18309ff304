"""``skybatch tui``: the Textual dashboard (imports Textual only when the command runs)."""

from __future__ import annotations

import click

from scheduler.cli._common import cli, resolve_store_url
from scheduler.errors import UsageError

__all__ = ["tui"]


@cli.command()
@click.option(
    "--store",
    default=None,
    metavar="PATH|URL",
    help="Store holding the runs: a directory or an s3:// / gs:// prefix "
    "(default: SKYBATCH_STORE, or ./runs).",
)
@click.option(
    "--refresh",
    "refresh_s",
    type=float,
    default=2.0,
    show_default=True,
    help="Seconds between refreshes (change live with + and -, pause with p).",
)
def tui(store: str | None, refresh_s: float) -> None:
    """Watch, launch and steer runs in a terminal dashboard.

    \b
    Keys: enter opens a run, / filters, n plans and launches, c cancels, u resumes,
    o queries results, p pauses refresh, ? shows help, q quits (runs keep going).

    \b
    Example:
      skybatch tui --store ./runs --refresh 1
    """
    if refresh_s <= 0:
        raise UsageError(f"--refresh {refresh_s:g}: give a positive number of seconds")
    try:
        from tui import DataSource, SkybatchApp, history_provider
    except ImportError as e:
        raise UsageError(
            f"the TUI needs textual ({e}); install it with: pip install 'textual>=0.80'"
        ) from e
    url = resolve_store_url(store)
    app = SkybatchApp(DataSource(url, history=history_provider()), refresh_s=refresh_s)
    app.run()
