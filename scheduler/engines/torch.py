"""The ``torch`` engine: embeddings, classification and scoring with PyTorch.

Tasks and what each row gets back:

* ``embed``: a sentence-transformers model -> ``{"embedding": [float, ...]}``;
* ``classify``: a transformers sequence-classification model (or a TorchScript ``.pt``
  file) -> ``{"label": str, "score": float}`` (the softmax probability of the label);
* ``score``: a regression / cross-encoder / classification model -> ``{"score": float}``.

``model.options`` are listed in :mod:`scheduler.engines._torch_options`: ``device``
(``auto``: CUDA, else MPS, else CPU), ``dtype``, ``normalize``, ``max_seq_length``,
``num_threads``, ``micro_batch_size``, ``pair_column``, ``labels``, ``activation``,
``positive_label``, ``tokenizer``, ``torchscript``, ``inputs``.

Rows in one :meth:`TorchEngine.infer` call are sorted by text length (longest first) and
run in micro-batches of ``micro_batch_size`` (default ``model.batch_size``) so each padded
batch holds texts of similar length; results come back in the original order. With a
``model.batch_size`` several times ``micro_batch_size`` (e.g. 512 and 64), the worker hands
over larger windows and length sorting saves padding on texts of varied length.

An empty or non-string text is a :class:`RowFailure` for that row. Out-of-memory errors
propagate so the worker can halve the batch; the engine first halves its micro-batch (and
frees the CUDA cache) so the retry's forward passes are smaller too.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Any

from scheduler.engines._models import resolve_model
from scheduler.engines._torch_options import TorchOptions, parse_options
from scheduler.engines.base import Result, Row, RowFailure, is_out_of_memory
from scheduler.errors import EngineError

if TYPE_CHECKING:
    import torch

    from scheduler.recipe import Recipe

__all__ = ["TorchEngine", "TorchOptions", "parse_options"]

_TORCHSCRIPT_SUFFIXES = (".pt", ".pth", ".ptl")


def _pick_device(requested: str) -> str:
    import torch

    if requested != "auto":
        if requested.startswith("cuda") and not torch.cuda.is_available():
            raise EngineError(
                f"model.options.device: {requested} asked for, but torch sees no CUDA device; "
                "use device: auto or cpu"
            )
        return requested
    if torch.cuda.is_available():
        return "cuda"
    mps = getattr(torch.backends, "mps", None)
    if mps is not None and mps.is_available():
        return "mps"
    return "cpu"


def _pick_dtype(requested: str, device: str) -> torch.dtype:
    import torch

    if requested == "auto":
        # Half precision is the norm for batch inference on GPUs; CPUs are faster in fp32.
        return torch.float16 if device.startswith("cuda") else torch.float32
    dtype: torch.dtype = getattr(torch, requested)
    return dtype


def _text_failure(text: object) -> RowFailure | None:
    if text is None:
        return RowFailure("empty text (no value in the text column)")
    if not isinstance(text, str):
        return RowFailure(f"empty text (the text column holds {type(text).__name__}, not a string)")
    if not text.strip():
        return RowFailure("empty text")
    return None


def _chunks(items: Sequence[int], size: int) -> Iterator[Sequence[int]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def _quiet_loading() -> None:
    """Keep model-loading progress bars and advice out of the worker's log."""
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    try:
        from transformers.utils import logging as hf_logging

        hf_logging.set_verbosity_error()  # type: ignore[no-untyped-call]
        hf_logging.disable_progress_bar()  # type: ignore[no-untyped-call]
    except ImportError:  # pragma: no cover - transformers is part of the torch extra
        pass


class TorchEngine:
    """Embeds, classifies or scores rows with a model loaded once per worker."""

    whole_shard = False
    # Asks the worker to cut a shard into batches in order of text length (less padding).
    length_sorted = True

    def __init__(self, recipe: Recipe) -> None:
        try:
            import torch
        except ImportError as e:
            raise EngineError(
                "the torch engine needs PyTorch: pip install 'skybatch[torch]'"
            ) from e
        self.task = recipe.task
        self.options = parse_options(recipe.task, dict(recipe.model.options))
        self.batch_size = recipe.model.batch_size
        self.micro_batch_size = self.options.micro_batch_size or self.batch_size
        self.name = recipe.model.name
        _quiet_loading()
        if self.options.num_threads:
            torch.set_num_threads(self.options.num_threads)
        self.device = _pick_device(self.options.device)
        self.dtype = _pick_dtype(self.options.dtype, self.device)
        self._torch = torch
        self._model: Any = None
        self._tokenizer: Any = None
        self._labels: tuple[str, ...] = ()
        self._regression = False
        self._max_length = 512
        is_script = self.options.torchscript
        if is_script is None:
            is_script = self.name.endswith(_TORCHSCRIPT_SUFFIXES)
        self.torchscript = bool(is_script) and self.task != "embed"
        resolved = resolve_model(self.name, recipe.model.revision)
        self.revision = resolved.revision
        self.model_source = resolved.source
        try:
            if self.task == "embed":
                self._load_sentence_transformer(str(resolved.path))
            elif self.torchscript:
                self._load_torchscript(str(resolved.path))
            else:
                self._load_sequence_classifier(str(resolved.path))
        except (OSError, ValueError, RuntimeError, KeyError) as e:
            if is_out_of_memory(e):
                raise
            first_line = str(e).splitlines()[0] if str(e) else ""
            raise EngineError(
                f"model {self.name!r}: cannot load it for task {self.task} from "
                f"{resolved.path} ({type(e).__name__}: {first_line}); check that it holds a "
                "model for this task (config, weights, tokenizer) or name another model"
            ) from e

    # -- loading ---------------------------------------------------------------------------

    def _load_sentence_transformer(self, path: str) -> None:
        from sentence_transformers import SentenceTransformer

        model = SentenceTransformer(
            path, device=self.device, model_kwargs={"dtype": self.dtype}, local_files_only=True
        )
        if self.options.max_seq_length:
            model.max_seq_length = self.options.max_seq_length
        model.eval()
        self._model = model

    def _load_tokenizer(self, path: str) -> None:
        from transformers import AutoTokenizer

        self._tokenizer = AutoTokenizer.from_pretrained(path, local_files_only=True)

    def _load_sequence_classifier(self, path: str) -> None:
        from transformers import AutoModelForSequenceClassification

        self._load_tokenizer(path)
        model = AutoModelForSequenceClassification.from_pretrained(
            path, dtype=self.dtype, local_files_only=True
        )
        model.to(self.device).eval()
        config = model.config
        id2label = getattr(config, "id2label", None) or {}
        count = int(getattr(config, "num_labels", len(id2label)) or len(id2label))
        self._labels = self.options.labels or tuple(
            str(id2label.get(i, f"LABEL_{i}")) for i in range(count)
        )
        self._regression = getattr(config, "problem_type", None) == "regression"
        limit = getattr(config, "max_position_embeddings", None)
        self._max_length = self._pick_max_length(limit)
        self._model = model

    def _load_torchscript(self, path: str) -> None:
        from pathlib import Path

        if self.options.tokenizer:
            tok_path = str(resolve_model(self.options.tokenizer).path)
        else:
            tok_path = str(Path(path).parent)
        try:
            self._load_tokenizer(tok_path)
        except (OSError, ValueError) as e:
            raise EngineError(
                f"model {self.name!r}: no tokenizer found at {tok_path} for the TorchScript "
                "model; set model.options.tokenizer to a tokenizer path or Hub id"
            ) from e
        produced = set(self._tokenizer("probe").keys())
        missing = [k for k in self.options.inputs if k not in produced]
        if missing:
            raise EngineError(
                f"model.options.inputs: the tokenizer at {tok_path} does not produce "
                f"{missing[0]!r} (it gives {', '.join(sorted(produced))})"
            )
        model = self._torch.jit.load(path, map_location=self.device)  # type: ignore[no-untyped-call]
        model.eval()
        if self.dtype != self._torch.float32:
            model.to(self.dtype)
        self._labels = self.options.labels or ()
        self._max_length = self._pick_max_length(None)
        self._model = model

    def _pick_max_length(self, model_limit: int | None) -> int:
        if self.options.max_seq_length:
            return self.options.max_seq_length
        tok_limit = int(getattr(self._tokenizer, "model_max_length", 0) or 0)
        # Tokenizers without a limit report a huge sentinel (1e30); fall back to the model's.
        candidates = [n for n in (tok_limit, model_limit) if n and n < 100_000]
        return min(candidates) if candidates else 512

    # -- inference -------------------------------------------------------------------------

    def infer(self, rows: list[Row]) -> list[Result]:
        """One result per row, in order; rows are run in length-sorted micro-batches."""
        results: list[Result | None] = [None] * len(rows)
        valid: list[int] = []
        for i, row in enumerate(rows):
            failure = _text_failure(row.get("text"))
            if failure is None and self.options.pair_column is not None:
                pair = row.get(self.options.pair_column)
                failure = _text_failure(pair)
                if failure is not None:
                    failure = RowFailure(f"empty pair text (column {self.options.pair_column!r})")
            if failure is not None:
                results[i] = failure
            else:
                valid.append(i)
        # Longest first: similar lengths share a padded batch, and an OOM shows up at once.
        order = sorted(valid, key=lambda i: len(rows[i]["text"]), reverse=True)
        try:
            for chunk in _chunks(order, self.micro_batch_size):
                for i, result in zip(chunk, self._run([rows[i] for i in chunk]), strict=True):
                    results[i] = result
        except Exception as e:
            if is_out_of_memory(e):
                # The worker retries with half the rows; the forward pass must shrink too,
                # also when the worker's batch holds several micro-batches.
                size = min(self.micro_batch_size, len(order))
                self.micro_batch_size = max(1, size // 2)
                if self.device.startswith("cuda"):
                    self._torch.cuda.empty_cache()  # so the retry finds the memory free
            raise
        return [r if r is not None else RowFailure("no result") for r in results]

    def _run(self, rows: list[Row]) -> list[Result]:
        texts = [str(r["text"]) for r in rows]
        if self.task == "embed":
            vectors = self._model.encode(
                texts,
                batch_size=len(texts),
                show_progress_bar=False,
                convert_to_numpy=True,
                normalize_embeddings=self.options.normalize,
            )
            return [{"embedding": v.astype("float32").tolist()} for v in vectors]
        logits = self._logits(texts, rows)
        if self.task == "classify":
            return self._classify(logits)
        return self._score(logits)

    def _logits(self, texts: list[str], rows: list[Row]) -> torch.Tensor:
        pairs = None
        if self.options.pair_column is not None:
            pairs = [str(r[self.options.pair_column]) for r in rows]
        encoded = self._tokenizer(
            texts,
            pairs,
            padding=True,
            truncation=True,
            max_length=self._max_length,
            return_tensors="pt",
        ).to(self.device)
        with self._torch.inference_mode():
            if self.torchscript:
                out = self._model(*(encoded[k] for k in self.options.inputs))
            else:
                out = self._model(**encoded)
        if isinstance(out, dict):
            out = out["logits"]
        elif isinstance(out, tuple | list):
            out = out[0]
        elif hasattr(out, "logits"):
            out = out.logits
        logits: torch.Tensor = out.float().cpu()  # the model's output is untyped (Any)
        if logits.dim() == 1:
            logits = logits.unsqueeze(-1)
        return logits

    def _label(self, index: int) -> str:
        return self._labels[index] if index < len(self._labels) else f"LABEL_{index}"

    def _classify(self, logits: torch.Tensor) -> list[Result]:
        if logits.shape[-1] == 1:
            # One logit: a binary classifier; sigmoid gives P(class 1).
            prob = self._torch.sigmoid(logits[:, 0])
            return [
                {"label": self._label(1 if p >= 0.5 else 0), "score": float(max(p, 1 - p))}
                for p in prob.tolist()
            ]
        probs = self._torch.softmax(logits, dim=-1)
        best, index = probs.max(dim=-1)
        return [
            {"label": self._label(int(i)), "score": float(p)}
            for p, i in zip(best.tolist(), index.tolist(), strict=True)
        ]

    def _positive_index(self, classes: int) -> int:
        wanted = self.options.positive_label
        if wanted is None:
            return classes - 1
        if isinstance(wanted, int):
            index = wanted
        elif wanted in self._labels:
            index = self._labels.index(wanted)
        else:
            raise EngineError(
                f"model.options.positive_label: {wanted!r} is not a label of {self.name!r} "
                f"(labels: {', '.join(self._labels) or 'none'})"
            )
        if not 0 <= index < classes:
            raise EngineError(
                f"model.options.positive_label: index {index} is outside 0..{classes - 1}"
            )
        return index

    def _score(self, logits: torch.Tensor) -> list[Result]:
        if logits.shape[-1] == 1:
            activation = self.options.activation
            if activation == "auto":
                activation = "none" if self._regression else "sigmoid"
            values = logits[:, 0]
            if activation == "sigmoid":
                values = self._torch.sigmoid(values)
            return [{"score": float(v)} for v in values.tolist()]
        probs = self._torch.softmax(logits, dim=-1)[:, self._positive_index(logits.shape[-1])]
        return [{"score": float(v)} for v in probs.tolist()]

    # -- reporting -------------------------------------------------------------------------

    def describe(self) -> dict[str, Any]:
        """What ran: engine, model, revision, device, accelerator (+ dtype, task, source)."""
        torch = self._torch
        if self.device.startswith("cuda"):
            index = torch.device(self.device).index or 0
            accelerator = str(torch.cuda.get_device_name(index))
        elif self.device == "mps":
            accelerator = "apple-mps"
        else:
            accelerator = "cpu"
        info: dict[str, Any] = {
            "engine": "torch",
            "model": self.name,
            "revision": self.revision,
            "device": self.device,
            "accelerator": accelerator,
            "dtype": str(self.dtype).removeprefix("torch."),
            "task": self.task,
            "model_source": self.model_source,
        }
        if self.task == "embed" and self._model is not None:
            # Renamed in sentence-transformers 6 (the old name warns); support both.
            model = self._model
            dim_of = getattr(model, "get_embedding_dimension", None)
            if dim_of is None:
                dim_of = model.get_sentence_embedding_dimension
            info["dim"] = int(dim_of() or 0)
        if self.task == "classify" and self._labels:
            info["labels"] = list(self._labels)
        return info

    def close(self) -> None:
        """Drop the model and give the accelerator memory back."""
        self._model = None
        self._tokenizer = None
        if self.device.startswith("cuda"):
            self._torch.cuda.empty_cache()
