"""The engine contract: a batch of rows in, one result per row out, in order.

An engine is built once per worker (loading the model is the expensive part) and then
called many times. The worker owns batching, retries and dead-lettering; an engine only
has to be honest about failures:

* raise from :meth:`Engine.infer` when the whole batch failed (the worker retries the
  batch row by row to find the culprit);
* return a :class:`RowFailure` in place of a result when one row is invalid (a prompt
  longer than the model allows, an empty text): that row is dead-lettered with the reason
  and never retried;
* raise an out-of-memory error (``torch.cuda.OutOfMemoryError`` or ``MemoryError``): the
  worker halves the batch and retries the same rows (see :func:`is_out_of_memory`).

Optional attribute: ``length_sorted = True`` asks the worker to cut each shard into batches
in order of text length (results still come back in input order), which saves padding for
engines that pad a batch to its longest row (torch does).

Rows are plain dicts: ``id`` (str, the stable row id), ``text`` (str, from the recipe's
text column) and every other input column under its own name. Results are plain dicts of
JSON/Arrow-friendly values (lists of floats, str, int, float, bool).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

__all__ = ["Engine", "Result", "Row", "RowFailure", "is_out_of_memory"]

Row = dict[str, Any]


@dataclass(frozen=True)
class RowFailure:
    """Stands in for the result of one row that cannot be processed, with the reason."""

    reason: str


Result = dict[str, Any] | RowFailure


@runtime_checkable
class Engine(Protocol):
    """Turns a batch of rows into a batch of results.

    ``whole_shard`` engines (vLLM) get every row of a shard in one call so continuous
    batching keeps the accelerator full; the others get ``model.batch_size`` rows at a time.
    """

    whole_shard: bool

    def infer(self, rows: list[Row]) -> list[Result]:
        """One result (or :class:`RowFailure`) per row, in the order of ``rows``."""
        ...

    def describe(self) -> dict[str, Any]:
        """What ran: ``engine``, ``model``, ``revision``, ``device``, ``accelerator``."""
        ...

    def close(self) -> None:
        """Free the model (called once when the worker stops)."""
        ...


def is_out_of_memory(exc: BaseException) -> bool:
    """True for the out-of-memory errors of CPU and GPU runtimes, without importing torch."""
    if isinstance(exc, MemoryError):
        return True
    name = type(exc).__name__
    return name == "OutOfMemoryError" or "out of memory" in str(exc).lower()
