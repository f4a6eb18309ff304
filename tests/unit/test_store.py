"""The run store against a real local directory: creation and resume checks, leases,
the exclusive commit, verification, the row-id digest, conformance, heartbeats, events.

The only fakes are fsspec filesystems registered under test protocols (a legitimate
seam: the store reaches every backend through fsspec), standing for object stores that do
not honour exclusive create.
"""

from __future__ import annotations

import errno
import hashlib
import io
import json
import multiprocessing
import os
import sys
from pathlib import Path
from typing import Any

import fsspec
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from fsspec.implementations.memory import MemoryFileSystem

from scheduler.errors import ResumeRefused, StoreError
from scheduler.store import (
    DoneMarker,
    Lease,
    OutputFile,
    RunStore,
    digest_ids,
    iter_runs,
    make_run_id,
    validate_run_id,
)
from scheduler.store._commits import _parquet_table as parquet_table

T0 = 1_700_000_000.0
TTL = 60.0


def run_info(**over: Any) -> dict[str, Any]:
    info: dict[str, Any] = {
        "input_fingerprint": "fp-aaaa",
        "model": "m",
        "model_revision": "rev-1",
        "recipe_digest": "rd-1",
        "recipe": {"name": "t", "limits": {"max_error_rate": 0.01}},
    }
    info.update(over)
    return info


def manifest(n: int, rows: int = 10) -> list[dict[str, Any]]:
    return [
        {"shard_id": f"s{i:05d}", "file": "in.jsonl", "offset": i * rows, "row_count": rows}
        for i in range(n)
    ]


def shard_ids(shard: str, rows: int = 10) -> list[str]:
    return [f"{shard}-r{j}" for j in range(rows)]


def new_store(tmp_path: Path, n: int = 3, run_id: str = "run-1") -> RunStore:
    store = RunStore(str(tmp_path / "runs"), run_id)
    assert store.ensure(run_info(), lambda: manifest(n)) is True
    return store


def write_and_mark(
    store: RunStore, lease: Lease, *, dead: int = 0, rows: int = 10
) -> tuple[OutputFile, DoneMarker]:
    """What a worker does between claim and commit: write, verify, build the marker."""
    ids = shard_ids(lease.shard_id, rows)
    good = ids[dead:]
    out = store.write_output(lease, pa.table({"id": good, "v": [1.0] * len(good)}))
    dead_file = store.write_dead(lease, [{"id": i, "error": "boom"} for i in ids[:dead]])
    store.verify(out)
    marker = DoneMarker(
        shard_id=lease.shard_id,
        attempt=lease.attempt,
        attempt_id=lease.attempt_id,
        worker=lease.worker,
        out_file=out.path,
        out_size=out.size,
        out_sha256=out.sha256,
        dead_file=dead_file.path if dead_file else None,
        rows_in=rows,
        rows_out=len(good),
        rows_dead=dead,
        ids_digest=digest_ids(ids),
    )
    return out, marker


# ---------------------------------------------------------------------- creation, resume


def test_ensure_creates_once_then_resumes(tmp_path: Path) -> None:
    store = new_store(tmp_path, n=4)
    info = store.read_run_info()
    assert info["run_id"] == "run-1" and info["input_fingerprint"] == "fp-aaaa"
    assert [s["shard_id"] for s in store.read_manifest()] == [f"s{i:05d}" for i in range(4)]
    again = RunStore(str(tmp_path / "runs"), "run-1")
    assert again.ensure(run_info(), lambda: manifest(4)) is False


@pytest.mark.parametrize(
    ("key", "label"),
    [
        ("input_fingerprint", "different input"),
        ("model_revision", "different model revision"),
        ("recipe_digest", "different recipe"),
    ],
)
def test_resume_refused_when_run_identity_changed(tmp_path: Path, key: str, label: str) -> None:
    new_store(tmp_path)
    store = RunStore(str(tmp_path / "runs"), "run-1")
    with pytest.raises(ResumeRefused, match=rf"run run-1 in .* was created from a {label} "):
        store.ensure(run_info(**{key: "changed"}), lambda: manifest(3))
    with pytest.raises(ResumeRefused, match=r"give another --run-id"):
        store.ensure(run_info(**{key: "changed"}), lambda: manifest(3))


def test_refused_resume_leaves_the_manifest_alone(tmp_path: Path) -> None:
    store = new_store(tmp_path, n=3)
    with pytest.raises(ResumeRefused):
        RunStore(str(tmp_path / "runs"), "run-1").ensure(
            run_info(input_fingerprint="other"), lambda: manifest(7)
        )
    assert len(store.read_manifest()) == 3


def test_losing_driver_of_a_create_race_does_not_overwrite_the_manifest(
    tmp_path: Path,
) -> None:
    """Two drivers create the same run id at once, from different inputs.

    The one whose run.json lands first owns the run; the other must be refused without
    having replaced the winner's manifest (which would silently change the shards).
    """
    winner = RunStore(str(tmp_path / "runs"), "run-1")
    loser = RunStore(str(tmp_path / "runs"), "run-1")
    winner.create(run_info(), manifest(3))
    # The loser checked exists() before the winner created the run, so it calls create too.
    loser.create(run_info(input_fingerprint="other"), manifest(9))
    assert len(winner.read_manifest()) == 3
    with pytest.raises(ResumeRefused, match="different input"):
        loser.ensure(run_info(input_fingerprint="other"), lambda: manifest(9))


def test_ensure_completes_a_creation_interrupted_before_the_manifest(tmp_path: Path) -> None:
    store = new_store(tmp_path, n=2)
    os.unlink(store.path("manifest.parquet"))
    with pytest.raises(StoreError, match=r"run run-1 in .* has no manifest.parquet"):
        store.read_manifest()
    assert (
        RunStore(str(tmp_path / "runs"), "run-1").ensure(run_info(), lambda: manifest(2)) is False
    )
    assert len(store.read_manifest()) == 2


def test_missing_run_is_a_clear_error(tmp_path: Path) -> None:
    store = RunStore(str(tmp_path / "runs"), "nope")
    assert store.exists() is False
    with pytest.raises(StoreError, match=r"run nope not found in .*check the run id and --store"):
        store.read_run_info()


@pytest.mark.parametrize("bad", ["", "../x", "a/b", "-lead", "a b", "x" * 129])
def test_invalid_run_ids_are_refused(bad: str) -> None:
    with pytest.raises(StoreError, match="is not valid"):
        validate_run_id(bad)


def test_make_run_id_is_stable_and_sensitive() -> None:
    base = {"fingerprint": "f", "model": "m", "revision": "r", "recipe_digest": "d"}
    rid = make_run_id("embed", **base)
    assert rid == make_run_id("embed", **base)
    assert validate_run_id(rid) == rid and rid.startswith("embed-")
    for key in base:
        assert make_run_id("embed", **{**base, key: "other"}) != rid


def test_meta_round_trip(tmp_path: Path) -> None:
    store = new_store(tmp_path)
    assert store.read_meta("plan") is None
    store.write_meta("plan", {"workers": 3})
    assert store.read_meta("plan") == {"workers": 3}


# ---------------------------------------------------------------------- leases


def test_claim_renew_release(tmp_path: Path) -> None:
    store = new_store(tmp_path)
    lease = store.claim("s00000", "w1", ttl_s=TTL, now=T0)
    assert lease is not None and lease.attempt == 1 and lease.expires_at == T0 + TTL
    claim = store.read_claim("s00000")
    assert claim is not None and claim.worker == "w1" and claim.token == lease.token
    # Another worker cannot take a live lease.
    assert store.claim("s00000", "w2", ttl_s=TTL, now=T0 + 1) is None
    renewed = store.renew(lease, ttl_s=TTL, now=T0 + 50)
    assert renewed is not None and renewed.expires_at == T0 + 50 + TTL
    # The renewal keeps it out of reach past the first expiry.
    assert store.claim("s00000", "w2", ttl_s=TTL, now=T0 + 70) is None
    store.release(renewed, error="CUDA error")
    released = store.read_claim("s00000")
    assert released is not None and released.released is True
    assert released.failures == 1 and released.last_error == "CUDA error"
    # Released: free at once, and the failure count travels with the shard.
    taken = store.claim("s00000", "w2", ttl_s=TTL, now=T0 + 71)
    assert taken is not None and taken.attempt == 2 and taken.failures == 1
    assert taken.last_error == "CUDA error"


def test_expired_lease_is_taken_over_and_old_holder_loses_it(tmp_path: Path) -> None:
    store = new_store(tmp_path)
    old = store.claim("s00001", "w1", ttl_s=TTL, now=T0)
    assert old is not None
    # Expiry counts from when w2 first saw the lease unchanged, on w2's clock.
    assert store.claim("s00001", "w2", ttl_s=TTL, now=T0 + 1) is None
    assert store.claim("s00001", "w2", ttl_s=TTL, now=T0 + 1 + TTL - 0.001) is None
    new = store.claim("s00001", "w2", ttl_s=TTL, now=T0 + 1 + TTL)
    assert new is not None and new.worker == "w2" and new.attempt == 2
    assert new.attempt_id != old.attempt_id
    # The old holder learns it lost the lease when it renews; its release is a no-op.
    assert store.renew(old, ttl_s=TTL, now=T0 + TTL + 1) is None
    store.release(old)
    claim = store.read_claim("s00001")
    assert claim is not None and claim.token == new.token and claim.released is False


def test_same_worker_reclaims_its_own_lease_immediately(tmp_path: Path) -> None:
    """A restarted worker (same id) must not wait out the lease of its previous life."""
    store = new_store(tmp_path)
    first = store.claim("s00002", "w1", ttl_s=TTL, now=T0)
    second = store.claim("s00002", "w1", ttl_s=TTL, now=T0 + 1)
    assert first is not None and second is not None
    assert second.attempt == 2 and second.token != first.token
    assert store.renew(first, ttl_s=TTL, now=T0 + 2) is None


def test_done_shard_cannot_be_claimed(tmp_path: Path) -> None:
    store = new_store(tmp_path)
    lease = store.claim("s00000", "w1", ttl_s=TTL, now=T0)
    assert lease is not None
    _, marker = write_and_mark(store, lease)
    assert store.commit(marker) is True
    assert store.read_claim("s00000") is None  # the lease is tidied away by the commit
    other = RunStore(str(tmp_path / "runs"), "run-1")  # a process without the cache
    assert other.claim("s00000", "w2", ttl_s=TTL, now=T0 + 10 * TTL) is None


def test_torn_claim_reads_as_absent(tmp_path: Path) -> None:
    store = new_store(tmp_path)
    Path(store.path("claims")).mkdir(parents=True)
    Path(store.path("claims/s00000.json")).write_text('{"worker": "w1", "expi')
    assert store.read_claim("s00000") is None
    assert store.claim("s00000", "w2", ttl_s=TTL, now=T0) is not None


# ---------------------------------------------------------------------- commit


def test_commit_race_has_one_winner_and_loser_files_are_removed(tmp_path: Path) -> None:
    a = RunStore(str(tmp_path / "runs"), "run-1")
    a.ensure(run_info(), lambda: manifest(2))
    b = RunStore(str(tmp_path / "runs"), "run-1")
    la = a.claim("s00000", "wa", ttl_s=TTL, now=T0)
    assert b.claim("s00000", "wb", ttl_s=TTL, now=T0) is None  # live when b first sees it
    lb = b.claim("s00000", "wb", ttl_s=TTL, now=T0 + TTL + 1)  # took over the expired lease
    assert la is not None and lb is not None
    out_a, ma = write_and_mark(a, la)
    out_b, mb = write_and_mark(b, lb, dead=2)
    assert b.commit(mb) is True
    assert a.commit(ma) is False
    assert not os.path.exists(a.path(out_a.path))
    assert os.path.exists(b.path(out_b.path))
    assert mb.dead_file is not None and os.path.exists(b.path(mb.dead_file))
    fresh = RunStore(str(tmp_path / "runs"), "run-1")
    marker = fresh.read_marker("s00000")
    assert marker == mb and marker.worker == "wb" and marker.attempt_id == lb.attempt_id
    on_disk = json.loads(Path(fresh.path("done/s00000.json")).read_text())
    assert on_disk["worker"] == "wb" and on_disk["out_sha256"] == out_b.sha256
    # The loser asking again gets the same answer.
    assert a.commit(ma) is False


def test_commit_reread_settles_an_unclear_outcome(tmp_path: Path) -> None:
    """The marker landed but the answer was lost (timeout, retried PUT -> 412).

    Committing the same attempt again hits "exists"; reading the marker back shows it is
    ours, so the commit counts and our outputs are kept.
    """
    store = new_store(tmp_path)
    lease = store.claim("s00001", "w1", ttl_s=TTL, now=T0)
    assert lease is not None
    out, marker = write_and_mark(store, lease)
    assert store.commit(marker) is True
    retry = RunStore(str(tmp_path / "runs"), "run-1")  # no cached marker
    assert retry.commit(marker) is True
    assert os.path.exists(store.path(out.path))


def test_verify_catches_missing_truncated_and_altered_outputs(tmp_path: Path) -> None:
    store = new_store(tmp_path)
    lease = store.claim("s00000", "w1", ttl_s=TTL, now=T0)
    assert lease is not None
    out = store.write_output(lease, pa.table({"id": shard_ids("s00000")}))
    store.verify(out)
    data = Path(store.path(out.path)).read_bytes()
    assert out.size == len(data) and out.sha256 == hashlib.sha256(data).hexdigest()

    Path(store.path(out.path)).write_bytes(data[:-7])
    with pytest.raises(
        StoreError, match=rf"{out.path}: output does not match .*expected {out.size}"
    ):
        store.verify(out)
    flipped = bytearray(data)
    flipped[len(data) // 2] ^= 0xFF
    Path(store.path(out.path)).write_bytes(bytes(flipped))  # same size, other checksum
    with pytest.raises(StoreError, match="output does not match what was written"):
        store.verify(out)
    os.unlink(store.path(out.path))
    with pytest.raises(StoreError, match="output vanished before commit"):
        store.verify(out)


def test_committed_outputs_and_dead_rows_read_back(tmp_path: Path) -> None:
    store = new_store(tmp_path, n=2)
    for sid in ("s00000", "s00001"):
        lease = store.claim(sid, "w1", ttl_s=TTL, now=T0)
        assert lease is not None
        assert store.commit(write_and_mark(store, lease, dead=3 if sid == "s00001" else 0)[1])
    reader = RunStore(str(tmp_path / "runs"), "run-1")
    markers = reader.markers()
    assert sorted(markers) == ["s00000", "s00001"] == reader.done_shards()
    m1 = markers["s00001"]
    assert (m1.rows_in, m1.rows_out, m1.rows_dead) == (10, 7, 3)
    assert reader.read_output(m1).column("id").to_pylist() == shard_ids("s00001")[3:]
    assert [r["id"] for r in reader.read_dead(m1)] == shard_ids("s00001")[:3]
    assert reader.read_dead(markers["s00000"]) == []
    ids = [i for m in markers.values() for i in reader.read_output(m).column("id").to_pylist()]
    ids += [r["id"] for m in markers.values() for r in reader.read_dead(m)]
    assert sorted(ids) == sorted(shard_ids("s00000") + shard_ids("s00001"))
    assert digest_ids(ids[:10]) != m1.ids_digest


def test_parquet_reads_let_go_of_the_file_before_they_return() -> None:
    # A read whose Arrow pool threads still held the file afterwards made `skybatch launch`
    # abort at exit (-6, "terminate called without an active exception") under CPU load:
    # the last reference dropped on a pool thread needs the GIL while Python shuts down.
    table = pa.table({"id": [f"r{i:05d}" for i in range(200)], "n": list(range(200))})
    buf = io.BytesIO()
    pq.write_table(table, buf)
    data = buf.getvalue()
    base = sys.getrefcount(data)
    for _ in range(500):
        assert parquet_table(data).equals(table)
        assert sys.getrefcount(data) == base


@pytest.mark.parametrize("content", [b"not json", b"[1, 2]", b'{"shard_id": "s00000"}'])
def test_unreadable_marker_is_a_store_error(tmp_path: Path, content: bytes) -> None:
    store = new_store(tmp_path)
    Path(store.path("done")).mkdir()
    Path(store.path("done/s00000.json")).write_bytes(content)
    with pytest.raises(StoreError, match=r"done/s00000.json: commit marker is unreadable"):
        store.read_marker("s00000")


def _race_worker(root: str, worker: str, shards: int, barrier: Any, results: Any) -> None:
    store = RunStore(root, "race")
    won = []
    for i in range(shards):
        sid = f"s{i:05d}"
        # Each side gets its own attempt (a takeover), as when a lease expired mid-shard.
        lease = Lease(sid, worker, 1, os.urandom(8).hex(), T0 + TTL)
        _, marker = write_and_mark(store, lease)
        barrier.wait()
        if store.commit(marker):
            won.append((sid, lease.attempt_id))
    results.put((worker, won))


@pytest.mark.slow
def test_two_processes_race_to_commit_each_shard_one_winner(tmp_path: Path) -> None:
    shards = 120
    root = str(tmp_path / "runs")
    RunStore(root, "race").ensure(run_info(), lambda: manifest(shards))
    ctx = multiprocessing.get_context("spawn")
    barrier = ctx.Barrier(2)
    results = ctx.Queue()
    procs = [
        ctx.Process(target=_race_worker, args=(root, w, shards, barrier, results))
        for w in ("pa", "pb")
    ]
    for p in procs:
        p.start()
    outcome = dict(results.get(timeout=120) for _ in procs)
    for p in procs:
        p.join(timeout=30)
        assert p.exitcode == 0
    wins = [sid for won in outcome.values() for sid, _ in won]
    assert sorted(wins) == [f"s{i:05d}" for i in range(shards)]  # one winner per shard
    store = RunStore(root, "race")
    winners = {sid: (w, aid) for w, won in outcome.items() for sid, aid in won}
    for sid, marker in store.markers().items():
        assert (marker.worker, marker.attempt_id) == winners[sid]
        assert os.path.exists(store.path(marker.out_file))
    # Losers tidied their outputs away: exactly one output file per shard is left.
    assert len([n for n in os.listdir(store.path("out")) if n.endswith(".parquet")]) == shards


# ---------------------------------------------------------------------- digest


def test_digest_ids_is_order_independent_and_counts_duplicates() -> None:
    ids = [f"row-{i}" for i in range(50)]
    assert digest_ids(ids) == digest_ids(list(reversed(ids))) == digest_ids(sorted(ids, key=hash))
    assert digest_ids(ids) != digest_ids([*ids, "row-3"])  # duplicate
    assert digest_ids(ids) != digest_ids(ids[:-1])  # missing
    assert digest_ids(["a", "a", "b"]) != digest_ids(["a", "b", "b"])
    assert digest_ids(["ab"]) != digest_ids(["a", "b"])
    assert digest_ids([]) == "0" * 32
    assert len(digest_ids(ids)) == 32


def test_digest_ids_accepts_any_python_string() -> None:
    # JSON input can carry lone surrogates ("\ud800") in an id column.
    lone = json.loads('"\\ud800x"')
    assert digest_ids([lone, "é", "日本"]) == digest_ids(["日本", lone, "é"])
    assert digest_ids([lone]) != digest_ids(["x"])


# ---------------------------------------------------------------------- conformance


class _NoExclusiveFS(MemoryFileSystem):
    """An object store that silently overwrites on "xb" (like a store without conditional
    writes, or a FUSE mount seen through fsspec)."""

    protocol = "noexcl"
    store: dict[str, Any] = {}  # noqa: RUF012 - fsspec's memory store is a class attribute
    pseudo_dirs = [""]  # noqa: RUF012

    def _open(self, path: str, mode: str = "rb", **kwargs: Any) -> Any:
        return super()._open(path, mode.replace("x", "w"), **kwargs)


class _NoXModeFS(MemoryFileSystem):
    """A filesystem whose files do not support mode "xb" at all."""

    protocol = "noxmode"
    store: dict[str, Any] = {}  # noqa: RUF012
    pseudo_dirs = [""]  # noqa: RUF012

    def _open(self, path: str, mode: str = "rb", **kwargs: Any) -> Any:
        if "x" in mode:
            raise NotImplementedError("File mode not supported")
        return super()._open(path, mode, **kwargs)


class _VagueRefusalFS(MemoryFileSystem):
    """Refuses a second exclusive create, but not as "exists" (e.g. HTTP 501 to the
    If-None-Match header from an S3-compatible store): a lost race would read as a failure."""

    protocol = "vague"
    store: dict[str, Any] = {}  # noqa: RUF012
    pseudo_dirs = [""]  # noqa: RUF012

    def _open(self, path: str, mode: str = "rb", **kwargs: Any) -> Any:
        if "x" in mode and self.exists(path):
            raise OSError(errno.EIO, "NotImplemented: If-None-Match")
        return super()._open(path, mode, **kwargs)


class _AnswerLost:
    """A write that lands but whose answer is lost (``landed``) or that never lands."""

    def __init__(self, real: Any, *, landed: bool) -> None:
        self.real, self.landed, self.data = real, landed, b""

    def write(self, data: bytes) -> int:
        self.data += data
        return len(data)

    def __enter__(self) -> _AnswerLost:
        return self

    def __exit__(self, *exc: object) -> None:
        if self.landed:
            self.real.write(self.data)
            self.real.close()
        raise TimeoutError("read timed out waiting for the PUT response")


class _FlakyMarkerFS(MemoryFileSystem):
    """Exclusive create works, but creating a commit marker times out; whether the
    marker landed is set per test with ``landed``."""

    protocol = "flaky"
    store: dict[str, Any] = {}  # noqa: RUF012
    pseudo_dirs = [""]  # noqa: RUF012
    landed = True

    def _open(self, path: str, mode: str = "rb", **kwargs: Any) -> Any:
        if "x" in mode and "/done/" in path:
            real = super()._open(path, mode, **kwargs) if self.landed else None
            return _AnswerLost(real, landed=self.landed)
        return super()._open(path, mode, **kwargs)


@pytest.fixture(autouse=True, scope="module")
def _fake_protocols() -> None:
    fsspec.register_implementation("flaky", _FlakyMarkerFS, clobber=True)
    fsspec.register_implementation("noexcl", _NoExclusiveFS, clobber=True)
    fsspec.register_implementation("noxmode", _NoXModeFS, clobber=True)
    fsspec.register_implementation("vague", _VagueRefusalFS, clobber=True)


def test_conformance_passes_on_a_local_directory(tmp_path: Path) -> None:
    store = RunStore(str(tmp_path / "runs"), "run-1")
    store.check_conformance()
    assert not os.path.exists(store.path("_conformance"))  # the probe is cleaned up


def test_conformance_passes_on_a_filesystem_honouring_exclusive_create() -> None:
    RunStore("memory://conf-ok", "run-1").check_conformance()


def test_conformance_refuses_a_store_without_exclusive_create() -> None:
    store = RunStore("noexcl://bucket/runs", "run-1")
    assert store.local is False
    with pytest.raises(StoreError, match=r"does not refuse a second exclusive create"):
        store.check_conformance()


def test_conformance_refuses_a_store_without_exclusive_mode() -> None:
    with pytest.raises(StoreError, match=r"store noxmode://b/runs: cannot create files exclusive"):
        RunStore("noxmode://b/runs", "run-1").check_conformance()


def test_conformance_refuses_a_store_that_refuses_without_saying_exists() -> None:
    with pytest.raises(StoreError, match=r"a second exclusive create failed without saying"):
        RunStore("vague://b/runs", "run-1").check_conformance()


@pytest.mark.parametrize("landed", [True, False])
def test_commit_timeout_is_settled_by_reading_the_marker(
    landed: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SKYBATCH_STORE_RETRY_S", "0.5")  # the create times out every time
    url = f"flaky://bucket-{landed}/runs"
    _FlakyMarkerFS.landed = landed
    store = RunStore(url, "run-1")
    store.ensure(run_info(), lambda: manifest(1))
    lease = store.claim("s00000", "w1", ttl_s=TTL, now=T0)
    assert lease is not None
    out, marker = write_and_mark(store, lease)
    if landed:
        assert store.commit(marker) is True  # the marker names this attempt
        assert RunStore(url, "run-1").read_marker("s00000") == marker
    else:
        with pytest.raises(StoreError, match=r"done/s00000.json: commit failed .*stays pending"):
            store.commit(marker)
        assert RunStore(url, "run-1").is_done("s00000") is False
    assert store.fs.exists(store.path(out.path))  # kept either way: it may be the winner


def test_attempt_ids_of_simultaneous_takeovers_differ() -> None:
    """Two takeovers of one expired lease read the same attempt number; their files must
    still differ even when their random tokens share a prefix."""
    a = Lease("s00000", "wa", 2, "abcdef0000000001", T0)
    b = Lease("s00000", "wb", 2, "abcdef0000000002", T0)
    assert a.attempt_id != b.attempt_id


def test_losing_commit_never_deletes_a_file_the_winner_names(tmp_path: Path) -> None:
    store = new_store(tmp_path, n=1)
    lease = store.claim("s00000", "w1", ttl_s=TTL, now=T0)
    assert lease is not None
    out, winner = write_and_mark(store, lease)
    assert store.commit(winner) is True
    # Another attempt that (by a name clash) points at the same file, with other content.
    clash = DoneMarker(**{**winner.__dict__, "worker": "w2", "out_sha256": "f" * 64})
    assert RunStore(str(tmp_path / "runs"), "run-1").commit(clash) is False
    assert os.path.exists(store.path(out.path))


def test_exclusive_commit_on_an_fsspec_store(tmp_path: Path) -> None:
    """The non-local code path ("xb" through fsspec), on the in-memory filesystem."""
    url = "memory://commit-test/runs"
    store = RunStore(url, "run-1")
    store.ensure(run_info(), lambda: manifest(1))
    la = store.claim("s00000", "wa", ttl_s=TTL, now=T0)
    b = RunStore(url, "run-1")
    assert b.claim("s00000", "wb", ttl_s=TTL, now=T0) is None
    lb = b.claim("s00000", "wb", ttl_s=TTL, now=T0 + 2 * TTL)
    assert la is not None and lb is not None
    _, ma = write_and_mark(store, la)
    _, mb = write_and_mark(store, lb)
    assert store.commit(ma) is True
    assert RunStore(url, "run-1").commit(mb) is False
    assert RunStore(url, "run-1").read_marker("s00000") == ma
    assert not store.fs.exists(store.path(mb.out_file))


# ---------------------------------------------------------------------- heartbeats, events, runs


def test_heartbeats_round_trip(tmp_path: Path) -> None:
    store = new_store(tmp_path)
    store.heartbeat("w1", {"accelerator": "L4", "usd_per_hour": 0.7, "rows_done": 10})
    store.heartbeat("w2", {"accelerator": None, "spot": True})
    store.heartbeat("w1", {"accelerator": "L4", "usd_per_hour": 0.7, "rows_done": 30})
    workers = RunStore(str(tmp_path / "runs"), "run-1").workers()
    assert sorted(workers) == ["w1", "w2"]
    assert workers["w1"].rows_done == 30 and workers["w1"].worker_id == "w1"
    assert workers["w2"].spot is True and workers["w2"].last_seen is not None


def test_events_round_trip_in_order(tmp_path: Path) -> None:
    store = new_store(tmp_path)
    assert store.events() == []
    for i in range(12):
        store.log_event("scale", f"added worker {i}", workers=i)
    events = RunStore(str(tmp_path / "runs"), "run-1").events()
    assert [e["workers"] for e in events] == list(range(12))
    assert events[0]["kind"] == "scale" and events[0]["message"] == "added worker 0"
    assert [e["workers"] for e in store.events(limit=3)] == [9, 10, 11]


def test_iter_runs_lists_only_created_runs(tmp_path: Path) -> None:
    url = str(tmp_path / "runs")
    assert list(iter_runs(url)) == []
    new_store(tmp_path, run_id="b-run")
    new_store(tmp_path, run_id="a-run")
    os.makedirs(os.path.join(url, "not-a-run"))
    os.makedirs(os.path.join(url, ".hidden"))
    Path(url, "stray.txt").write_text("x")
    assert list(iter_runs(url)) == ["a-run", "b-run"]
    new_store(tmp_path, run_id="c-run")
    assert list(iter_runs(url)) == ["a-run", "b-run", "c-run"]


def test_only_a_structured_412_means_the_marker_exists() -> None:
    from scheduler.store._fs import _precondition_failed

    class ClientError(Exception):  # the shape of botocore's
        def __init__(self, code: str, status: int) -> None:
            self.response = {
                "Error": {"Code": code},
                "ResponseMetadata": {"HTTPStatusCode": status},
            }

    def wrapped(cause: Exception, text: str) -> OSError:
        e = OSError(text)
        e.__cause__ = cause
        return e

    assert _precondition_failed(wrapped(ClientError("PreconditionFailed", 412), "x"))
    assert _precondition_failed(wrapped(ClientError("", 412), "x"))
    # A timeout while committing shard 00412 names the key: not an "exists".
    timeout = OSError("Read timeout on endpoint URL: http://s3/b/runs/r/done/00412.json")
    assert not _precondition_failed(timeout)
    assert not _precondition_failed(wrapped(ClientError("SlowDown", 503), "PreconditionFailed 412"))


def test_the_manifest_is_read_once_per_store_object(tmp_path: Path) -> None:
    store = new_store(tmp_path, n=3)
    first = store.read_manifest()
    assert [s["shard_id"] for s in first] == ["s00000", "s00001", "s00002"]
    first.clear()  # a caller's list is its own
    Path(store.path("manifest.parquet")).unlink()  # never happens; shows no second read
    assert [s["shard_id"] for s in store.read_manifest()] == ["s00000", "s00001", "s00002"]
    with pytest.raises(StoreError, match=r"has no manifest\.parquet"):
        RunStore(str(tmp_path / "runs"), "run-1").read_manifest()


def test_events_are_fetched_once_each(tmp_path: Path) -> None:
    store = new_store(tmp_path)
    store.log_event("note", "first")
    (first,) = store.events()
    Path(store.path("events")).joinpath("zz-not-json.txt").write_text("ignored")
    store.log_event("note", "second")
    again = store.events()
    assert [e["message"] for e in again] == ["first", "second"]
    assert again[0] is first  # from this object's memory, not a second GET
    assert [e["message"] for e in store.events(limit=1)] == ["second"]
