"""OpenAI Batch API output: the files OpenAI's and Together's batch APIs return.

``skybatch results RUN --export out.jsonl --format openai-batch`` writes two JSONL files
from a finished run so a user who moved a batch file over gets back what they expect:

* the output file, one line per completed request::

    {"id": "batch_req_…", "custom_id": "request-1",
     "response": {"status_code": 200, "request_id": "…",
                  "body": {"id": "chatcmpl-…", "object": "chat.completion", "created": …,
                           "model": "…", "choices": [{"index": 0, "message":
                           {"role": "assistant", "content": "…"}, "finish_reason": "stop"}],
                           "usage": {"prompt_tokens": …, "completion_tokens": …,
                                     "total_tokens": …}}},
     "error": null}

* the errors file, one line per dead row::

    {"id": "batch_req_…", "custom_id": "request-7", "response": null,
     "error": {"code": "context_length_exceeded", "message": "prompt too long: …"}}

Every ``custom_id`` is written exactly once across the two files (a repeat is refused:
the run store's exactly-once contract makes one a bug worth stopping for). Ids are derived
from the run id and ``custom_id``, so exporting the same run twice writes the same files.
Rows stream through; memory grows only with the set of ids seen. Nothing caps the number
of requests.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import fsspec

from scheduler.engines import INVALID_REQUEST, PROMPT_TOO_LONG
from scheduler.errors import StoreError

__all__ = ["BatchExport", "default_errors_path", "error_code", "write_openai_batch"]


@dataclass(frozen=True)
class BatchExport:
    """What :func:`write_openai_batch` wrote."""

    output_path: str
    errors_path: str
    completed: int
    failed: int


def default_errors_path(output_path: str) -> str:
    """``out.jsonl`` → ``out.errors.jsonl`` (beside the output file)."""
    stem, dot, ext = output_path.rpartition(".")
    if dot and "/" not in ext:
        return f"{stem}.errors.{ext}"
    return f"{output_path}.errors.jsonl"


def error_code(reason: str, stage: str | None = None) -> str:
    """The OpenAI-style error code of a dead row, from its reason and the worker's stage.

    A row the input reader rejected (bad JSON, no body) is the request's fault, like one
    the engine found invalid; a prompt too long for the model is its own code; anything
    else (an engine crash, a poisoned shard) is ours: ``server_error``.
    """
    if reason.startswith(PROMPT_TOO_LONG):
        return "context_length_exceeded"
    if stage == "input" or reason.startswith(INVALID_REQUEST):
        return "invalid_request"
    return "server_error"


def write_openai_batch(
    outputs: Iterable[Mapping[str, Any]],
    dead: Iterable[Mapping[str, Any]],
    *,
    output_path: str | Path,
    errors_path: str | Path | None = None,
    model: str,
    run_id: str = "",
    id_column: str = "id",
    created: int | None = None,
) -> BatchExport:
    """Write the OpenAI Batch output file and errors file of one run.

    ``outputs`` are committed output rows (``id_column`` plus ``completion``,
    ``prompt_tokens``, ``completion_tokens``, ``finish_reason``); ``dead`` are dead rows
    (``id_column``, the failure under ``reason`` or ``error``, the worker's ``stage``, and
    an optional ``code`` that wins over the one derived by :func:`error_code`).
    ``model`` is the model that ran (recorded in every response body); ``created`` (Unix
    seconds) defaults to now. Paths may be local or fsspec URLs.
    """
    out_path = str(output_path)
    err_path = str(errors_path) if errors_path is not None else default_errors_path(out_path)
    stamp = int(time.time()) if created is None else created
    seen: set[str] = set()
    completed = failed = 0

    def claim(row: Mapping[str, Any], where: str) -> str:
        if id_column not in row or row[id_column] is None:
            raise StoreError(f"{where} row has no {id_column!r} column; cannot name its custom_id")
        custom_id = str(row[id_column])
        if custom_id in seen:
            raise StoreError(
                f"custom_id {custom_id!r} appears twice in run {run_id or '?'}; "
                "its outputs are not exactly-once, so the export stopped (the files are incomplete)"
            )
        seen.add(custom_id)
        return custom_id

    with fsspec.open(out_path, "w", encoding="utf-8") as out:
        for row in outputs:
            custom_id = claim(row, "an output")
            out.write(_dumps(_response_line(row, custom_id, model, run_id, stamp)))
            completed += 1
    with fsspec.open(err_path, "w", encoding="utf-8") as err:
        for row in dead:
            custom_id = claim(row, "a dead")
            err.write(_dumps(_error_line(row, custom_id, run_id)))
            failed += 1
    return BatchExport(out_path, err_path, completed, failed)


def _dumps(obj: dict[str, Any]) -> str:
    line = json.dumps(obj, ensure_ascii=False, separators=(",", ":")) + "\n"
    try:
        line.encode("utf-8")
    except UnicodeEncodeError:
        # A lone surrogate (a dead row's id, say) has no UTF-8 form: escape it as JSON does.
        line = json.dumps(obj, separators=(",", ":")) + "\n"
    return line


def _ident(prefix: str, run_id: str, custom_id: str) -> str:
    digest = hashlib.sha256(f"{run_id}\x00{custom_id}".encode()).hexdigest()[:24]
    return f"{prefix}{digest}"


def _response_line(
    row: Mapping[str, Any], custom_id: str, model: str, run_id: str, created: int
) -> dict[str, Any]:
    prompt_tokens = int(row.get("prompt_tokens") or 0)
    completion_tokens = int(row.get("completion_tokens") or 0)
    body = {
        "id": _ident("chatcmpl-", run_id, custom_id),
        "object": "chat.completion",
        "created": created,
        "model": model,
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": str(row.get("completion") or "")},
                "logprobs": None,
                "finish_reason": str(row.get("finish_reason") or "stop"),
            }
        ],
        "usage": {
            "prompt_tokens": prompt_tokens,
            "completion_tokens": completion_tokens,
            "total_tokens": prompt_tokens + completion_tokens,
        },
    }
    return {
        "id": _ident("batch_req_", run_id, custom_id),
        "custom_id": custom_id,
        "response": {
            "status_code": 200,
            "request_id": _ident("req_", run_id, custom_id),
            "body": body,
        },
        "error": None,
    }


def _error_line(row: Mapping[str, Any], custom_id: str, run_id: str) -> dict[str, Any]:
    message = str(row.get("reason") or row.get("error") or "the request failed")
    stage = row.get("stage")
    code = str(row.get("code") or error_code(message, str(stage) if stage else None))
    return {
        "id": _ident("batch_req_", run_id, custom_id),
        "custom_id": custom_id,
        "response": None,
        "error": {"code": code, "message": message},
    }
