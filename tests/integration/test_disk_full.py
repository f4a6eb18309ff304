"""A full disk (issue 13, finding 6), for real: the store on a tiny tmpfs.

Needs root and a working ``mount`` (skipped otherwise; ``tests/unit/test_store_disk.py``
covers the same seam everywhere). The run must end with one line naming the path, exit
3, no temporary files, the worker's last words on the driver's stderr, ``status`` saying
failed; after space is freed the same command resumes, cleans the orphans and reconciles
exactly.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

FN = """\
import base64, os

def work(rows):
    return [{"blob": base64.b64encode(os.urandom(3000)).decode()} for r in rows]
"""


@pytest.fixture
def tiny_disk(tmp_path: Path) -> Iterator[Path]:
    mnt = tmp_path / "tiny"
    mnt.mkdir()
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root")
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=192k", "tmpfs", str(mnt)], capture_output=True
    )
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.decode().strip()}")
    try:
        yield mnt
    finally:
        subprocess.run(["umount", "-l", str(mnt)], check=False)


def _cli(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "scheduler.cli", *args],
        cwd=cwd, capture_output=True, text=True, timeout=300, env=os.environ.copy(),
    )  # fmt: skip


@pytest.mark.slow
def test_a_full_disk_is_one_line_exit_3_and_the_run_resumes(
    tmp_path: Path, tiny_disk: Path
) -> None:
    (tmp_path / "fn.py").write_text(FN)
    with (tmp_path / "rows.jsonl").open("w") as f:
        for i in range(120):
            f.write(json.dumps({"id": f"r{i:03d}", "text": "t"}) + "\n")
    recipe = tmp_path / "full.yaml"
    recipe.write_text(
        f"name: full\ninput: {{path: {tmp_path / 'rows.jsonl'}, id_column: id}}\n"
        f"task: score\nmodel: {{engine: python, name: '{tmp_path / 'fn.py'}:work', "
        "batch_size: 10}\nshards: {rows_per_shard: 10}\n"
        f"store: {tiny_disk / 'runs'}\n"
    )
    first = _cli(tmp_path, "run", str(recipe), "--no-progress")
    assert first.returncode == 3, first.stderr
    assert "Traceback" not in first.stderr and "internal error" not in first.stderr
    errors = [ln for ln in first.stderr.splitlines() if ln.startswith("skybatch: error:")]
    assert len(errors) == 1 and "the disk is full" in errors[0]
    assert f"cannot write {tiny_disk}/runs/" in errors[0]
    # The worker's own last words reach the driver's stderr (its log is on the full disk).
    assert any(ln.startswith("  ") and "the disk is full" in ln for ln in first.stderr.splitlines())
    assert not list(tiny_disk.rglob("*.tmp"))
    (run_dir,) = [p for p in (tiny_disk / "runs").iterdir() if p.is_dir()]
    status = _cli(tmp_path, "status", run_dir.name, "--store", str(tiny_disk / "runs"), "--json")
    doc = json.loads(status.stdout)
    assert doc["state"] == "failed" and "the disk is full" in doc["failure_reason"], doc
    subprocess.run(["mount", "-o", "remount,size=8m", str(tiny_disk)], check=True)
    again = _cli(tmp_path, "run", str(recipe), "--no-progress", "--json")
    assert again.returncode == 0, again.stderr
    summary = json.loads(again.stdout)
    assert (summary["rows_out"], summary["rows_dead"]) == (120, 0)
    markers = [json.loads(p.read_text()) for p in (run_dir / "done").glob("*.json")]
    named = {m["out_file"] for m in markers}
    assert {f"out/{p.name}" for p in (run_dir / "out").iterdir()} == named  # no orphans
