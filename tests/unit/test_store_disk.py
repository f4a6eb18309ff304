"""A full disk or a permission denied at the store's file-system seam (issue 13, finding
6): one line naming the path, exit 3, no temporary file left; and orphaned outputs cleaned
on resume. ``tests/integration/test_disk_full.py`` fills a real tmpfs where it can mount
one; here the error is raised by ``os.replace``/``open`` (the seam the store writes
through), so the test runs anywhere."""

from __future__ import annotations

import errno
import os
import time
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest

from scheduler.errors import StoreUnavailable
from scheduler.store import RunStore, clean_orphans
from tests.unit.test_store import TTL, new_store, write_and_mark


@pytest.mark.parametrize(
    ("code", "why"),
    [
        (errno.ENOSPC, "the disk is full"),
        (errno.EACCES, "permission denied"),
        (errno.EROFS, "the file system is read-only"),
    ],
)
def test_a_write_the_disk_refuses_is_one_line_and_leaves_no_temporary_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, code: int, why: str
) -> None:
    store = new_store(tmp_path)
    lease = store.claim("s00000", "w1", ttl_s=TTL)
    assert lease is not None

    def refuse(src: Any, dst: Any) -> None:
        raise OSError(code, os.strerror(code))

    monkeypatch.setattr(os, "replace", refuse)
    with pytest.raises(StoreUnavailable) as info:
        store.write_output(lease, pa.table({"id": ["a"]}))
    message = str(info.value)
    assert f"cannot write {store.path('out/s00000.')}" in message and why in message
    assert "\n" not in message and info.value.exit_code == 3
    assert not list(Path(store.path("")).rglob("*.tmp"))


def test_a_failing_marker_write_leaves_no_temporary_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = new_store(tmp_path)
    lease = store.claim("s00000", "w1", ttl_s=TTL)
    assert lease is not None
    _, marker = write_and_mark(store, lease)
    real_fsync = os.fsync

    def full(fd: int) -> None:
        real_fsync(fd)
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "fsync", full)
    with pytest.raises(StoreUnavailable, match=r"cannot write .*done/s00000\.json: the disk"):
        store.commit(marker)
    assert not list(Path(store.path("done")).glob("*"))


def test_orphans_are_cleaned_but_never_a_file_that_may_still_commit(tmp_path: Path) -> None:
    store = new_store(tmp_path, n=3)
    # s00000: done; a losing attempt's files stay behind.
    won = store.claim("s00000", "w1", ttl_s=TTL)
    assert won is not None
    _, marker = write_and_mark(store, won)
    assert store.commit(marker)
    loser = Path(store.path("out/s00000.1-dead0000beef0000.parquet"))
    loser.write_bytes(b"x")
    # s00001: an attempt that released its lease (it will never commit).
    gave_up = store.claim("s00001", "w1", ttl_s=TTL)
    assert gave_up is not None
    out_released = store.write_output(gave_up, pa.table({"id": ["a"]}))
    store.release(gave_up)
    # s00002: a live (or expired: maybe a zombie) lease; its file may still be committed.
    live = store.claim("s00002", "w2", ttl_s=TTL)
    assert live is not None
    out_live = store.write_output(live, pa.table({"id": ["b"]}))
    # A temporary file a killed process left, long ago; and one being written now.
    old_tmp = Path(store.path("out/s00002.x.parquet.1234.tmp"))
    old_tmp.write_bytes(b"t")
    os.utime(old_tmp, (time.time() - 3600, time.time() - 3600))
    new_tmp = Path(store.path("out/s00002.y.parquet.5678.tmp"))
    new_tmp.write_bytes(b"t")
    assert clean_orphans(RunStore(store.url, store.run_id)) == 3
    assert not loser.exists() and not old_tmp.exists()
    assert not Path(store.path(out_released.path)).exists()
    assert Path(store.path(out_live.path)).exists() and new_tmp.exists()
    assert Path(store.path(marker.out_file)).exists()
