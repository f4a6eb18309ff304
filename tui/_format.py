"""Plain-text formatting of run figures for the TUI: durations, money, ETA vs deadline.

Pure functions of their arguments (the clock is passed in), so every cell the TUI draws
is deterministic under a frozen clock and testable without a terminal.
"""

from __future__ import annotations

from datetime import datetime, timezone

from scheduler.units import duration_text

__all__ = [
    "bar",
    "clock_text",
    "duration",
    "eta_vs_deadline",
    "money",
    "progress_text",
    "rate",
    "spend_vs_budget",
]

_BAR_FULL = "█"
_BAR_PARTIALS = " ▏▎▍▌▋▊▉"


def duration(seconds: float | None) -> str:
    """A short human duration (``45s``, ``12m``, ``3h05m``): the CLI's format, shared."""
    return duration_text(seconds)


def money(usd: float | None) -> str:
    """Dollars with cents (``$1,234.50``); ``–`` when unknown."""
    if usd is None:
        return "–"
    return f"${usd:,.2f}"


def rate(rows_per_s: float) -> str:
    """Rows per second with sensible precision."""
    if rows_per_s <= 0:
        return "–"
    if rows_per_s < 10:
        return f"{rows_per_s:.2f}"
    if rows_per_s < 1000:
        return f"{rows_per_s:.1f}"
    return f"{rows_per_s:,.0f}"


def bar(fraction: float, width: int) -> str:
    """A text progress bar of ``width`` cells with eighth-cell resolution."""
    fraction = min(1.0, max(0.0, fraction))
    eighths = round(fraction * width * 8)
    full, part = divmod(eighths, 8)
    text = _BAR_FULL * full + (_BAR_PARTIALS[part] if part and full < width else "")
    return text.ljust(width, "·" if width else " ")[:width]


def progress_text(rows_done: int, rows_total: int, *, width: int = 10) -> str:
    """``████▌····· 45%`` for a run's committed rows."""
    fraction = rows_done / rows_total if rows_total else 0.0
    return f"{bar(fraction, width)} {fraction * 100:3.0f}%"


def eta_vs_deadline(
    eta_s: float | None, deadline_at: float | None, *, now: float, done: bool = False
) -> str:
    """ETA with the deadline beside it, and a glyph saying on time (✔) or late (⚠).

    The glyph carries the verdict so it never depends on colour alone.
    """
    if done:
        return "done"
    eta = duration(eta_s)
    if deadline_at is None:
        return eta
    left = deadline_at - now
    if left <= 0:
        return f"{eta} ⚠ past deadline"
    if eta_s is None:
        return f"{eta} / {duration(left)}"
    verdict = "✔" if eta_s <= left else "⚠"
    return f"{eta} / {duration(left)} {verdict}"


def spend_vs_budget(spend_usd: float, budget_usd: float | None) -> str:
    """Spend with the budget beside it; ``⚠`` once spend passes 90% of the budget."""
    if budget_usd is None:
        return money(spend_usd)
    warn = " ⚠" if budget_usd > 0 and spend_usd >= 0.9 * budget_usd else ""
    return f"{money(spend_usd)} / {money(budget_usd)}{warn}"


def clock_text(ts: float) -> str:
    """A wall-clock time of day in UTC (``14:03:07Z``)."""
    return datetime.fromtimestamp(ts, timezone.utc).strftime("%H:%M:%SZ")
