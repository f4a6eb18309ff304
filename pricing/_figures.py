"""Throughput figures in DuckDB: published reference rows and what benches measured.

The ``throughput`` table holds one row per figure with its kind (``measured``,
``published``, ``estimated``), the conditions (engine, precision, accelerator x count,
input/output tokens) and provenance. The reference rows of ``data/throughput_refs.csv``
are loaded as ``published`` when the database is created; their metrics are converted to
rows/s and tokens/s here (output tokens/s for generation, input tokens/s for encoders),
with the shape parsed from the notes when the columns leave it out.
"""

from __future__ import annotations

import csv
import re
from dataclasses import dataclass
from datetime import datetime, timezone
from importlib import resources
from typing import TYPE_CHECKING

from pricing._models import model_key
from pricing._specs import normalize_accelerator

if TYPE_CHECKING:
    import duckdb

__all__ = [
    "SHORT_SENTENCE_TOKENS",
    "Figure",
    "engine_family",
    "figures_for",
    "published_figures",
    "record_throughput",
    "seed_published",
]

SHORT_SENTENCE_TOKENS = 32  # sbert.net's "short sentences" (length not stated)


@dataclass(frozen=True)
class Figure:
    """One row of the throughput table."""

    model: str
    model_key: str
    engine: str
    task: str
    accelerator: str
    count: int
    precision: str | None
    input_tokens: float | None
    output_tokens: float | None
    rows_per_s: float | None
    tokens_per_s: float | None
    kind: str
    source: str


def engine_family(engine: str) -> str:
    """Coarse engine family of a figure: ``vllm``, ``torch``, ``tensorrt``, ``sglang``,
    ``embed-server`` (TEI, infinity), ``python``; the first word otherwise."""
    low = engine.lower()
    if low.startswith("sentence-transformers"):
        return "torch"  # what the torch engine runs for embeddings
    if "infinity" in low or "tei" in low:
        return "embed-server"
    for family in ("tensorrt", "trt", "sglang", "vllm", "torch", "python"):
        if family in low:
            return "tensorrt" if family == "trt" else family
    return low.split()[0] if low else "unknown"


def _parse_published(r: dict[str, str]) -> Figure | None:
    metric, value = r["metric"], float(r["value"])
    notes = r["notes"]
    i_tok = float(r["input_tokens"]) if r["input_tokens"].strip() else None
    o_tok = float(r["output_tokens"]) if r["output_tokens"].strip() else None
    rows_per_s: float | None = None
    tokens_per_s: float | None = None
    task = "generate"
    if metric == "output_tokens_per_s":
        tokens_per_s = value
        rate = re.search(r"([\d.]+)\s*(?:req/s|samples/s)", notes)
        if o_tok:
            rows_per_s = value / o_tok
        elif rate:
            rows_per_s = float(rate.group(1))
            o_tok = value / rows_per_s
    elif metric == "input_tokens_per_s":
        task = "embed"
        tokens_per_s = value
        per_row = re.search(r"~?([\d,]+) tokens/sentence", notes)
        if per_row:
            i_tok = float(per_row.group(1).replace(",", ""))
            rows_per_s = value / i_tok
        o_tok = 0.0
    elif metric == "sentences_per_s":
        task = "embed"
        rows_per_s = value
        i_tok, o_tok = float(SHORT_SENTENCE_TOKENS), 0.0
        tokens_per_s = value * i_tok
    else:
        # Single-request latency figures say nothing about offline throughput.
        return None
    precision = r["precision"].strip()
    if not re.fullmatch(r"FP8|FP4|BF16|FP16|FP32|INT8|INT4", precision):
        precision = "FP32" if "FP32" in precision else ""
    return Figure(
        model=r["model"],
        model_key=model_key(r["model"]),
        engine=r["engine"],
        task=task,
        accelerator=normalize_accelerator(r["accelerator"]),
        count=int(r["accelerator_count"]),
        precision=precision or None,
        input_tokens=i_tok,
        output_tokens=o_tok,
        rows_per_s=rows_per_s,
        tokens_per_s=tokens_per_s,
        kind="published",
        source=f"{r['source']} ({notes[:120]})",
    )


def published_figures() -> list[Figure]:
    """The shipped reference rows as figures (names normalised)."""
    text = resources.files("pricing").joinpath("data/throughput_refs.csv").read_text("utf-8")
    out = []
    for r in csv.DictReader(text.splitlines()):
        fig = _parse_published(r)
        if fig is not None:
            out.append(fig)
    return out


_COLUMNS = (
    "model", "model_key", "engine", "task", "accelerator", "accelerator_count", "precision",
    "input_tokens", "output_tokens", "rows_per_s", "tokens_per_s", "kind", "source",
    "recorded_at",
)  # fmt: skip


def _row(fig: Figure, when: datetime) -> list[object]:
    return [
        fig.model,
        fig.model_key,
        fig.engine,
        fig.task,
        fig.accelerator,
        fig.count,
        fig.precision,
        fig.input_tokens,
        fig.output_tokens,
        fig.rows_per_s,
        fig.tokens_per_s,
        fig.kind,
        fig.source,
        when.replace(tzinfo=None),
    ]


def _insert(con: duckdb.DuckDBPyConnection, fig: Figure, when: datetime) -> None:
    con.execute(
        f"INSERT INTO throughput ({', '.join(_COLUMNS)}) VALUES ({', '.join('?' * len(_COLUMNS))})",
        _row(fig, when),
    )


def seed_published(con: duckdb.DuckDBPyConnection) -> None:
    """Load the reference rows as ``published`` figures (one statement for all of them)."""
    from pricing._db import bulk_insert

    when = datetime.now(timezone.utc)
    bulk_insert(con, "throughput", _COLUMNS, [_row(fig, when) for fig in published_figures()])


def replace_published(con: duckdb.DuckDBPyConnection) -> None:
    """Swap the ``published`` rows for the shipped ones (measured figures stay)."""
    con.execute("DELETE FROM throughput WHERE kind = 'published'")
    seed_published(con)


def record_throughput(
    *,
    model: str,
    engine: str,
    task: str,
    accelerator: str,
    count: int,
    precision: str | None,
    input_tokens: float,
    output_tokens: float,
    rows_per_s: float,
    tokens_per_s: float,
    kind: str = "measured",
    source: str,
) -> None:
    """Store one figure (``skybatch bench``, a finished run)."""
    from pricing._db import connect

    if kind not in ("measured", "published", "estimated"):
        raise ValueError(f"throughput kind must be measured, published or estimated: {kind!r}")
    if not (rows_per_s > 0 and tokens_per_s >= 0) or count < 1:
        # NaN fails the comparisons too: a broken measurement must not become a figure.
        raise ValueError(
            f"record_throughput: rows_per_s must be > 0, tokens_per_s >= 0 and count >= 1 "
            f"(got {rows_per_s}, {tokens_per_s}, {count})"
        )
    fig = Figure(
        model=model,
        model_key=model_key(model),
        engine=engine,
        task=task,
        accelerator=normalize_accelerator(accelerator),
        count=count,
        precision=precision,
        input_tokens=input_tokens,
        output_tokens=output_tokens,
        rows_per_s=rows_per_s,
        tokens_per_s=tokens_per_s,
        kind=kind,
        source=source,
    )
    with connect() as con:
        _insert(con, fig, datetime.now(timezone.utc))


def figures_for(key: str) -> list[Figure]:
    """Every stored figure of one model (by canonical name), newest first."""
    from pricing._db import cached

    def load(con: duckdb.DuckDBPyConnection) -> list[Figure]:
        rows = con.execute(
            "SELECT model, model_key, engine, task, accelerator, accelerator_count, precision, "
            "input_tokens, output_tokens, rows_per_s, tokens_per_s, kind, source "
            "FROM throughput ORDER BY recorded_at DESC, id DESC"
        ).fetchall()
        return [Figure(*r) for r in rows]

    return [f for f in cached("throughput", load) if f.model_key == key]
