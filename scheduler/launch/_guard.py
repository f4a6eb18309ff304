"""The deadline guard: re-plan from measured throughput and add workers when a run is late.

While ``launch --wait`` or ``skybatch watch`` runs, :class:`DeadlineGuard` wakes every
``interval_s`` (a few minutes; seconds in tests), reads the run's status from the store and
decides, with :func:`decide`::

    nothing left ─────────────────────────────► done
    no throughput measured yet ───────────────► hold
    projected finish (now + rows left / rows/s) ≤ deadline ─► on track
    otherwise, a worker of this session exited 2 (permanent) ─► refuse (say which, why)
    otherwise: k = workers that would finish in time, each starting after ``startup_s``
        k = 0 or too late to help ───────────► hold (say why)
        k > max_workers - alive ────────────► cap at max_workers
        spend + projected cost of k > budget ► fewer; none fit ─► over budget: warn, stop adding
        ────────────────────────────────────► add k (spot, on-demand in the last stretch)

Every decision goes to the run's event log (``kind: guard``) with its reason, so the TUI,
``status`` and the CI summary can show why workers were (not) added. The guard never
passes the budget: once adding would pass it, it warns once and adds nothing more. Nor does
it add workers to a run one of whose workers exited with a permanent failure (exit 2: bad
input, a recipe or engine that will not load; the worker's last heartbeat says so): a new
worker would fail the same way, and SkyPilot is told not to restart it for that reason.
Backends add workers through the small :class:`Scaler` seam (every
:class:`~scheduler.backends.Backend` is one); :func:`make_guard` builds a run's guard.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

from scheduler.errors import SkybatchError
from scheduler.store import LaunchOption, RunStatus, RunStore, read_status
from scheduler.units import duration_text

if TYPE_CHECKING:
    from scheduler.backends import Backend

__all__ = ["DeadlineGuard", "Decision", "GuardConfig", "Scaler", "decide", "make_guard"]


class Scaler(Protocol):
    """What the guard needs from a backend: count workers and add some."""

    def alive(self) -> int:
        """Workers running now (or starting)."""
        ...

    def add(self, k: int, *, spot: bool) -> int:
        """Start ``k`` more workers (spot or on-demand); returns how many were started."""
        ...


@dataclass(frozen=True)
class GuardConfig:
    """What the guard may do, and what a new worker costs."""

    deadline_at: float
    budget_usd: float | None = None
    interval_s: float = 180.0
    max_workers: int = 16
    spot_usd_per_hour: float = 0.0
    ondemand_usd_per_hour: float = 0.0
    startup_s: float = 0.0
    #: Within this many seconds of the deadline new workers are on-demand: a spot worker
    #: preempted now could not recover in time.
    last_stretch_s: float = 1800.0
    #: Projected finish is compared with the deadline minus this share of the time left.
    safety: float = 0.1
    spot_allowed: bool = True


@dataclass(frozen=True)
class Decision:
    """One guard decision and why."""

    action: str  # done | hold | on_track | add | over_budget | refused
    reason: str
    add_workers: int = 0
    spot: bool = True
    projected_finish_at: float | None = None
    projected_cost_usd: float | None = None


def _hours(seconds: float) -> float:
    return max(0.0, seconds) / 3600.0


def _late(finish: float, deadline: float) -> str:
    if finish > deadline:
        return f"{duration_text(finish - deadline)} past the deadline"
    return f"only {duration_text(deadline - finish)} before the deadline (inside the safety margin)"


def decide(
    status: RunStatus,
    cfg: GuardConfig,
    *,
    now: float,
    alive: int,
    reporting: int | None = None,
    budget_stopped: bool = False,
    permanent_failure: str | None = None,
) -> Decision:
    """The guard's decision for one status snapshot (pure: no I/O).

    ``reporting`` is how many of the ``alive`` workers have measured a rate yet; the
    others are still starting, and count as capacity that arrives after ``startup_s``
    (so a guard that just added workers does not add them again). ``permanent_failure``
    (or the status's own) names a worker that exited permanently: then nothing is added.
    """
    remaining = status.rows_total - status.rows_done
    if remaining <= 0:
        return Decision("done", "every row is committed")
    measured = status.rows_per_s
    reporting = alive if reporting is None else min(reporting, alive)
    if measured <= 0 or alive <= 0 or reporting <= 0:
        return Decision("hold", "no throughput measured yet; waiting for committed shards")
    per_worker = measured / reporting
    starting = alive - reporting
    left_s = cfg.deadline_at - now
    # Starting workers join after their start-up: rows done by then at the measured rate.
    head = min(remaining, measured * cfg.startup_s) if starting else 0.0
    rate = per_worker * alive
    finish = now + (cfg.startup_s if starting else 0.0) + (remaining - head) / rate
    target = cfg.deadline_at - cfg.safety * max(0.0, left_s)
    cost_now = status.spend_usd + status.usd_per_hour * _hours(finish - now)
    if finish <= target:
        return Decision(
            "on_track",
            f"projected finish in {duration_text(finish - now)} at {rate:.2f} rows/s "
            f"is within the deadline ({duration_text(left_s)} left)",
            projected_finish_at=finish,
            projected_cost_usd=cost_now,
        )
    permanent = permanent_failure or status.permanent_failure
    if permanent:
        return Decision(
            "refused",
            f"projected finish is {_late(finish, cfg.deadline_at)}, but not adding workers: "
            f"{permanent}; a new worker would fail the same way (fix the recipe or input, "
            "then launch again)",
            projected_finish_at=finish,
            projected_cost_usd=cost_now,
        )
    useful_s = (target - now) - cfg.startup_s
    if useful_s <= 0:
        return Decision(
            "hold",
            f"projected finish is {_late(finish, cfg.deadline_at)}, "
            f"but a new worker needs {duration_text(cfg.startup_s)} to start: too late to help",
            projected_finish_at=finish,
            projected_cost_usd=cost_now,
        )
    # rows the current workers still do by the target; the rest needs k new workers.
    warmup = cfg.startup_s if starting else 0.0
    by_current = head + rate * max(0.0, target - now - warmup)
    k = math.ceil((remaining - by_current) / (per_worker * useful_s))
    k = max(1, k)
    room = cfg.max_workers - alive
    capped = ""
    if room <= 0:
        return Decision(
            "hold",
            f"projected finish is {_late(finish, cfg.deadline_at)}, "
            f"but the run already has max_workers={cfg.max_workers}",
            projected_finish_at=finish,
            projected_cost_usd=cost_now,
        )
    if k > room:
        k, capped = room, f" (capped at max_workers={cfg.max_workers})"
    spot = cfg.spot_allowed and left_s > cfg.last_stretch_s
    price = cfg.spot_usd_per_hour if spot else cfg.ondemand_usd_per_hour

    def projected(extra: int) -> tuple[float, float]:
        new_rate = rate + extra * per_worker
        # New workers add nothing during their start-up; a close-enough finish estimate.
        end = (
            now
            + cfg.startup_s * (extra > 0)
            + max(0.0, (remaining - rate * cfg.startup_s * (extra > 0)) / new_rate)
        )
        hours = _hours(end - now)
        cost = status.spend_usd + status.usd_per_hour * hours + extra * price * hours
        return end, cost

    if budget_stopped:
        return Decision(
            "over_budget",
            "not adding workers: an earlier decision found the budget would be passed",
            projected_finish_at=finish,
            projected_cost_usd=cost_now,
        )
    if cfg.budget_usd is not None:
        while k > 0 and projected(k)[1] > cfg.budget_usd:
            k -= 1
        if k == 0:
            _, cost1 = projected(1)
            return Decision(
                "over_budget",
                f"projected finish is {_late(finish, cfg.deadline_at)}, but one more worker would bring the cost to ${cost1:,.2f}, over "
                f"the ${cfg.budget_usd:,.2f} budget: not adding workers",
                projected_finish_at=finish,
                projected_cost_usd=cost_now,
            )
    end, cost = projected(k)
    kind = "spot" if spot else "on-demand"
    return Decision(
        "add",
        f"projected finish is {_late(finish, cfg.deadline_at)} at "
        f"{rate:.2f} rows/s ({per_worker:.2f} per worker); adding {k} {kind} worker(s)"
        f"{capped} → projected finish {duration_text(end - now)} from now, cost ${cost:,.2f}",
        add_workers=k,
        spot=spot,
        projected_finish_at=end,
        projected_cost_usd=cost,
    )


class DeadlineGuard:
    """Runs :func:`decide` every ``interval_s`` on a run and acts through a :class:`Scaler`."""

    def __init__(
        self,
        store: RunStore,
        scaler: Scaler,
        cfg: GuardConfig,
        *,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.store = store
        self.scaler = scaler
        self.cfg = cfg
        self.clock = clock
        self.budget_stopped = False
        #: Once a worker has exited permanently, this guard never adds workers again.
        self.permanent_failure: str | None = None
        self._refused = False  # the first refusal is a warning, later ones are info
        self.next_at = clock() + cfg.interval_s

    def due(self) -> bool:
        """True when the interval has passed since the last decision."""
        return self.clock() >= self.next_at

    def step(self, status: RunStatus | None = None) -> Decision:
        """Decide once, act, and log the decision with its reason."""
        now = self.clock()
        self.next_at = now + self.cfg.interval_s
        status = status or read_status(self.store, now=now)
        alive = self.scaler.alive()
        reporting = sum(1 for w in status.workers if w.alive and w.rows_per_s > 0)
        if status.permanent_failure and self.permanent_failure is None:
            self.permanent_failure = status.permanent_failure
        d = decide(
            status,
            self.cfg,
            now=now,
            alive=alive,
            reporting=reporting,
            budget_stopped=self.budget_stopped,
            permanent_failure=self.permanent_failure,
        )
        started, failed = 0, None
        if d.action == "add":
            try:
                started = self.scaler.add(d.add_workers, spot=d.spot)
            except SkybatchError as e:  # a cloud hiccup must not end a healthy run's watch
                started = len(getattr(e, "launched", None) or {})
                failed = f"{d.reason}; adding workers failed ({e}); trying again next interval"
        warn_once = (d.action == "over_budget" and not self.budget_stopped) or (
            d.action == "refused" and not self._refused
        )
        if d.action == "over_budget":
            self.budget_stopped = True
        if d.action == "refused":
            self._refused = True
        # "on track"/"hold" repeat every interval: log them too, the log is the audit trail.
        self.store.log_event(
            "guard",
            failed or d.reason,
            action="add_failed" if failed else d.action,
            level="warning" if warn_once or failed else "info",
            add_workers=d.add_workers,
            started=started,
            spot=d.spot,
            alive=alive,
            rows_per_s=round(status.rows_per_s, 4),
            rows_left=status.rows_total - status.rows_done,
            spend_usd=round(status.spend_usd, 4),
            projected_finish_at=d.projected_finish_at,
            projected_cost_usd=d.projected_cost_usd,
            deadline_at=self.cfg.deadline_at,
            budget_usd=self.cfg.budget_usd,
            permanent_failure=self.permanent_failure,
        )
        return d


def make_guard(
    store: RunStore,
    backend: Backend,
    option: LaunchOption,
    *,
    enabled: bool = True,
    interval_s: float = 180.0,
    usd_per_hour: float = 0.0,
) -> DeadlineGuard | None:
    """The guard of a run from its deadline, budget and the option's prices; None when the
    run has no deadline or the guard is off (``--no-guard``).

    A remote backend's new worker needs the cloud's start-up time and, in the last half
    hour, is on-demand (priced from the catalog); a local one starts in seconds.
    """
    info = store.run_info()
    deadline_at = info.deadline_at
    if not enabled or deadline_at is None:
        return None
    price = option.usd_per_hour or usd_per_hour
    if backend.remote:
        from scheduler.backends.skypilot import ondemand_offerings

        ondemand = min((o.usd_per_hour for o in ondemand_offerings(option)), default=price)
        try:
            import pricing

            cloud = option.offerings[0].cloud if option.offerings else "aws"
            startup = float(pricing.startup_s(cloud))
        except Exception:
            startup = 300.0
        stretch = 1800.0
    else:
        ondemand, startup = price, 3.0
        stretch = min(1800.0, 0.25 * max(0.0, deadline_at - time.time()))
    schedule = info.schedule
    cfg = GuardConfig(
        deadline_at=deadline_at,
        budget_usd=info.budget_usd,
        interval_s=interval_s,
        max_workers=int(schedule.get("max_workers") or 16),
        spot_usd_per_hour=price,
        ondemand_usd_per_hour=ondemand,
        startup_s=startup,
        last_stretch_s=stretch,
        spot_allowed=schedule.get("spot", "prefer") != "never",
    )
    return DeadlineGuard(store, backend, cfg)
