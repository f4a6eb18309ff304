"""The restart policy under SkyPilot 0.14's rules: exit 2 is final, errors use a budget."""

from __future__ import annotations

from pathlib import Path

import pytest

from scheduler.backends.skypilot import _entry
from scheduler.backends.skypilot._task import EXIT_RETRY, RECOVER_EXIT_CODES
from scheduler.store import RunStore


@pytest.mark.parametrize(
    ("code", "used", "budget", "verdict"),
    [
        (0, 0, 3, 0),  # done
        (3, 9, 3, 3),  # spot notice: always recovered, whatever the budget
        (1, 0, 3, EXIT_RETRY),  # an error with budget left: restart
        (1, 3, 3, 1),  # budget spent: final
        (2, 0, 3, 2),  # bad input / engine load: no restart can fix it
    ],
)
def test_verdicts(code: int, used: int, budget: int, verdict: int) -> None:
    assert _entry.restart_verdict(code, used=used, budget=budget) == verdict


def test_what_skypilot_recovers_and_what_it_does_not() -> None:
    assert EXIT_RETRY in RECOVER_EXIT_CODES and 3 in RECOVER_EXIT_CODES
    assert 1 not in RECOVER_EXIT_CODES and 2 not in RECOVER_EXIT_CODES


def test_the_budget_is_counted_in_the_store_across_lives(tmp_path: Path) -> None:
    argv = ["--store", str(tmp_path), "--run-id", "r", "--worker-id", "w0", "--max-restarts", "2"]
    lives = [_entry._judge(1, argv) for _ in range(3)]
    assert lives == [EXIT_RETRY, EXIT_RETRY, 1]
    assert RunStore(str(tmp_path), "r").read_meta("restarts-w0") == {"count": 2, "budget": 2}
    assert _entry._judge(2, argv) == 2  # never restarted, never counted
