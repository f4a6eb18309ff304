"""The OpenAI Batch output writer: line shapes, error codes, exactly-once custom_ids."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from scheduler.errors import StoreError
from scheduler.results import default_errors_path, error_code, write_openai_batch

OUT = [
    {
        "id": "a",
        "completion": "yes",
        "prompt_tokens": 12,
        "completion_tokens": 2,
        "finish_reason": "stop",
    },
    {
        "id": "b",
        "completion": "no",
        "prompt_tokens": 7,
        "completion_tokens": 5,
        "finish_reason": "length",
    },
]
DEAD = [
    {"id": "c", "stage": "engine", "reason": "prompt too long: 900 prompt tokens + 10 ..."},
    {"id": "d", "stage": "engine", "reason": "invalid request: body.n must be 1"},
    {"id": "e", "stage": "input", "reason": "missing body at line 5"},
    {"id": "f", "stage": "shard", "reason": "shard failed 3 attempts; last error: boom"},
    {"id": "g", "stage": "engine", "reason": "anything", "code": "rate_limited"},
]


def read(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_output_and_error_lines_have_the_openai_shape(tmp_path: Path) -> None:
    out, err = tmp_path / "out.jsonl", tmp_path / "out.errors.jsonl"
    wrote = write_openai_batch(
        OUT, DEAD, output_path=out, model="org/model", run_id="run-1", created=1_700_000_000
    )
    assert (wrote.completed, wrote.failed, wrote.errors_path) == (2, 5, str(err))
    first = read(out)[0]
    assert first["id"].startswith("batch_req_")
    assert first == {
        "id": first["id"],
        "custom_id": "a",
        "response": {
            "status_code": 200,
            "request_id": first["response"]["request_id"],
            "body": {
                "id": first["response"]["body"]["id"],
                "object": "chat.completion",
                "created": 1_700_000_000,
                "model": "org/model",
                "choices": [
                    {
                        "index": 0,
                        "message": {"role": "assistant", "content": "yes"},
                        "logprobs": None,
                        "finish_reason": "stop",
                    }
                ],
                "usage": {"prompt_tokens": 12, "completion_tokens": 2, "total_tokens": 14},
            },
        },
        "error": None,
    }
    errors = read(err)
    assert [(e["custom_id"], e["error"]["code"]) for e in errors] == [
        ("c", "context_length_exceeded"),
        ("d", "invalid_request"),
        ("e", "invalid_request"),
        ("f", "server_error"),
        ("g", "rate_limited"),
    ]
    assert all(e["response"] is None and e["id"].startswith("batch_req_") for e in errors)
    assert errors[1]["error"]["message"] == "invalid request: body.n must be 1"


def test_export_is_deterministic_for_the_same_run(tmp_path: Path) -> None:
    for name in ("one", "two"):
        write_openai_batch(
            OUT, DEAD, output_path=tmp_path / f"{name}.jsonl", model="m", run_id="r", created=1
        )
    assert (tmp_path / "one.jsonl").read_text() == (tmp_path / "two.jsonl").read_text()
    assert (tmp_path / "one.errors.jsonl").read_text() == (
        tmp_path / "two.errors.jsonl"
    ).read_text()


def test_a_custom_id_twice_stops_the_export(tmp_path: Path) -> None:
    with pytest.raises(StoreError, match=r"custom_id 'a' appears twice in run r"):
        write_openai_batch(
            OUT,
            [{"id": "a", "reason": "x"}],
            output_path=tmp_path / "o.jsonl",
            model="m",
            run_id="r",
        )


def test_custom_id_column_and_streaming_many_rows(tmp_path: Path) -> None:
    rows = (
        {"custom_id": f"r{i}", "completion": "", "finish_reason": "length"} for i in range(20_000)
    )
    wrote = write_openai_batch(
        rows, iter(()), output_path=tmp_path / "big.jsonl", model="m", id_column="custom_id"
    )
    assert wrote.completed == 20_000 and wrote.failed == 0
    assert (tmp_path / "big.errors.jsonl").read_text() == ""


def test_helpers() -> None:
    assert default_errors_path("out.jsonl") == "out.errors.jsonl"
    assert default_errors_path("s3://b/x/out.jsonl") == "s3://b/x/out.errors.jsonl"
    assert default_errors_path("dir.v2/out") == "dir.v2/out.errors.jsonl"
    assert error_code("prompt too long: ...", "engine") == "context_length_exceeded"
    assert error_code("whatever", None) == "server_error"
