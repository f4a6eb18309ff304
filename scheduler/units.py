"""How skybatch writes a duration for people: one format in every command and screen.

``45s``, ``1m02s``, ``12m``, ``3h05m``, ``2d04h``: seconds are shown while they matter
(under ten minutes), and the unknown reads ``–``. The run summary, ``status``, the progress
bar, ``plan`` and the dashboard all call :func:`duration_text`, so a run that took
``1m02s`` never reads ``0:01:02`` in one place and ``1.0 min`` in another.
"""

from __future__ import annotations

__all__ = ["duration_text"]


def duration_text(seconds: float | None) -> str:
    """A short human duration: ``45s``, ``1m02s``, ``12m``, ``3h05m``, ``2d04h``; ``–``
    when unknown."""
    if seconds is None:
        return "–"
    s = round(max(0.0, seconds))
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m{s % 60:02d}s" if s < 600 else f"{s // 60}m"
    if s < 86400:
        return f"{s // 3600}h{(s % 3600) // 60:02d}m"
    return f"{s // 86400}d{(s % 86400) // 3600:02d}h"
