"""The planner's analytic model: finish time, cost and P(on time) of one plan.

A plan is ``w`` identical workers of one offering pulling shards of ``b`` rows from a shared
queue. Work is claimed dynamically, so the workers finish together up to the last shard::

    finish = S + (N - b) / (w·r) + b / r + Σ_preemptions (R + U·τ) / w

- ``N`` rows at ``r`` rows/s per worker. ``r`` is uncertain and *systematic* (every worker
  runs the same model on the same GPU, so errors do not average out): log-normal with its
  median at the estimate and its 5-95 % range at the estimate's band.
- ``S`` the start-up (provision + setup + model download and load), with its spread; the
  spread is taken as common to all workers (provisioning delays hit a whole launch), which
  is cautious. Spot capacity comes in one instance at a time: worker ``k`` waits a further
  ``k·δ``, so ``w`` workers finish ``δ(w - 1)/2`` later than if all came at once (exact
  while all of them arrive before the end); a worker that would arrive after the work is
  done is never worth adding, which caps the useful workers at ``w(w - 1) ≤ 2N/(r·δ)``.
- ``(N - b)/(w·r) + b/r`` is Graham's list-scheduling bound: the balanced share plus the last
  shard sticking out (at most ``w`` ≤ the number of shards do any work).
- Spot preemptions arrive at λ per worker-hour of work; their count follows the work, not
  the number of workers. Each costs the preempted worker a recovery ``R`` (a fresh start-up)
  plus the part of the shard it held (``U·τ``, U uniform: at most one shard is redone); the
  loss is capacity taken from the pool, so it spreads over the ``w`` workers. Preemptions
  during start-up lengthen the start-up instead.

Billing: each billing session (a worker's life; a preempted worker starts a new one) is
rounded up to the cloud's increment, half an increment on average. Egress (input or output
crossing clouds) is a fixed sum added to the cost.

Every term but the capacity wait falls as ``w`` grows with the draw held fixed, so P(on
time) rises with workers up to the useful cap (and cost rises with them: each worker pays
its own start-up), which makes the planner's binary search exact. P sums the Poisson count exactly while its mean is small and uses a
normal approximation beyond; the start-up spread is integrated with Gauss-Hermite nodes and
the throughput factor in closed form (log-normal CDF). ``benchmarks/sim_planner.py``
simulates shards, start-ups and preemptions event by event and checks that plans made with
this model hit their deadline as often as promised.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

__all__ = ["CandidateModel", "Evaluation", "evaluate", "p_on_time", "sigma_from_band"]

# Gauss-Hermite (probabilists') nodes and weights for E[f(Z)], Z ~ N(0, 1).
_GH5 = (
    (-2.8569700138728056, 0.011257411327720677),
    (-1.355626179974266, 0.22207592200561257),
    (0.0, 0.5333333333333335),
    (1.355626179974266, 0.22207592200561257),
    (2.8569700138728056, 0.011257411327720677),
)
_Z95 = 1.6448536269514722  # the band low..high is read as the 5 %..95 % range
_EXACT_POISSON_MAX_MEAN = 10.0


def sigma_from_band(*, mid: float, low: float, high: float, floor: float = 0.05) -> float:
    """Log-sd of the throughput factor from an estimate's band (a 90 % range)."""
    if low <= 0 or high <= 0 or mid <= 0:
        return floor
    lo = min(low, mid)
    hi = max(high, mid)
    # Use the wider side: a band skewed low must make the plan more careful, not less.
    side = max(math.log(mid / lo), math.log(hi / mid))
    return max(floor, side / _Z95)


@dataclass(frozen=True)
class CandidateModel:
    """Everything the model needs to know about one (offering, spot?) candidate."""

    rows: int
    rows_per_s: float  # median throughput of one worker
    rate_sigma: float  # log-sd of the systematic throughput factor
    startup_s: float  # mean start-up of one worker: provision + setup + model load
    startup_sigma: float  # relative spread (log-sd) of one worker's start-up
    preemptions_per_hour: float  # per worker-hour; 0 on demand
    usd_per_hour: float  # per worker
    rows_per_shard: int
    capacity_wait_s: float = 0.0  # δ: the further wait of each next spot worker
    billing_increment_s: float = 1.0  # the cloud rounds each billing session up to this
    fixed_usd: float = 0.0  # egress and other costs that do not scale with time

    @property
    def useful_workers(self) -> int:
        """Most workers worth starting: one more would arrive too late to help."""
        if self.capacity_wait_s <= 0:
            return 1 << 30
        limit = 2.0 * self.rows / (self.rows_per_s * self.capacity_wait_s)
        w = max(1, int((1 + math.sqrt(1 + 4 * limit)) / 2))  # largest w with w(w-1) ≤ limit
        return w

    def arrival_lag_s(self, workers: int) -> float:
        """Mean extra start-up of ``workers`` spot workers arriving one after another."""
        return self.capacity_wait_s * (max(1, workers) - 1) / 2.0

    @property
    def shard_s(self) -> float:
        """One shard's duration at the median throughput."""
        return self.rows_per_shard / self.rows_per_s

    @property
    def shards(self) -> int:
        """Number of shards."""
        return max(1, math.ceil(self.rows / max(self.rows_per_shard, 1)))

    def busy_workers(self, workers: int) -> int:
        """Workers that get a shard at all: one past the number of shards only idles."""
        return max(1, min(workers, self.shards))

    @property
    def mean_work_s(self) -> float:
        """Expected worker-seconds of inference (E[1/r] of a log-normal r)."""
        return self.rows / self.rows_per_s * math.exp(self.rate_sigma**2 / 2)

    @property
    def startup_sd(self) -> float:
        """Standard deviation of one worker's start-up, in seconds."""
        return self.startup_s * math.sqrt(math.expm1(self.startup_sigma**2))

    @property
    def effective_startup_s(self) -> float:
        """Mean start-up including restarts when a spot worker is preempted while starting."""
        restarts = self.preemptions_per_hour * self.startup_s / 3600.0
        return self.startup_s * (1.0 + 1.5 * restarts)


@dataclass(frozen=True)
class Evaluation:
    """What the model says about ``workers`` workers of one candidate."""

    workers: int
    p_on_time: float
    hours: float  # expected finish time from launch
    cost_usd: float  # expected spend, start-up and preemption losses included
    preemptions: float  # expected number of preemptions


def _expected_preemptions(m: CandidateModel) -> float:
    # Exposure is the work itself: the same rows take the same worker-hours whatever w is.
    return m.preemptions_per_hour * m.mean_work_s / 3600.0


def _loss_per_preemption(m: CandidateModel) -> tuple[float, float]:
    """Mean and second moment of the capacity one preemption costs (recovery + redo)."""
    recovery, redo = m.startup_s, m.shard_s
    mean = recovery + redo / 2
    second = m.startup_sd**2 + recovery**2 + redo**2 / 3 + recovery * redo
    return mean, second


def _p_rate_enough(m: CandidateModel, busy: int, slack_s: float) -> float:
    """P(the rows fit in ``slack_s``): P(r ≥ (N - b)/(w·slack) + b/slack)."""
    if slack_s <= 0:
        return 0.0
    b = min(m.rows_per_shard, m.rows)
    need = ((m.rows - b) / busy + b) / slack_s  # rows/s per worker that fits the slack
    if m.rate_sigma <= 0:
        return 1.0 if m.rows_per_s >= need else 0.0
    z = (math.log(m.rows_per_s) - math.log(need)) / m.rate_sigma
    return 0.5 * math.erfc(-z / math.sqrt(2.0))


def p_on_time(m: CandidateModel, workers: int, deadline_s: float) -> float:
    """P(the run finishes within ``deadline_s``) for ``workers`` workers."""
    if workers < 1:
        return 0.0
    busy = m.busy_workers(workers)
    mu = _expected_preemptions(m)
    loss_mean, loss_second = _loss_per_preemption(m)
    base = deadline_s - m.effective_startup_s - m.arrival_lag_s(busy)
    sd = m.startup_sd
    total = 0.0
    if mu <= _EXACT_POISSON_MAX_MEAN:
        k_max = int(mu + 6.0 * math.sqrt(mu) + 6.0)
        pmf = math.exp(-mu)
        for k in range(k_max + 1):
            if k:
                pmf *= mu / k
                if k > mu and pmf < 1e-9:
                    break  # the rest of the tail weighs less than 1e-9 in all
            delay = k * loss_mean / busy
            inner = 0.0
            for z, wz in _GH5:
                inner += wz * _p_rate_enough(m, busy, base - delay - sd * z)
            total += pmf * inner
    else:
        # Many preemptions: their summed loss is close to normal (kept ≥ 0, so that more
        # workers can only shorten it), integrated jointly with the start-up.
        loss_sd = math.sqrt(mu * loss_second)
        for z1, w1 in _GH5:
            loss = max(0.0, mu * loss_mean + loss_sd * z1) / busy
            for z2, w2 in _GH5:
                total += w1 * w2 * _p_rate_enough(m, busy, base - loss - sd * z2)
    return min(1.0, max(0.0, total))


def evaluate(m: CandidateModel, workers: int, deadline_s: float) -> Evaluation:
    """P(on time), expected hours and expected cost of ``workers`` workers."""
    mu = _expected_preemptions(m)
    loss_mean, _ = _loss_per_preemption(m)
    busy = m.busy_workers(workers)
    startup = m.effective_startup_s
    tail_s = m.shard_s * math.exp(m.rate_sigma**2 / 2) * (1.0 - 1.0 / busy) / 2
    finish_s = (
        startup + m.arrival_lag_s(busy) + m.mean_work_s / busy + tail_s + mu * loss_mean / busy
    )
    # Billed: every worker's start-up (setup and model load run on a paid instance), the
    # work, what preemptions waste, and each billing session's rounding; workers exit when
    # the queue is empty. Waiting for spot capacity bills nothing.
    rounding_s = (workers + mu) * max(0.0, m.billing_increment_s - 1.0) / 2.0
    billed_s = workers * startup + m.mean_work_s + mu * loss_mean + rounding_s
    return Evaluation(
        workers=workers,
        p_on_time=p_on_time(m, workers, deadline_s),
        hours=finish_s / 3600.0,
        cost_usd=m.usd_per_hour * billed_s / 3600.0 + m.fixed_usd,
        preemptions=mu,
    )
