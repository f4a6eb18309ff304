"""Leases judged by one clock (issue 13, finding 5): a worker whose wall clock is an hour
off can neither block a shard after it dies nor lose a lease it still renews.

Wall clocks are skewed through ``now`` (what a worker believes the time is, written into
``expires_at``); time passing for the claimant is its monotonic clock (a counter set on
the store's ``LeaseClock``) or the store's clock (the claim file's modification time, set
back with ``os.utime`` as if it had been written long ago)."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from scheduler.store import RunStore
from tests.unit.test_store import TTL, new_store

HOUR = 3600.0


class Monotonic:
    """A claimant's monotonic clock that tests move forward."""

    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


def _claimant(store: RunStore) -> tuple[RunStore, Monotonic]:
    other = RunStore(store.url, store.run_id)  # another process: its own memory
    clock = Monotonic()
    other._leases.monotonic = clock
    return other, clock


def _age_claim(store: RunStore, shard: str, seconds: float) -> None:
    path = store.path(f"claims/{shard}.json")
    then = os.stat(path).st_mtime - seconds
    os.utime(path, (then, then))


@pytest.mark.parametrize("skew", [+HOUR, -HOUR])
def test_a_dead_holder_with_a_skewed_clock_blocks_its_shard_for_one_ttl(
    tmp_path: Path, skew: float
) -> None:
    store = new_store(tmp_path)
    assert store.claim("s00000", "skewed", ttl_s=TTL, now=time.time() + skew) is not None
    claimant, clock = _claimant(store)
    assert claimant.claim("s00000", "w2", ttl_s=TTL) is None  # live when first seen
    clock.t += TTL - 1
    assert claimant.claim("s00000", "w2", ttl_s=TTL) is None
    clock.t += 1  # one TTL unchanged on the claimant's own clock, whatever expires_at says
    lease = claimant.claim("s00000", "w2", ttl_s=TTL)
    assert lease is not None and lease.attempt == 2


def test_a_live_holder_whose_clock_runs_slow_keeps_its_lease(tmp_path: Path) -> None:
    store = new_store(tmp_path)
    slow = time.time() - HOUR  # its expires_at lies an hour in the claimant's past
    lease = store.claim("s00000", "slow", ttl_s=TTL, now=slow)
    assert lease is not None
    claimant, clock = _claimant(store)
    assert claimant.claim("s00000", "w2", ttl_s=TTL) is None
    for step in range(1, 6):  # the holder renews every TTL/2 (its clock), w2 keeps trying
        clock.t += TTL / 2
        lease = store.renew(lease, ttl_s=TTL, now=slow + step * TTL / 2)
        assert lease is not None
        assert claimant.claim("s00000", "w2", ttl_s=TTL) is None


def test_a_fresh_worker_takes_over_a_lease_abandoned_long_ago_by_the_store_clock(
    tmp_path: Path,
) -> None:
    store = new_store(tmp_path)
    assert store.claim("s00000", "fast", ttl_s=TTL, now=time.time() + HOUR) is not None
    _age_claim(store, "s00000", TTL + 5)  # written TTL + 5 s ago on the store's clock
    fresh, _ = _claimant(store)  # a worker that just started: no history at all
    lease = fresh.claim("s00000", "w2", ttl_s=TTL)
    assert lease is not None and lease.worker == "w2"
    assert (Path(store.path("clocks")) / "w2").exists()  # its probe of the store's clock


def test_a_recent_claim_is_not_taken_by_the_store_clock(tmp_path: Path) -> None:
    store = new_store(tmp_path)
    assert store.claim("s00000", "fast", ttl_s=TTL, now=time.time() + HOUR) is not None
    _age_claim(store, "s00000", TTL - 5)
    fresh, _ = _claimant(store)
    assert fresh.claim("s00000", "w2", ttl_s=TTL) is None


def test_the_lease_document_carries_its_ttl(tmp_path: Path) -> None:
    store = new_store(tmp_path)
    assert store.claim("s00000", "w1", ttl_s=42.0) is not None
    claim = store.read_claim("s00000")
    assert claim is not None and claim.ttl_s == pytest.approx(42.0)
    claimant, clock = _claimant(store)
    assert claimant.claim("s00000", "w2", ttl_s=TTL) is None
    clock.t += 42.0  # the holder's TTL counts, not the claimant's (60 s)
    assert claimant.claim("s00000", "w2", ttl_s=TTL) is not None
