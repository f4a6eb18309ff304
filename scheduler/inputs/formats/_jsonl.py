"""JSON Lines: one JSON object per line."""

from __future__ import annotations

from scheduler.inputs._types import Row
from scheduler.inputs.formats._base import FileCtx, FormatReader, json_object, row_from_mapping

__all__ = ["JsonlReader"]


class JsonlReader(FormatReader):
    """JSONL: one object per line; the text and id come from the recipe's columns."""

    name = "jsonl"

    def parse(
        self, ctx: FileCtx, header: list[str], line_no: int, record: bytes
    ) -> tuple[str | None, Row | str]:
        """One record: ``(id or None, row)`` or ``(id or None, reason it is dead)``."""
        obj = json_object(record, line_no)
        if isinstance(obj, str):
            return None, obj
        row_id, got = row_from_mapping(obj, ctx.spec)
        if isinstance(got, str):
            return row_id, f"{got} at line {line_no + 1}"
        return row_id, got
