"""Reading a run's committed outputs: DuckDB over them, and exports.

Modules: ``_duckdb`` (the ``results`` view, SQL, Parquet/JSONL export) and ``_openai``
(OpenAI Batch API output and error files). Import from here.
"""

from __future__ import annotations

from scheduler.results._duckdb import (
    connect_results,
    export_results,
    query_results,
)
from scheduler.results._openai import (
    BatchExport,
    default_errors_path,
    error_code,
    write_openai_batch,
)

__all__ = [
    "BatchExport",
    "connect_results",
    "default_errors_path",
    "error_code",
    "export_results",
    "query_results",
    "write_openai_batch",
]
