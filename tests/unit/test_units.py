"""One duration format everywhere: the CLI, the progress bar, the guard and the dashboard."""

from __future__ import annotations

import pytest

from scheduler.units import duration_text
from tui import _format as fmt


@pytest.mark.parametrize(
    ("seconds", "text"),
    [(None, "–"), (0.4, "0s"), (62, "1m02s"), (599, "9m59s"), (600, "10m"), (3725, "1h02m"),
     (2 * 86400 + 3 * 3600, "2d03h")],
)  # fmt: skip
def test_duration_text(seconds: float | None, text: str) -> None:
    assert duration_text(seconds) == text
    assert fmt.duration(seconds) == text  # the dashboard writes it the same way


def test_no_other_duration_format_is_left_in_user_facing_code() -> None:
    import pathlib
    import re

    root = pathlib.Path(__file__).resolve().parents[2]
    # The shapes the issue found: 0:01:02 (rich's elapsed column), "0.0 min", "12.3 s".
    shapes = re.compile(r"TimeElapsedColumn|/ 60:\.\df\} min|:\.\df\} s\b")
    offenders = [
        f"{path.relative_to(root)}:{n}"
        for folder in ("scheduler", "tui")
        for path in sorted((root / folder).rglob("*.py"))
        for n, line in enumerate(path.read_text().splitlines(), 1)
        if shapes.search(line)
    ]
    assert offenders == []
