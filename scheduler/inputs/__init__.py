"""The input side of a run: find the files, fingerprint them, cut them into shards, read rows.

Modules: ``_input`` (discovery, fingerprint, sharding: :func:`open_input`), ``_types`` (files,
shards, rows, dead rows), ``_lines`` (the streamed line index for JSONL and CSV) and
``formats/`` (one reader per format, with the registry). Import from here.
"""

from __future__ import annotations

from scheduler.inputs._input import (
    Input,
    format_of,
    open_input,
)
from scheduler.inputs._lines import (
    CHUNK_BYTES,
    iter_lines,
    iter_records,
    scan,
)
from scheduler.inputs._types import (
    DeadRow,
    InputFile,
    Row,
    ShardSpec,
)

__all__ = [
    "CHUNK_BYTES",
    "DeadRow",
    "Input",
    "InputFile",
    "Row",
    "ShardSpec",
    "format_of",
    "iter_lines",
    "iter_records",
    "open_input",
    "scan",
]
