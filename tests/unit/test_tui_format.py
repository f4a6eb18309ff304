"""Pure pieces of the TUI: formatting, rate series, shard-map bucketing, dead-row reasons."""

from __future__ import annotations

import pytest

from scheduler.store import DoneMarker, ShardState, WorkerStatus
from tui import _format as fmt
from tui._data import _reason, rate_series
from tui.widgets.shard_map import ShardMap

NOW = 1_700_000_000.0


@pytest.mark.parametrize(
    ("seconds", "text"),
    [(None, "–"), (0, "0s"), (59.4, "59s"), (100, "1m40s"), (900, "15m"), (3 * 3600 + 300, "3h05m"),
     (2 * 86400 + 4 * 3600, "2d04h"), (-5, "0s")],
)  # fmt: skip
def test_duration(seconds: float | None, text: str) -> None:
    assert fmt.duration(seconds) == text


def test_bar_has_eighth_cell_resolution_and_a_fixed_width() -> None:
    assert fmt.bar(0.0, 8) == "········"
    assert fmt.bar(1.0, 8) == "████████"
    assert fmt.bar(0.5 + 1 / 64, 8) == "████▏···"
    assert fmt.bar(2.0, 4) == "████"
    assert fmt.progress_text(1, 4, width=4) == "█···  25%"
    assert fmt.progress_text(0, 0, width=2) == "··   0%"


def test_eta_vs_deadline_says_on_time_or_late_with_a_glyph() -> None:
    assert fmt.eta_vs_deadline(600, NOW + 3600, now=NOW) == "10m / 1h00m ✔"
    assert fmt.eta_vs_deadline(7200, NOW + 3600, now=NOW) == "2h00m / 1h00m ⚠"
    assert fmt.eta_vs_deadline(None, NOW + 3600, now=NOW) == "– / 1h00m"
    assert fmt.eta_vs_deadline(60, NOW - 1, now=NOW) == "1m00s ⚠ past deadline"
    assert fmt.eta_vs_deadline(60, None, now=NOW) == "1m00s"
    assert fmt.eta_vs_deadline(None, NOW + 5, now=NOW, done=True) == "done"


def test_spend_vs_budget_warns_near_the_budget() -> None:
    assert fmt.spend_vs_budget(1.5, None) == "$1.50"
    assert fmt.spend_vs_budget(1.5, 10) == "$1.50 / $10.00"
    assert fmt.spend_vs_budget(9.5, 10) == "$9.50 / $10.00 ⚠"
    assert fmt.money(1234.5) == "$1,234.50"
    assert fmt.rate(0) == "–" and fmt.rate(2.345) == "2.35" and fmt.rate(12345) == "12,345"
    assert fmt.clock_text(0) == "00:00:00Z"


def _marker(shard: str, rows: int, committed_at: str) -> DoneMarker:
    return DoneMarker(
        shard_id=shard, attempt=1, attempt_id="1-abc", worker="w", out_file="o", out_size=1,
        out_sha256="x", dead_file=None, rows_in=rows, rows_out=rows, rows_dead=0,
        ids_digest="0", committed_at=committed_at,
    )  # fmt: skip


def _worker(usd: float, start: float, end: float) -> WorkerStatus:
    return WorkerStatus(
        worker_id="w", state="running", alive=True, accelerator=None, cloud=None, region=None,
        spot=False, usd_per_hour=usd, rows_done=0, rows_per_s=0.0, shards_done=0,
        preemptions=0, started_at=start, last_seen=end, current_shard=None,
    )  # fmt: skip


def test_rate_series_buckets_commits_and_live_workers() -> None:
    start = 0.0
    markers = [
        _marker("a", 100, "1970-01-01T00:00:05+00:00"),
        _marker("b", 300, "1970-01-01T00:00:35+00:00"),
        _marker("c", 999, "1970-01-02T00:00:00+00:00"),  # after the window: ignored
    ]
    workers = [_worker(2.0, 0, 40), _worker(1.0, 20, 40)]
    rows, usd = rate_series(markers, workers, start=start, end=40.0, points=4)
    assert rows == [10.0, 0.0, 0.0, 30.0]
    assert usd == [2.0, 2.0, 3.0, 3.0]
    assert rate_series(markers, workers, start=5, end=5) == ([], [])


def test_shard_map_shows_one_cell_per_shard_when_it_fits() -> None:
    shard_map = ShardMap()
    shard_map.states = (ShardState.DONE, ShardState.CLAIMED, ShardState.FAILED, ShardState.PENDING)
    per_cell, cells = shard_map._grid(10)
    assert per_cell == 1
    assert [glyph for glyph, _ in cells] == ["█", "▒", "✘", "·"]


def test_shard_map_buckets_thousands_of_shards_into_a_bounded_grid() -> None:
    shard_map = ShardMap()
    states = [ShardState.DONE] * 6000 + [ShardState.PENDING] * 3990 + [ShardState.FAILED] * 10
    shard_map.states = tuple(states)
    per_cell, cells = shard_map._grid(100)
    assert per_cell == 13  # 10,000 shards over at most 100 × 8 cells
    assert len(cells) <= 800
    glyphs = "".join(g for g, _ in cells)
    assert glyphs.startswith("█" * 461)
    assert glyphs.endswith("✘")  # a failed shard is never hidden by its bucket
    assert set(glyphs) <= set("·░▒▓█✘")
    legend = shard_map.legend(per_cell).plain
    assert "█ done 6,000" in legend and "✘ failed 10" in legend
    assert "(1 cell = 13 shards)" in legend


@pytest.mark.parametrize(
    ("row", "reason"),
    [
        ({"reason": "ValueError: cannot handle r1"}, "ValueError"),
        ({"error": "JSONDecodeError: Expecting value: line 1"}, "JSONDecodeError"),
        ({"reason": "row timed out after 30 s"}, "row timed out after 30 s"),
        ({}, "unknown"),
    ],
)
def test_dead_row_reason_is_the_exception_name_or_the_message(
    row: dict[str, str], reason: str
) -> None:
    assert _reason(row) == reason
