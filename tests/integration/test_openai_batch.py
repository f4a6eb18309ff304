"""An OpenAI Batch API file, with malformed requests, runs to OpenAI-format output files.

``skybatch run`` reads the batch file (``input.format: openai-batch``), local workers
generate with the tiny random model shipped in ``recipes/models/tiny-lm`` (real transformers
generation on CPU), and ``skybatch results RUN --export out.jsonl --format openai-batch``
writes the output file and the errors file. Every ``custom_id`` appears exactly once
across the two, each failure with the error code its kind deserves.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from scheduler.cli import main

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[2]
TINY_LM = REPO / "recipes" / "models" / "tiny-lm"
REQUESTS = 240


@pytest.fixture(autouse=True)
def _offline(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")  # workers inherit it: nothing is downloaded


def request(n: int, **body: Any) -> dict[str, Any]:
    return {
        "custom_id": f"req-{n:04d}",
        "method": "POST",
        "url": "/v1/chat/completions",
        "body": {
            "model": "gpt-4o-mini",
            "messages": [
                {"role": "system", "content": "Answer in one word."},
                {"role": "user", "content": f"Is order {n} late?"},
            ],
            "max_tokens": 4 + n % 3,
            **body,
        },
    }


def write_batch(path: Path) -> tuple[set[str], dict[str, str]]:
    """A batch file of REQUESTS lines; returns the good ids and {bad id: expected code}."""
    lines: list[str] = []
    bad: dict[str, str] = {}
    for n in range(REQUESTS):
        req = request(n)
        cid = req["custom_id"]
        kind = n % 20
        if kind == 3:  # no body at all: the input reader rejects it
            del req["body"]
            bad[cid] = "invalid_request"
        elif kind == 5:  # an empty message list: the input reader rejects it
            req["body"]["messages"] = []
            bad[cid] = "invalid_request"
        elif kind == 7:  # a role OpenAI would refuse: the engine rejects it
            req["body"]["messages"][0]["role"] = "narrator"
            bad[cid] = "invalid_request"
        elif kind == 11:  # a negative max_tokens
            req["body"]["max_tokens"] = -3
            bad[cid] = "invalid_request"
        elif kind == 13:  # an endpoint skybatch does not serve
            req["url"] = "/v1/embeddings"
            bad[cid] = "invalid_request"
        elif kind == 17:  # longer than the model's 512 positions
            req["body"]["messages"][1]["content"] = "late order " * 400
            bad[cid] = "context_length_exceeded"
        line = json.dumps(req)
        if kind == 19:  # a truncated line: not JSON, so no custom_id can be read from it
            line = line[: len(line) // 2]
            bad[f"batch.jsonl:{n}"] = "invalid_request"
        lines.append(line)
    path.write_text("\n".join(lines) + "\n")
    good = {f"req-{n:04d}" for n in range(REQUESTS)} - set(bad)
    good -= {f"req-{n:04d}" for n in range(REQUESTS) if n % 20 == 19}
    return good, bad


def run_json(argv: list[str], capsys: pytest.CaptureFixture[str]) -> dict[str, Any]:
    try:
        main([*argv, "--json"])
    except SystemExit as exc:  # a failed command exits; a successful one returns
        raise AssertionError(f"exit {exc.code}: {capsys.readouterr().err}") from exc
    captured = capsys.readouterr()
    out: dict[str, Any] = json.loads(captured.out)
    return out


def test_batch_file_runs_to_output_and_errors_files(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    batch = tmp_path / "batch.jsonl"
    good, bad = write_batch(batch)
    assert len(good) + len(bad) == REQUESTS and len(bad) >= 60
    recipe = tmp_path / "openai.yaml"
    recipe.write_text(
        f"""\
name: openai-test
input: {{path: {batch}, format: openai-batch}}
task: generate
model: {{engine: torch, name: {TINY_LM}, batch_size: 32, options: {{device: cpu}}}}
sampling: {{temperature: 0.0, max_tokens: 8}}
shards: {{rows_per_shard: 80}}
limits: {{max_error_rate: 0.5, retries: 1}}
"""
    )
    store = tmp_path / "runs"
    summary = run_json(["run", str(recipe), "--store", str(store), "--no-progress"], capsys)
    assert summary["state"] == "done"
    assert summary["rows_in"] == REQUESTS == summary["rows_out"] + summary["rows_dead"]
    assert (summary["rows_out"], summary["rows_dead"]) == (len(good), len(bad))

    out = tmp_path / "out.jsonl"
    export = run_json(
        ["results", summary["run_id"], "--store", str(store), "--export", str(out),
         "--format", "openai-batch"],
        capsys,
    )  # fmt: skip
    errors = Path(export["errors_path"])
    assert errors == tmp_path / "out.errors.jsonl"
    assert (export["rows"], export["errors"]) == (len(good), len(bad))

    seen: list[str] = []
    for line in out.read_text().splitlines():
        rec = json.loads(line)
        seen.append(rec["custom_id"])
        assert set(rec) == {"id", "custom_id", "response", "error"}
        assert rec["id"].startswith("batch_req_") and rec["error"] is None
        response = rec["response"]
        assert response["status_code"] == 200 and response["request_id"].startswith("req_")
        body = response["body"]
        assert body["object"] == "chat.completion" and body["model"].endswith("tiny-lm")
        assert isinstance(body["created"], int)
        [choice] = body["choices"]
        assert choice["index"] == 0 and choice["message"]["role"] == "assistant"
        assert isinstance(choice["message"]["content"], str)
        assert choice["finish_reason"] in ("stop", "length")
        usage = body["usage"]
        n = int(rec["custom_id"].removeprefix("req-"))
        assert 1 <= usage["completion_tokens"] <= 4 + n % 3  # the request's own max_tokens
        assert usage["prompt_tokens"] > 0
        assert usage["total_tokens"] == usage["prompt_tokens"] + usage["completion_tokens"]
    codes: dict[str, str] = {}
    for line in errors.read_text().splitlines():
        rec = json.loads(line)
        seen.append(rec["custom_id"])
        assert rec["response"] is None and rec["id"].startswith("batch_req_")
        assert rec["error"]["message"]
        codes[rec["custom_id"]] = rec["error"]["code"]

    # Every custom_id exactly once across the two files, and each failure with its code.
    assert len(seen) == len(set(seen)) == REQUESTS
    assert set(seen) == good | set(bad)
    assert codes == bad


def test_duplicate_custom_id_is_an_input_error_naming_the_lines(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    batch = tmp_path / "dup.jsonl"
    reqs = [request(1), request(2), request(1)]
    batch.write_text("".join(json.dumps(r) + "\n" for r in reqs))
    recipe = tmp_path / "dup.yaml"
    recipe.write_text(
        f"name: dup\ninput: {{path: {batch}, format: openai-batch}}\ntask: generate\n"
        f"model: {{engine: torch, name: {TINY_LM}}}\n"
    )
    with pytest.raises(SystemExit) as exc:
        main(["run", str(recipe), "--store", str(tmp_path / "runs"), "--json"])
    assert exc.value.code == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1
    assert "duplicate custom_id 'req-0001'" in err
    assert f"{batch} line 1 and {batch} line 3" in err
