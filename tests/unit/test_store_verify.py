"""Verified reads (issue 13, finding 1 and 2): nothing a commit marker does not vouch for is
served. Real runs (the worker with a fake engine at the engine seam), then real damage to
the committed files: a flipped byte, a copy of another shard's output, a deletion, a
truncation, a lost dead-row file, a marker whose ids digest lies."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from scheduler.errors import StoreError
from scheduler.results import export_results, query_results
from scheduler.store import RunStore, quarantine, read_status, verify_run
from tests.unit.test_worker import FakeEngine, _run, _work


def _done_run(tmp_path: Path, *, reject: set[str] = frozenset()) -> RunStore:
    store = _run(tmp_path, rows=60, rows_per_shard=20)
    _work(store, FakeEngine(reject=set(reject)))
    assert len(store.done_shards()) == 3
    return store


def _resume(tmp_path: Path, store: RunStore) -> RunStore:
    """Prepare the same run again, as `skybatch run` does on a resume."""
    from scheduler.recipe import recipe_from_dict
    from scheduler.runs import prepare_run

    recipe = recipe_from_dict(store.read_run_info()["recipe"], source=str(tmp_path / "w.yaml"))
    return prepare_run(recipe, store_url=store.url, run_id=store.run_id)


def _out(store: RunStore, shard: str) -> Path:
    marker = store.read_marker(shard)
    assert marker is not None
    return Path(store.path(marker.out_file))


def _flip_byte(path: Path) -> None:
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x01
    path.write_bytes(bytes(data))


def test_a_flipped_byte_is_never_served(tmp_path: Path) -> None:
    store = _done_run(tmp_path)
    _flip_byte(_out(store, "00001"))
    fresh = RunStore(store.url, store.run_id)
    with pytest.raises(StoreError, match=r"shard 00001: out/00001\.\S+\.parquet: content differs"):
        query_results(fresh, "select count(*) from results")
    with pytest.raises(StoreError, match="shard 00001"):
        export_results(fresh, str(tmp_path / "x.parquet"))
    assert not (tmp_path / "x.parquet").exists()
    with pytest.raises(StoreError, match="shard 00001"):
        fresh.read_output(fresh.markers()["00001"])


def test_another_shards_output_copied_over_is_never_served(tmp_path: Path) -> None:
    store = _done_run(tmp_path)
    shutil.copyfile(_out(store, "00000"), _out(store, "00002"))
    with pytest.raises(StoreError, match=r"shard 00002: out/00002\.\S+: (size|content)"):
        query_results(RunStore(store.url, store.run_id), "select * from results")


@pytest.mark.parametrize(
    ("damage", "what"), [("delete", "missing"), ("truncate", r"size \d+ bytes, marker says")]
)
def test_a_lost_output_fails_results_and_resume_with_exit_3(
    tmp_path: Path, damage: str, what: str
) -> None:
    store = _done_run(tmp_path)
    path = _out(store, "00000")
    if damage == "delete":
        path.unlink()
    else:
        path.write_bytes(path.read_bytes()[:100])
    with pytest.raises(StoreError, match=f"shard 00000: out/00000.*: {what}") as info:
        query_results(RunStore(store.url, store.run_id), "select 1")
    assert info.value.exit_code == 3
    # Resume (the same run prepared again) refuses instead of skipping a shard it cannot
    # serve, and says how to get out.
    with pytest.raises(StoreError, match=r"resume of .*shard 00000.*verify .* --repair"):
        _resume(tmp_path, store)


def test_a_deleted_dead_row_file_is_an_error_not_an_empty_list(tmp_path: Path) -> None:
    store = _done_run(tmp_path, reject={"r003", "r004"})
    marker = store.markers()["00000"]
    assert marker.dead_file and marker.dead_size and marker.rows_dead == 2
    Path(store.path(marker.dead_file)).unlink()
    with pytest.raises(StoreError, match=r"shard 00000: dead/00000\.\S+\.jsonl: missing"):
        store.read_dead(marker)
    with pytest.raises(StoreError, match="shard 00000"):
        export_results(store, str(tmp_path / "o.jsonl"), fmt="openai-batch")
    assert verify_run(store).problems[0].what == "missing"


def test_an_edited_dead_row_file_is_caught(tmp_path: Path) -> None:
    store = _done_run(tmp_path, reject={"r003"})
    marker = store.markers()["00000"]
    assert marker.dead_file
    path = Path(store.path(marker.dead_file))
    path.write_text(path.read_text().replace("r003", "r999"))  # same size
    with pytest.raises(StoreError, match="content differs"):
        store.read_dead(marker)


def test_verify_checks_the_ids_digest(tmp_path: Path) -> None:
    store = _done_run(tmp_path)
    assert verify_run(store).ok
    marker_path = Path(store.path("done/00001.json"))
    doc = json.loads(marker_path.read_text())
    doc["ids_digest"] = "0" * 32  # files intact, marker's ids wrong
    marker_path.write_text(json.dumps(doc))
    report = verify_run(RunStore(store.url, store.run_id))
    assert [(p.shard_id, p.what) for p in report.problems] == [
        ("00001", "row ids differ from the marker")
    ]


def test_repair_quarantines_and_a_resume_reconciles_exactly(tmp_path: Path) -> None:
    store = _done_run(tmp_path, reject={"r030"})
    _flip_byte(_out(store, "00001"))
    Path(store.path(store.markers()["00002"].out_file)).unlink()
    report = verify_run(store)
    assert {p.shard_id for p in report.problems} == {"00001", "00002"}
    quarantine(store, report)
    assert report.quarantined == ["00001", "00002"]
    assert sorted(
        p.name.split(".")[0] for p in (tmp_path / "runs" / store.run_id).glob("quarantine/*.json")
    ) == ["00001", "00002"]
    assert any(e["kind"] == "shard_quarantined" for e in store.events())
    resumed = _resume(tmp_path, store)  # the check passes now
    assert read_status(resumed).shards_done == 1
    _work(resumed, FakeEngine(reject={"r030"}), worker_id="w1")
    fresh = RunStore(store.url, store.run_id)
    assert verify_run(fresh).ok
    _, rows = query_results(fresh, "select id from results order by id")
    assert [r[0] for r in rows] == [f"r{i:03d}" for i in range(60) if i != 30]
    status = read_status(fresh)
    assert (status.rows_out, status.rows_dead, status.state.value) == (59, 1, "failed")


def test_the_verify_command(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from scheduler.cli import _register, cli
    from scheduler.cli._edge import run_edge

    _register()
    store = _done_run(tmp_path)
    args = ["verify", store.run_id, "--store", store.url]
    assert run_edge(cli, args) == 0
    assert "3 committed shard(s) verified" in capsys.readouterr().out
    _flip_byte(_out(store, "00000"))
    assert run_edge(cli, [*args, "--json"]) == 3
    doc = json.loads(capsys.readouterr().out)  # one object: the report
    assert doc["ok"] is False and doc["problems"][0]["shard"] == "00000"
    assert run_edge(cli, args) == 3
    err = capsys.readouterr().err
    assert "✘ shard 00000: out/00000." in err and "content differs" in err
    assert "1 of 3 committed shard(s) do not match their markers" in err and "--repair" in err
    assert run_edge(cli, ["results", store.run_id, "--store", store.url]) == 3
    assert "content differs" in capsys.readouterr().err
    assert run_edge(cli, [*args, "--repair"]) == 0
    assert "1 shard(s) quarantined" in capsys.readouterr().out
    assert run_edge(cli, args) == 0  # two shards left, both good
    assert run_edge(cli, ["results", store.run_id, "--store", store.url]) == 0
