"""OpenAI Batch API request files: JSONL whose row id is ``custom_id``."""

from __future__ import annotations

from typing import Any

from scheduler.inputs._index import RowMarks
from scheduler.inputs._lines import LineScanner, ScanningReader, iter_lines, iter_records
from scheduler.inputs._types import Row
from scheduler.inputs.formats._base import FileCount, FileCtx, FormatReader, json_object

__all__ = ["OpenAIBatchReader"]


class OpenAIBatchReader(FormatReader):
    """JSONL of OpenAI Batch API requests; the row id is ``custom_id``."""

    name = "openai-batch"

    def count(self, ctx: FileCtx, marks: RowMarks) -> FileCount:
        # Every line is parsed (batch files are at most a few hundred MB) so that a repeated
        # custom_id is caught before any work starts; the same bytes feed the row marks.
        result = FileCount(rows=0, marks=marks)
        scanner = LineScanner(quoted=False, marks=marks)
        with ctx.open(stream=True) as fh:
            lines = iter_lines(ScanningReader(fh, scanner), start=0, end=None)
            for line_no, record in iter_records(lines, quoted=False):
                result.rows += 1
                obj = json_object(record, line_no)
                if isinstance(obj, dict) and isinstance(obj.get("custom_id"), str):
                    result.custom_ids.append((obj["custom_id"], line_no + 1))
        scanner.finish()
        return result

    def parse(
        self, ctx: FileCtx, header: list[str], line_no: int, record: bytes
    ) -> tuple[str | None, Row | str]:
        obj = json_object(record, line_no)
        if isinstance(obj, str):
            return None, obj
        where = f"at line {line_no + 1}"
        custom_id = obj.get("custom_id")
        if not isinstance(custom_id, str) or not custom_id:
            return None, f"missing custom_id {where}"
        body = obj.get("body")
        if not isinstance(body, dict):
            return custom_id, f"missing body {where}"
        messages = body.get("messages")
        if not isinstance(messages, list) or not messages:
            return custom_id, f"missing body.messages {where}"
        return custom_id, {
            "id": custom_id,
            "text": _last_user_text(messages),
            "body": body,
            "method": obj.get("method", "POST"),
            "url": obj.get("url", "/v1/chat/completions"),
        }


def _last_user_text(messages: list[Any]) -> str:
    """The last user message as plain text (text parts of a multi-part content joined)."""
    for message in reversed(messages):
        if not isinstance(message, dict) or message.get("role") != "user":
            continue
        content = message.get("content")
        if isinstance(content, str):
            return content
        if isinstance(content, list):
            parts = [
                p["text"]
                for p in content
                if isinstance(p, dict)
                and p.get("type") == "text"
                and isinstance(p.get("text"), str)
            ]
            return "\n".join(parts)
        return ""
    return ""
