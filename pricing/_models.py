"""Known models: size and attention shape, for memory checks and the roofline.

A small table of architectures (values from each model's ``config.json`` on the Hugging
Face Hub); fine-tunes and quantised variants map onto their base architecture by name
(``meta-llama/Llama-3.1-8B-Instruct``, ``Meta-Llama-3.1-8B-FP8`` -> ``Llama-3.1-8B``).
A name the table does not know still yields a size when it states one (``...-13B-...``),
with the attention shape left unknown (the memory check then assumes a Llama-like one).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

__all__ = [
    "ModelInfo",
    "is_encoder",
    "model_info",
    "model_key",
    "name_precision",
    "precision_of",
]


@dataclass(frozen=True)
class ModelInfo:
    """What the planner needs to know about a model."""

    name: str
    params_b: float
    layers: int | None
    hidden: int | None
    kv_heads: int | None
    head_dim: int | None
    max_context: int | None
    encoder: bool = False  # bidirectional encoder (embeddings, classifiers): no decode


# name, params (B), layers, hidden, kv heads, head dim, max context, encoder
_TABLE: tuple[ModelInfo, ...] = (
    ModelInfo("Llama-3.1-8B", 8.03, 32, 4096, 8, 128, 131072),
    ModelInfo("Llama-3.1-70B", 70.6, 80, 8192, 8, 128, 131072),
    ModelInfo("Llama-3.1-405B", 405.9, 126, 16384, 8, 128, 131072),
    ModelInfo("Llama-3.2-1B", 1.24, 16, 2048, 8, 64, 131072),
    ModelInfo("Llama-3.2-3B", 3.21, 28, 3072, 8, 128, 131072),
    ModelInfo("Llama-2-7B", 6.74, 32, 4096, 32, 128, 4096),
    ModelInfo("Llama-2-13B", 13.0, 40, 5120, 40, 128, 4096),
    ModelInfo("Llama-2-70B", 69.0, 80, 8192, 8, 128, 4096),
    ModelInfo("Mistral-7B", 7.25, 32, 4096, 8, 128, 32768),
    ModelInfo("Mixtral-8x7B", 46.7, 32, 4096, 8, 128, 32768),
    ModelInfo("Qwen2.5-0.5B", 0.49, 24, 896, 2, 64, 32768),
    ModelInfo("Qwen2.5-1.5B", 1.54, 28, 1536, 2, 128, 32768),
    ModelInfo("Qwen2.5-7B", 7.62, 28, 3584, 4, 128, 32768),
    ModelInfo("Qwen2.5-14B", 14.8, 48, 5120, 8, 128, 32768),
    ModelInfo("Qwen2.5-32B", 32.8, 64, 5120, 8, 128, 32768),
    ModelInfo("Qwen2.5-72B", 72.7, 80, 8192, 8, 128, 32768),
    ModelInfo("gemma-2-9b", 9.24, 42, 3584, 8, 256, 8192),
    ModelInfo("gemma-2-27b", 27.2, 46, 4608, 16, 128, 8192),
    ModelInfo("gte-Qwen2-7B", 7.61, 28, 3584, 4, 128, 32768),
    ModelInfo("all-MiniLM-L6-v2", 0.0227, 6, 384, 12, 32, 512, encoder=True),
    ModelInfo("all-MiniLM-L12-v2", 0.0334, 12, 384, 12, 32, 512, encoder=True),
    ModelInfo("paraphrase-MiniLM-L3-v2", 0.0174, 3, 384, 12, 32, 512, encoder=True),
    ModelInfo("all-mpnet-base-v2", 0.1095, 12, 768, 12, 64, 514, encoder=True),
    ModelInfo("bge-small-en-v1.5", 0.0334, 12, 384, 12, 32, 512, encoder=True),
    ModelInfo("bge-base-en-v1.5", 0.109, 12, 768, 12, 64, 512, encoder=True),
    ModelInfo("bge-large-en-v1.5", 0.335, 24, 1024, 16, 64, 512, encoder=True),
    ModelInfo("e5-large-v2", 0.335, 24, 1024, 16, 64, 512, encoder=True),
    ModelInfo("distilbert-base-uncased", 0.066, 6, 768, 12, 64, 512, encoder=True),
    ModelInfo("bert-base-uncased", 0.11, 12, 768, 12, 64, 512, encoder=True),
    ModelInfo("roberta-large", 0.355, 24, 1024, 16, 64, 514, encoder=True),
)

# Same architecture, other names (checked after stripping org, "Meta-" and suffixes).
_ALIASES = {
    "llama-3-8b": "Llama-3.1-8B",
    "llama-3.3-70b": "Llama-3.1-70B",
    "llama-3-70b": "Llama-3.1-70B",
    "llama-2-70b-chat": "Llama-2-70B",
    "mistral-7b-v0.1": "Mistral-7B",
    "mistral-7b-v0.3": "Mistral-7B",
    "qwen2-7b": "Qwen2.5-7B",
}
_BY_KEY = {m.name.lower(): m for m in _TABLE}
_SUFFIXES = re.compile(
    r"(-(instruct|chat|it|hf|base|fp8|fp16|bf16|int8|int4|awq|gptq|w8a8|w4a16|dynamic|"
    r"v\d+(\.\d+)?|turbo))+$",
    re.IGNORECASE,
)
_SIZE = re.compile(r"(?<![\d.])(\d+(?:\.\d+)?)\s*[bB](?![a-zA-Z])")
_ENCODER_HINTS = ("minilm", "mpnet", "bge-", "e5-", "bert", "roberta", "gte-base", "gte-large")


def _strip(name: str) -> str:
    base = name.strip().rstrip("/").split("/")[-1]
    base = re.sub(r"^meta-", "", base, flags=re.IGNORECASE)
    return base


def model_key(name: str) -> str:
    """The table's canonical name for ``name`` (or ``name`` cleaned when unknown)."""
    info = _lookup(name)
    return info.name if info else _strip(name)


def _lookup(name: str) -> ModelInfo | None:
    base = _strip(name).lower()
    candidates = [base, _SUFFIXES.sub("", base)]
    for cand in candidates:
        if cand in _BY_KEY:
            return _BY_KEY[cand]
        if cand in _ALIASES:
            return _BY_KEY[_ALIASES[cand].lower()]
    # "Llama-3.1-8B-Instruct-FP8-dynamic" style: try dropping suffix tokens one by one.
    parts = base.split("-")
    for n in range(len(parts) - 1, 0, -1):
        cand = "-".join(parts[:n])
        if cand in _BY_KEY:
            return _BY_KEY[cand]
        if cand in _ALIASES:
            return _BY_KEY[_ALIASES[cand].lower()]
    return None


def model_info(name: str) -> ModelInfo | None:
    """The model's size and shape: from the table, its ``config.json`` (local, cached or
    from the Hub: :mod:`pricing._configs`), or the size parsed from the name."""
    info = _lookup(name)
    if info:
        return info
    from pricing._configs import info_from_config, load_config

    config = load_config(name)
    found = info_from_config(name, config) if config else None
    if found is not None:
        return found
    base = _strip(name)
    sizes = _SIZE.findall(base)
    if not sizes:
        return None
    moe = re.search(r"(\d+)x(\d+(?:\.\d+)?)[bB]", base)
    params = float(moe.group(1)) * float(moe.group(2)) if moe else float(sizes[-1])
    encoder = any(h in base.lower() for h in _ENCODER_HINTS)
    return ModelInfo(base, params, None, None, None, None, None, encoder=encoder)


def is_encoder(name: str, task: str) -> bool:
    """True when rows cost one forward pass (embed/classify/score, or a known encoder)."""
    if task in ("embed", "classify", "score"):
        return True
    info = model_info(name)
    return bool(info and info.encoder)


def precision_of(name: str) -> str | None:
    """The checkpoint's precision: what the name states, else its config's
    ``quantization_config`` / ``torch_dtype`` (None when neither says)."""
    stated = name_precision(name)
    if stated is not None:
        return stated
    from pricing._configs import config_precision, load_config

    config = load_config(name)
    return config_precision(config) if config else None


def name_precision(name: str) -> str | None:
    """A precision the model name states (``FP8``, ``INT4`` ...), or None."""
    low = name.lower()
    for token, precision in (
        ("fp8", "FP8"),
        ("w8a8", "FP8"),
        ("int8", "INT8"),
        ("awq", "INT4"),
        ("gptq", "INT4"),
        ("int4", "INT4"),
        ("w4a16", "INT4"),
        ("fp4", "FP4"),
        ("nvfp4", "FP4"),
    ):
        if token in low:
            return precision
    return None
