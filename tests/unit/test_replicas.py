"""Engine replicas on one multi-GPU worker: GPU slices, flags and the processes started."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from scheduler.backends.replicas import (
    TP_ENV,
    gpu_slices,
    replica_argv,
    replica_flags,
    run_replicas,
    split_replica_flags,
)
from scheduler.errors import UsageError
from scheduler.store import LaunchOption


def test_slices_are_consecutive_groups_of_tp_devices() -> None:
    assert gpu_slices(8, 1) == [str(i) for i in range(8)]
    assert gpu_slices(4, 2) == ["0,1", "2,3", "4,5", "6,7"]
    assert gpu_slices(1, 8) == ["0,1,2,3,4,5,6,7"]
    # The machine's own visible devices are sliced, never devices outside them.
    assert gpu_slices(2, 2, "4,5,6,7") == ["4,5", "6,7"]
    assert gpu_slices(2, 1, "3, 1,7") == ["3", "1"]


def test_too_few_devices_or_zero_is_one_clear_error() -> None:
    with pytest.raises(UsageError, match=r"4 replicas of 2 GPUs need 8 GPUs, but .* shows 4"):
        gpu_slices(4, 2, "0,1,2,3")
    with pytest.raises(UsageError, match="both must be at least 1"):
        gpu_slices(0, 2)


def test_flags_follow_the_plan_option() -> None:
    assert replica_flags(LaunchOption("L4", gpus_per_worker=1)) == []
    option = LaunchOption("H100", gpus_per_worker=8, tensor_parallel_size=2, replicas_per_worker=4)
    assert replica_flags(option) == ["--replicas", "4", "--tensor-parallel-size", "2"]
    # An option from before replicas existed: one engine over all its GPUs.
    assert replica_flags(
        LaunchOption.from_json({"accelerator": "H100", "accelerators_per_worker": 2})
    ) == [
        "--replicas",
        "1",
        "--tensor-parallel-size",
        "2",
    ]


def test_split_takes_the_flags_off_in_both_spellings() -> None:
    s = split_replica_flags(["--store", "s3://b", "--replicas", "4", "--tensor-parallel-size=2"])
    assert (s.replicas, s.tp, s.rest) == (4, 2, ("--store", "s3://b"))
    plain = split_replica_flags(["--store", "s3://b"])
    assert (plain.replicas, plain.tp) == (1, 1)
    with pytest.raises(UsageError, match=r"--replicas 'x': expected a whole number"):
        split_replica_flags(["--replicas", "x"])
    with pytest.raises(UsageError, match=r"--tensor-parallel-size '0'"):
        split_replica_flags(["--tensor-parallel-size", "0"])


def test_each_replica_is_its_own_worker_paying_its_share() -> None:
    rest = ["--worker-id", "w3", "--prices", '{"aws/us-east-1":16.0}', "--spot"]
    out = replica_argv(rest, index=2, replicas=8)
    assert out[:2] == ["--worker-id", "w3-r2"]
    assert json.loads(out[3]) == {"aws/us-east-1": 2.0}
    assert out[4] == "--spot"


def test_run_replicas_starts_one_process_per_slice_and_returns_the_first_failure(
    tmp_path: Path,
) -> None:
    tmp_path = tmp_path / "seen"
    tmp_path.mkdir()
    script = (
        "import json, os, sys; i = sys.argv[sys.argv.index('--worker-id') + 1];"
        f"open(os.path.join({str(tmp_path)!r}, i), 'w').write(json.dumps("
        f"[os.environ['CUDA_VISIBLE_DEVICES'], os.environ[{TP_ENV!r}]]));"
        "sys.exit(3 if i.endswith('-r1') else 0)"
    )
    split = split_replica_flags(
        ["--worker-id", "w0", "--replicas", "2", "--tensor-parallel-size", "2"]
    )
    code = run_replicas(
        split, command=[sys.executable, "-c", script], env={"CUDA_VISIBLE_DEVICES": "4,5,6,7"}
    )
    assert code == 3
    seen = {p.name: json.loads(p.read_text()) for p in tmp_path.iterdir()}
    assert seen == {"w0-r0": ["4,5", "2"], "w0-r1": ["6,7", "2"]}


def test_the_entry_point_says_in_one_line_when_the_replicas_do_not_fit(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from scheduler.backends.skypilot import _entry
    from scheduler.worker import EXIT_ENGINE

    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "0,1")
    argv = ["worker", "--store", "s3://b/r", "--replicas", "4", "--tensor-parallel-size", "2"]
    assert _entry.main(argv) == EXIT_ENGINE
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "4 replicas of 2 GPUs need 8 GPUs" in err[0]
    assert _entry.main(["worker", "--replicas", "two"]) == EXIT_ENGINE
    assert "--replicas 'two'" in capsys.readouterr().err
