"""Exactly-once under random interleavings: a hypothesis state machine against a real
local store.

Several workers (each with its own ``RunStore``, as separate processes have) claim,
write, commit, renew, release, crash and have their leases expire (a fake claimant clock
passed to ``claim``/``renew``: a lease expires after TTL unchanged in the claimant's view) across several shards, in any order hypothesis likes. A small model
says what the store must answer; the invariants are the contract's:

- every shard is committed at most once, and the marker names the one winning attempt;
- a committed marker's output exists with the size and sha256 it records;
- once every worker is gone and the shards are drained, each shard is done exactly once
  and the committed row ids (outputs + dead rows) equal the input ids, no duplicates.
"""

from __future__ import annotations

import hashlib
import shutil
import tempfile
from collections import Counter
from dataclasses import dataclass
from typing import Any

import pyarrow as pa
import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from scheduler.store import DoneMarker, Lease, OutputFile, RunStore, digest_ids

SHARDS = [f"s{i:05d}" for i in range(3)]
WORKERS = ["w0", "w1", "w2"]
ROWS = 4
TTL = 10.0
T0 = 1_700_000_000.0
RUN = "prop"


def ids_of(shard: str) -> list[str]:
    return [f"{shard}-r{j}" for j in range(ROWS)]


@dataclass
class InFlight:
    """What a worker holds in memory (lost when it crashes)."""

    lease: Lease
    out: OutputFile | None = None
    marker: DoneMarker | None = None


@dataclass
class ClaimModel:
    """The model's view of a shard's claim document."""

    worker: str
    token: str
    expires_at: float
    released: bool = False


class StoreMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.dir = tempfile.mkdtemp(prefix="skybatch-prop-")
        info = {"input_fingerprint": "f", "model_revision": None, "recipe_digest": "d"}
        rows = [
            {"shard_id": s, "file": "in.jsonl", "offset": i * ROWS, "row_count": ROWS}
            for i, s in enumerate(SHARDS)
        ]
        RunStore(self.dir, RUN).ensure(info, lambda: rows)
        self.views = {w: RunStore(self.dir, RUN) for w in WORKERS}
        self.inflight: dict[str, InFlight] = {}
        self.now = T0
        self.claims: dict[str, ClaimModel] = {}
        # (viewer, shard) -> ((token, expires_at), when the viewer first saw it so)
        self.seen: dict[tuple[str, str], tuple[tuple[str, float], float]] = {}
        self.committed: dict[str, str] = {}  # shard -> winning attempt_id
        self.commit_wins: Counter[str] = Counter()

    # ------------------------------------------------------------------ rules

    # Rules draw their worker among those able to act, so few steps are wasted and races
    # (two attempts in flight on one shard) come up often.

    def _idle(self) -> list[str]:
        return [w for w in WORKERS if w not in self.inflight]

    def _holding(self, *, written: bool | None = None) -> list[str]:
        return [
            w
            for w, job in sorted(self.inflight.items())
            if w in WORKERS and (written is None or (job.out is not None) == written)
        ]

    @precondition(lambda self: self._idle())
    @rule(data=st.data(), s=st.sampled_from(SHARDS))
    def claim_shard(self, data: st.DataObject, s: str) -> None:
        self.claim(data.draw(st.sampled_from(self._idle()), label="worker"), s)

    def claim(self, w: str, s: str) -> None:
        lease = self.views[w].claim(s, w, ttl_s=TTL, now=self.now)
        held = self.claims.get(s)
        blocked = False
        if s not in self.committed and held and held.worker != w and not held.released:
            # A lease expires after TTL unchanged on the claimant's clock, from first sight
            # (expires_at, the holder's clock, is never compared with ours).
            key = (held.token, held.expires_at)
            seen = self.seen.get((w, s))
            if seen is None or seen[0] != key:
                self.seen[(w, s)] = (key, self.now)
                blocked = True
            else:
                blocked = self.now - seen[1] < TTL
        if s in self.committed or blocked:
            assert lease is None, f"{w} got {s} (committed={s in self.committed}, held={held})"
            return
        assert lease is not None, f"{w} could not claim free shard {s} (held={held})"
        assert lease.expires_at == self.now + TTL
        self.claims[s] = ClaimModel(w, lease.token, lease.expires_at)
        self.inflight[w] = InFlight(lease)

    @precondition(lambda self: self._holding(written=False))
    @rule(data=st.data(), dead=st.integers(0, ROWS))
    def write_shard(self, data: st.DataObject, dead: int) -> None:
        self.write(data.draw(st.sampled_from(self._holding(written=False)), label="worker"), dead)

    def write(self, w: str, dead: int) -> None:
        job = self.inflight[w]
        store, lease = self.views[w], job.lease
        ids = ids_of(lease.shard_id)
        good = ids[dead:]
        out = store.write_output(
            lease, pa.table({"id": good, "emb": [[float(j), 0.5] for j in range(len(good))]})
        )
        dead_file = store.write_dead(lease, [{"id": i, "error": "bad row"} for i in ids[:dead]])
        store.verify(out)
        if dead_file:
            store.verify(dead_file)
        job.out = out
        job.marker = DoneMarker(
            shard_id=lease.shard_id,
            attempt=lease.attempt,
            attempt_id=lease.attempt_id,
            worker=w,
            out_file=out.path,
            out_size=out.size,
            out_sha256=out.sha256,
            dead_file=dead_file.path if dead_file else None,
            rows_in=ROWS,
            rows_out=len(good),
            rows_dead=dead,
            ids_digest=digest_ids(ids),
        )

    @precondition(lambda self: self._holding(written=True))
    @rule(data=st.data())
    def commit_shard(self, data: st.DataObject) -> None:
        self.commit(data.draw(st.sampled_from(self._holding(written=True)), label="worker"))

    def commit(self, w: str) -> None:
        marker = self.inflight[w].marker
        assert marker is not None
        won = self.views[w].commit(marker)
        s = marker.shard_id
        assert won == (s not in self.committed), f"{w} commit of {s}: won={won}"
        if won:
            self.committed[s] = marker.attempt_id
            self.commit_wins[s] += 1
            self.claims.pop(s, None)  # the winner removes the lease
        else:
            assert not (self.views[w].fs.exists(self.views[w].path(marker.out_file)))
        del self.inflight[w]

    @precondition(lambda self: self._holding())
    @rule(data=st.data())
    def renew(self, data: st.DataObject) -> None:
        w = data.draw(st.sampled_from(self._holding()), label="worker")
        job = self.inflight[w]
        renewed = self.views[w].renew(job.lease, ttl_s=TTL, now=self.now)
        held = self.claims.get(job.lease.shard_id)
        still_ours = held is not None and held.token == job.lease.token
        assert (renewed is not None) == still_ours
        if renewed is not None and held is not None:
            held.expires_at = renewed.expires_at
            job.lease = renewed

    @precondition(lambda self: self._holding(written=False))
    @rule(data=st.data(), failed=st.booleans())
    def release(self, data: st.DataObject, failed: bool) -> None:
        w = data.draw(st.sampled_from(self._holding(written=False)), label="worker")
        job = self.inflight.pop(w)
        self.views[w].release(job.lease, error="boom" if failed else None)
        held = self.claims.get(job.lease.shard_id)
        if held is not None and held.token == job.lease.token:
            held.released = True

    @precondition(lambda self: self._holding())
    @rule(data=st.data())
    def crash_worker(self, data: st.DataObject) -> None:
        self.crash(data.draw(st.sampled_from(self._holding()), label="worker"))

    def crash(self, w: str) -> None:
        """The worker dies: in-memory state is gone, files and lease stay behind."""
        self.inflight.pop(w, None)
        self.views[w] = RunStore(self.dir, RUN)
        self.seen = {k: v for k, v in self.seen.items() if k[0] != w}  # its memory too

    @precondition(lambda self: self._holding() and self._idle())
    @rule(data=st.data())
    def take_over_expired_lease(self, data: st.DataObject) -> None:
        """The lease of a worker still in flight (slow, partitioned) lapses; an idle worker
        takes the shard over. Both may now write and commit: the marker must decide."""
        holder = data.draw(st.sampled_from(self._holding()), label="holder")
        taker = data.draw(st.sampled_from(self._idle()), label="taker")
        lease = self.inflight[holder].lease
        self.claim(taker, lease.shard_id)  # the taker sees the lease live first
        if taker not in self.inflight:
            self.now += TTL + 0.001
            self.claim(taker, lease.shard_id)

    @rule(dt=st.sampled_from([0.5, TTL / 2, TTL + 0.5, 3 * TTL]))
    def tick(self, dt: float) -> None:
        self.now += dt

    @precondition(lambda self: len(self.committed) < len(SHARDS))
    @rule()
    def reader_sees_committed_shards(self) -> None:
        reader = RunStore(self.dir, RUN)
        assert sorted(reader.done_shards()) == sorted(self.committed)
        for s in SHARDS:
            assert reader.is_done(s) == (s in self.committed)

    # ------------------------------------------------------------------ invariants

    @invariant()
    def committed_at_most_once_and_markers_verify(self) -> None:
        assert all(n == 1 for n in self.commit_wins.values())
        reader = RunStore(self.dir, RUN)
        for s, attempt_id in self.committed.items():
            marker = reader.read_marker(s)
            assert marker is not None and marker.attempt_id == attempt_id
            reader.verify(OutputFile(marker.out_file, marker.out_size, marker.out_sha256))

    # ------------------------------------------------------------------ the end

    def teardown(self) -> None:
        try:
            self._drain_and_reconcile()
        finally:
            shutil.rmtree(self.dir, ignore_errors=True)

    def _drain_and_reconcile(self) -> None:
        # Every worker dies; a finisher takes over each remaining shard once leases lapse.
        for w in WORKERS:
            self.crash(w)
        finisher = "finisher"
        self.views[finisher] = RunStore(self.dir, RUN)
        for s in SHARDS:  # first sight of the leases the dead workers left behind
            self.views[finisher].claim(s, finisher, ttl_s=TTL, now=self.now)
        self.now += 2 * TTL
        for s in SHARDS:
            lease = self.views[finisher].claim(s, finisher, ttl_s=TTL, now=self.now)
            if s in self.committed:
                assert lease is None
                continue
            assert lease is not None
            self.inflight[finisher] = InFlight(lease)
            self.write(finisher, 1)
            self.commit(finisher)
        reader = RunStore(self.dir, RUN)
        markers = reader.markers()
        assert sorted(markers) == SHARDS
        seen: list[str] = []
        for marker in markers.values():
            out_ids = reader.read_output(marker).column("id").to_pylist()
            dead_ids = [r["id"] for r in reader.read_dead(marker)]
            assert marker.rows_in == marker.rows_out + marker.rows_dead
            assert (len(out_ids), len(dead_ids)) == (marker.rows_out, marker.rows_dead)
            assert digest_ids(out_ids + dead_ids) == marker.ids_digest
            data = reader.fs.cat_file(reader.path(marker.out_file))
            assert hashlib.sha256(data).hexdigest() == marker.out_sha256
            seen += out_ids + dead_ids
        assert sorted(seen) == sorted(i for s in SHARDS for i in ids_of(s))  # no duplicates


StoreMachine.TestCase.settings = settings(
    max_examples=60,
    stateful_step_count=30,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
# 60 random interleavings take seconds: the slow lane runs them (CI runs every lane).
test_store_exactly_once = pytest.mark.slow(StoreMachine.TestCase)


def test_model_helpers_are_consistent() -> None:
    """Guard the test itself: the ids the machine writes are the ids of the manifest."""
    everything: list[Any] = [i for s in SHARDS for i in ids_of(s)]
    assert len(everything) == len(set(everything)) == len(SHARDS) * ROWS
