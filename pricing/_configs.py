"""A model's size, precision and context from its ``config.json``.

Where the config comes from, first that has it:

1. a local model directory (``name`` is a path holding ``config.json``);
2. the Hugging Face cache on this machine (never a download);
3. the ``model_configs`` table of the DuckDB file (an earlier fetch);
4. the Hub over HTTP with httpx, unless offline (``HF_HUB_OFFLINE=1``): ``HF_ENDPOINT``
   (default ``https://huggingface.co``) ``/<name>/resolve/<revision or main>/config.json``,
   ``HF_TOKEN`` for gated models; what it returns is cached in DuckDB.

A lookup that finds nothing is remembered too (``model_config_misses``), so that planning
a gated or unknown model does not wait on the network (up to :data:`TIMEOUT_S`) each
time: a refusal (401, 403, 404) is asked again only once ``HF_TOKEN`` is set where it was
not, no answer at all (a timeout, a 5xx) a day later (:data:`RETRY_TRANSIENT_S`). Both
tables are read through the read cache, so a repeated plan opens neither DuckDB nor a
socket.

:func:`info_from_config` turns a config into a :class:`~pricing._models.ModelInfo`:
parameters counted from the shapes (embeddings, attention with grouped KV heads, a gated
MLP per expert), the KV-cache shape, the context (``max_position_embeddings``), encoder or
not (by architecture), and :func:`config_precision` reads ``quantization_config`` (FP8,
INT4 ...) or ``torch_dtype``.
"""

from __future__ import annotations

import json
import os
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pricing._models import ModelInfo

if TYPE_CHECKING:
    import duckdb

__all__ = ["config_precision", "info_from_config", "load_config"]

HUB = "https://huggingface.co"
TIMEOUT_S = 5.0
RETRY_TRANSIENT_S = 86400.0
_ENCODER_TYPES = frozenset(
    {"bert", "roberta", "xlm-roberta", "mpnet", "distilbert", "deberta-v2", "electra", "nomic_bert"}
)
_memo: dict[tuple[str, str | None], dict[str, Any] | None] = {}


def _offline() -> bool:
    return os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in ("1", "true", "yes")


def _hub_cache() -> Path:
    # Where huggingface_hub keeps its cache, by the same variables it reads.
    explicit = os.environ.get("HF_HUB_CACHE") or os.environ.get("HUGGINGFACE_HUB_CACHE")
    if explicit:
        return Path(explicit).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME", "~/.cache")
    return Path(os.environ.get("HF_HOME") or Path(xdg) / "huggingface").expanduser() / "hub"


def _cached_hub_file(name: str, filename: str, revision: str | None) -> Path | None:
    """``filename`` of Hub repo ``name`` from the Hugging Face cache, or None.

    Read from the cache's layout (``models--org--name/refs/<rev>`` names the snapshot)
    rather than through huggingface_hub, whose import pulls in httpx: a tenth of a second
    that every ``skybatch plan`` would pay.
    """
    repo = _hub_cache() / ("models--" + name.replace("/", "--"))
    rev = revision or "main"
    try:
        commit = rev if len(rev) == 40 else (repo / "refs" / rev).read_text("utf-8").strip()
    except (OSError, UnicodeDecodeError):
        return None
    path = repo / "snapshots" / commit / filename
    return path if path.is_file() else None


def _local(name: str, revision: str | None) -> dict[str, Any] | None:
    path = Path(name).expanduser() / "config.json"
    if path.is_file():
        return dict(json.loads(path.read_text("utf-8")))
    if name.count("/") != 1:
        return None
    found = _cached_hub_file(name, "config.json", revision)
    return dict(json.loads(found.read_text("utf-8"))) if found is not None else None


def _stored_configs() -> dict[tuple[str, str], str]:
    """Every fetched config by (model, revision), as JSON text."""
    from pricing._db import cached

    def load(con: duckdb.DuckDBPyConnection) -> dict[tuple[str, str], str]:
        rows = con.execute("SELECT model, revision, config FROM model_configs").fetchall()
        return {(m, r): c for m, r, c in rows}

    return cached("model_configs", load)


def _misses() -> dict[tuple[str, str], tuple[bool, bool, datetime]]:
    """Lookups that found nothing: (transient, with_token, tried_at) by (model, revision)."""
    from pricing._db import cached

    def load(
        con: duckdb.DuckDBPyConnection,
    ) -> dict[tuple[str, str], tuple[bool, bool, datetime]]:
        rows = con.execute(
            "SELECT model, revision, transient, with_token, tried_at FROM model_config_misses"
        ).fetchall()
        return {
            (m, r): (bool(t), bool(w), at.replace(tzinfo=timezone.utc)) for m, r, t, w, at in rows
        }

    return cached("model_config_misses", load)


def _stored(name: str, revision: str | None) -> dict[str, Any] | None:
    text = _stored_configs().get((name, revision or ""))
    return dict(json.loads(text)) if text is not None else None


def _worth_asking(name: str, revision: str | None) -> bool:
    """Whether the Hub may answer now what it did not answer before."""
    miss = _misses().get((name, revision or ""))
    if miss is None:
        return True
    transient, with_token, tried_at = miss
    if os.environ.get("HF_TOKEN") and not with_token:
        return True  # a gated model may open to the token
    age_s = (datetime.now(timezone.utc) - tried_at).total_seconds()
    return transient and age_s >= RETRY_TRANSIENT_S


def _remember_miss(name: str, revision: str | None, reason: str, *, transient: bool) -> None:
    from pricing._db import connect

    with connect() as con:
        con.execute(
            "INSERT OR REPLACE INTO model_config_misses VALUES (?, ?, ?, ?, ?, now())",
            [name, revision or "", reason, transient, bool(os.environ.get("HF_TOKEN"))],
        )


def _fetch(name: str, revision: str | None) -> dict[str, Any] | None:
    import httpx

    from pricing._db import connect

    base = os.environ.get("HF_ENDPOINT", HUB).rstrip("/")
    url = f"{base}/{name}/resolve/{revision or 'main'}/config.json"
    token = os.environ.get("HF_TOKEN")
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    try:
        response = httpx.get(url, headers=headers, timeout=TIMEOUT_S, follow_redirects=True)
    except httpx.HTTPError as e:
        # Offline in fact, or the Hub is slow: plan from the name instead.
        _remember_miss(name, revision, f"{type(e).__name__}", transient=True)
        return None
    status = response.status_code
    if status != 200:
        _remember_miss(name, revision, f"HTTP {status}", transient=status == 429 or status >= 500)
        return None
    try:
        config = dict(response.json())
    except ValueError:  # a portal's page rather than the Hub's answer
        _remember_miss(name, revision, "not JSON", transient=True)
        return None
    with connect() as con:
        con.execute(
            "INSERT OR REPLACE INTO model_configs VALUES (?, ?, ?, now())",
            [name, revision or "", json.dumps(config)],
        )
        con.execute(
            "DELETE FROM model_config_misses WHERE model = ? AND revision = ?",
            [name, revision or ""],
        )
    return config


def load_config(name: str, revision: str | None = None) -> dict[str, Any] | None:
    """The model's ``config.json`` (see the module docstring for where from), or None."""
    if ":" in name and "/" not in name:
        return None  # a python engine's module:function
    key = (name, revision)
    if key not in _memo:
        config = _local(name, revision) or _stored(name, revision)
        if (
            config is None
            and not _offline()
            and name.count("/") == 1
            and _worth_asking(name, revision)
        ):
            config = _fetch(name, revision)
        _memo[key] = config
    return _memo[key]


def config_precision(config: dict[str, Any]) -> str | None:
    """``FP8``/``INT4``/``INT8``/``FP4`` from ``quantization_config``, else the dtype."""
    quant = config.get("quantization_config") or {}
    method = str(quant.get("quant_method") or "").lower()
    bits = quant.get("bits") or quant.get("w_bit")
    if method == "fp8" or "fp8" in json.dumps(quant).lower():
        return "FP8"
    if method in ("awq", "gptq", "marlin") or bits == 4:
        return "INT4"
    if bits == 8:
        return "INT8"
    if "fp4" in method or "nvfp4" in json.dumps(quant).lower():
        return "FP4"
    dtype = str(config.get("torch_dtype") or config.get("dtype") or "").lower()
    return {"bfloat16": "BF16", "float16": "FP16", "float32": "FP32"}.get(dtype)


def _text_config(config: dict[str, Any]) -> dict[str, Any]:
    # Multimodal wrappers keep the language model's shape under text_config.
    inner = config.get("text_config")
    return {**config, **inner} if isinstance(inner, dict) else config


def info_from_config(name: str, config: dict[str, Any]) -> ModelInfo | None:
    """Size and shape from a config; None when it lacks the basic shape fields."""
    c = _text_config(config)
    hidden, layers = c.get("hidden_size") or c.get("d_model"), c.get("num_hidden_layers")
    if not isinstance(hidden, int) or not isinstance(layers, int):
        return None
    heads = int(c.get("num_attention_heads") or max(1, hidden // 64))
    kv_heads = int(c.get("num_key_value_heads") or heads)
    head_dim = int(c.get("head_dim") or hidden // heads)
    inter = int(c.get("intermediate_size") or 4 * hidden)
    vocab = int(c.get("vocab_size") or 0)
    experts = int(c.get("num_local_experts") or c.get("num_experts") or 1)
    model_type = str(c.get("model_type") or "").lower()
    encoder = model_type in _ENCODER_TYPES
    attn = hidden * heads * head_dim * 2 + hidden * kv_heads * head_dim * 2
    mlp = (2 if encoder else 3) * hidden * inter * experts  # gated MLP: up, gate, down
    tied = bool(c.get("tie_word_embeddings", encoder))
    params = layers * (attn + mlp) + vocab * hidden * (1 if tied else 2)
    context = c.get("max_position_embeddings")
    return ModelInfo(
        name=name.rstrip("/").split("/")[-1],
        params_b=params / 1e9,
        layers=layers,
        hidden=hidden,
        kv_heads=kv_heads,
        head_dim=head_dim,
        max_context=int(context) if isinstance(context, int) else None,
        encoder=encoder,
    )
