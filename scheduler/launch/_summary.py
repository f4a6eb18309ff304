"""How a launched run went, for people and for CI: exit code and markdown summary.

``skybatch launch --wait`` (and ``skybatch watch``) end with an :class:`Outcome` built from
the run summary (:func:`scheduler.runs.summarize`), the plan and the run's deadline and
budget. CI gates on the exit code; the markdown goes to ``--summary-md PATH`` and, when
GitHub Actions sets ``GITHUB_STEP_SUMMARY``, to the job's summary page.

Exit codes (the first that applies)::

    1  the run failed (too many dead rows) or stopped before every shard was committed
    6  the run finished but spent more than its budget
    7  the run finished within budget but after its deadline
    0  the run finished, within budget and by its deadline
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from scheduler.errors import BudgetError, DeadlineMissed

__all__ = ["EXIT_DONE", "EXIT_FAILED", "EXIT_LATE", "EXIT_OVER_BUDGET", "Outcome", "write_summary"]

EXIT_DONE = 0
EXIT_FAILED = 1
EXIT_OVER_BUDGET = BudgetError.exit_code
EXIT_LATE = DeadlineMissed.exit_code


def _fmt_time(ts: float | None) -> str:
    if ts is None:
        return "—"
    return datetime.fromtimestamp(ts, timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")


def _fmt_duration(seconds: float | None) -> str:
    if seconds is None:
        return "—"
    s = round(seconds)
    h, rem = divmod(s, 3600)
    m, sec = divmod(rem, 60)
    return f"{h}h{m:02d}m{sec:02d}s" if h else (f"{m}m{sec:02d}s" if m else f"{sec}s")


def _usd(x: float | None) -> str:
    return "—" if x is None else f"${x:,.2f}"


@dataclass(frozen=True)
class Outcome:
    """The end of a run as CI sees it."""

    summary: dict[str, Any]
    finished_at: float
    deadline_at: float | None = None
    budget_usd: float | None = None
    planned_cost_usd: float | None = None
    planned_hours: float | None = None
    backend: str = "local"
    workers: int = 0
    events: list[str] = field(default_factory=list)

    @property
    def state(self) -> str:
        """The run state (``done``, ``failed``, ``stopped``...)."""
        return str(self.summary.get("state", "unknown"))

    @property
    def spend_usd(self) -> float:
        """Measured spend ($/h × billed time over workers)."""
        return float(self.summary.get("spend_usd") or 0.0)

    @property
    def over_budget(self) -> bool:
        """True when the measured spend passed the budget."""
        return self.budget_usd is not None and self.spend_usd > self.budget_usd

    @property
    def late(self) -> bool:
        """True when the run finished after its deadline."""
        return self.deadline_at is not None and self.finished_at > self.deadline_at

    @property
    def exit_code(self) -> int:
        """The process exit code CI gates on (see the module docstring)."""
        if self.state != "done":
            return EXIT_FAILED
        if self.over_budget:
            return EXIT_OVER_BUDGET
        if self.late:
            return EXIT_LATE
        return EXIT_DONE

    @property
    def verdict(self) -> str:
        """One line: what the exit code means."""
        return {
            EXIT_DONE: "done: every row accounted for, within budget and deadline",
            EXIT_FAILED: f"not done: the run is {self.state}",
            EXIT_OVER_BUDGET: "done, but over budget",
            EXIT_LATE: "done, but after the deadline",
        }[self.exit_code]

    def to_json(self) -> dict[str, Any]:
        """The ``launch --wait --json`` object: the run summary plus the CI verdict."""
        return {
            **self.summary,
            "backend": self.backend,
            "workers": self.workers,
            "deadline_at": self.deadline_at,
            "finished_at": self.finished_at,
            "late": self.late,
            "budget_usd": self.budget_usd,
            "over_budget": self.over_budget,
            "planned_cost_usd": self.planned_cost_usd,
            "planned_hours": self.planned_hours,
            "exit_code": self.exit_code,
        }

    def markdown(self) -> str:
        """A GitHub-flavoured markdown summary: rows, dead rows, cost vs plan, time vs deadline."""
        s = self.summary
        mark = "✅" if self.exit_code == EXIT_DONE else ("⚠️" if self.state == "done" else "❌")
        rows_in = int(s.get("rows_in") or 0)
        rows_dead = int(s.get("rows_dead") or 0)
        dead_pct = f"{100.0 * rows_dead / rows_in:.3f} %" if rows_in else "—"
        wall_s = float(s.get("wall_s") or 0.0)
        if self.deadline_at is not None:
            slack = self.deadline_at - self.finished_at
            vs_deadline = (
                f"{_fmt_duration(slack)} early" if slack >= 0 else f"{_fmt_duration(-slack)} late"
            )
        else:
            vs_deadline = "no deadline"
        lines = [
            f"## {mark} skybatch run `{s.get('run_id')}`: {self.verdict}",
            "",
            "| | |",
            "|---|---|",
            f"| state | **{self.state}** (exit code {self.exit_code}) |",
            f"| rows in / out / dead | {rows_in:,} / {int(s.get('rows_out') or 0):,} / "
            f"{rows_dead:,} ({dead_pct}) |",
            f"| shards | {s.get('shards_done', '—')} / {s.get('shards_total', '—')} |",
            f"| throughput | {float(s.get('rows_per_s') or 0.0):,.1f} rows/s |",
            f"| cost | {_usd(self.spend_usd)} (plan {_usd(self.planned_cost_usd)}, "
            f"budget {_usd(self.budget_usd)}) |",
            f"| time | {_fmt_duration(wall_s)} (plan "
            f"{_fmt_duration(None if self.planned_hours is None else self.planned_hours * 3600)}) |",
            f"| finished | {_fmt_time(self.finished_at)} |",
            f"| deadline | {_fmt_time(self.deadline_at)} ({vs_deadline}) |",
            f"| backend / workers | {self.backend} / {self.workers} |",
            f"| store | `{s.get('location') or s.get('store')}` |",
        ]
        if self.events:
            lines += ["", "<details><summary>deadline guard</summary>", ""]
            lines += [f"- {e}" for e in self.events]
            lines += ["", "</details>"]
        return "\n".join(lines) + "\n"


def write_summary(outcome: Outcome, path: str | None = None) -> list[str]:
    """Write the markdown to ``path`` and append it to ``$GITHUB_STEP_SUMMARY``; the paths."""
    text = outcome.markdown()
    written = []
    if path:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        Path(path).write_text(text, encoding="utf-8")
        written.append(path)
    step = os.environ.get("GITHUB_STEP_SUMMARY")
    if step:
        # GitHub concatenates what each step appends; never overwrite earlier steps.
        with open(step, "a", encoding="utf-8") as f:
            f.write(text)
        written.append(step)
    return written
