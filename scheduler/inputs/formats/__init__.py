"""Format readers behind :class:`scheduler.inputs.Input`, one module per format.

The registry lives here, so a reader module imports only :mod:`._base` and nothing imports
back into the package: JSONL (``_jsonl``), OpenAI batch files (``_openai_batch``), CSV
(``_csv``) and Parquet (``_parquet``, which loads pyarrow only when a Parquet input is read).
"""

from __future__ import annotations

from scheduler.inputs.formats._base import (
    SAMPLE_SCAN_LIMIT,
    FileCount,
    FileCtx,
    FileRange,
    FormatReader,
    row_from_mapping,
)

__all__ = [
    "SAMPLE_SCAN_LIMIT",
    "FileCount",
    "FileCtx",
    "FileRange",
    "FormatReader",
    "reader_for",
    "row_from_mapping",
]

_READERS: dict[str, FormatReader] = {}


def reader_for(fmt: str) -> FormatReader:
    """The reader of one format name."""
    if not _READERS:
        from scheduler.inputs.formats._csv import CsvReader
        from scheduler.inputs.formats._jsonl import JsonlReader
        from scheduler.inputs.formats._openai_batch import OpenAIBatchReader
        from scheduler.inputs.formats._parquet import ParquetReader

        for reader in (JsonlReader(), OpenAIBatchReader(), CsvReader(), ParquetReader()):
            _READERS[reader.name] = reader
    return _READERS[fmt]
