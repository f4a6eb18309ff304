"""Options of the ``torch`` engine: validated without importing torch.

``model.options`` (all optional; unknown options are refused so typos do not pass):

* ``device``: ``auto`` (CUDA, else Apple MPS, else CPU), ``cpu``, ``cuda``, ``cuda:1``...
* ``dtype``: ``auto`` (float16 on CUDA, float32 elsewhere), ``float32``, ``float16``,
  ``bfloat16``.
* ``normalize``: embed: L2-normalise embeddings (default false).
* ``max_seq_length``: truncate inputs to this many tokens (default: the model's limit).
* ``num_threads``: CPU threads for torch (default: torch's choice).
* ``micro_batch_size``: rows per forward pass (default ``model.batch_size``); a larger
  ``model.batch_size`` then gives length sorting a wider window.
* ``pair_column``: classify/score: a second text column, encoded as a pair (cross-encoders).
* ``labels``: classify: label names by class index (overrides the model's id2label;
  needed for TorchScript models, else ``LABEL_<i>``).
* ``activation``: score, one logit: ``auto`` (raw for regression models, else sigmoid),
  ``sigmoid`` or ``none``.
* ``positive_label``: score, several logits: the class whose probability is the score
  (a label name or index; default the last class).
* ``tokenizer``: TorchScript: the tokenizer (path or Hub id; default the .pt's folder).
* ``torchscript``: treat ``model.name`` as a TorchScript file (default: by .pt/.pth suffix).
* ``inputs``: TorchScript: tensors passed positionally (default
  ``[input_ids, attention_mask]``).

:func:`parse_options` turns ``model.options`` into a frozen :class:`TorchOptions`, or
raises :class:`~scheduler.errors.RecipeError` naming ``model.options.<field>``; it imports
nothing heavy, so ``skybatch validate`` can call it too.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from scheduler.errors import RecipeError

__all__ = ["TASKS", "GenerateOptions", "TorchOptions", "parse_generate_options", "parse_options"]

DTYPES = ("auto", "float32", "float16", "bfloat16")
TASKS = ("embed", "classify", "score")


@dataclass(frozen=True)
class TorchOptions:
    """The validated ``model.options`` of a torch recipe."""

    device: str = "auto"
    dtype: str = "auto"
    normalize: bool = False
    max_seq_length: int | None = None
    num_threads: int | None = None
    micro_batch_size: int | None = None
    pair_column: str | None = None
    labels: tuple[str, ...] | None = None
    activation: str = "auto"
    positive_label: str | int | None = None
    tokenizer: str | None = None
    torchscript: bool | None = None
    inputs: tuple[str, ...] = ("input_ids", "attention_mask")


def _bad(field: str, what: str) -> RecipeError:
    return RecipeError(f"model.options.{field}: {what}")


def _positive_int(options: dict[str, Any], key: str) -> int | None:
    value = options.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise _bad(key, f"must be a positive integer (got {value!r})")
    return value


def _str_list(options: dict[str, Any], key: str) -> tuple[str, ...] | None:
    value = options.get(key)
    if value is None:
        return None
    if not isinstance(value, list) or not value or not all(isinstance(v, str) for v in value):
        raise _bad(key, f"must be a non-empty list of strings (got {value!r})")
    return tuple(value)


def _refuse_unknown(options: dict[str, Any], fields: type, what: str) -> None:
    known = sorted(fields.__dataclass_fields__)  # type: ignore[attr-defined]
    unknown = sorted(set(options) - set(known))
    if unknown:
        raise _bad(unknown[0], f"unknown option for {what} (known: {', '.join(known)})")


def _device_and_dtype(options: dict[str, Any]) -> tuple[str, str]:
    device = options.get("device", "auto")
    if not isinstance(device, str) or not (
        device in ("auto", "cpu", "cuda", "mps") or device.startswith("cuda:")
    ):
        raise _bad("device", f"use auto, cpu, cuda, cuda:N or mps (got {device!r})")
    dtype = options.get("dtype", "auto")
    if dtype not in DTYPES:
        raise _bad("dtype", f"use one of {', '.join(DTYPES)} (got {dtype!r})")
    return device, dtype


@dataclass(frozen=True)
class GenerateOptions:
    """The validated ``model.options`` of torch generation (task ``generate``).

    ``device`` and ``dtype`` as for the torch engine; ``max_model_len``: the context limit
    prompts are checked against (default: the model's).
    """

    device: str = "auto"
    dtype: str = "auto"
    max_model_len: int | None = None


def parse_generate_options(options: dict[str, Any]) -> GenerateOptions:
    """Validate ``model.options`` for torch generation without importing torch."""
    _refuse_unknown(options, GenerateOptions, "torch generation")
    device, dtype = _device_and_dtype(options)
    return GenerateOptions(device, dtype, _positive_int(options, "max_model_len"))


def parse_options(task: str, options: dict[str, Any]) -> TorchOptions:
    """Validate ``model.options`` for ``task`` without importing torch (usable by validate)."""
    if task not in TASKS:
        raise RecipeError(
            f"task: the torch engine runs {', '.join(TASKS)} here (got {task!r}); "
            "generation uses the torch generate engine"
        )
    _refuse_unknown(options, TorchOptions, "the torch engine")
    device, dtype = _device_and_dtype(options)
    normalize = options.get("normalize", False)
    if not isinstance(normalize, bool):
        raise _bad("normalize", f"must be true or false (got {normalize!r})")
    activation = options.get("activation", "auto")
    if activation not in ("auto", "sigmoid", "none"):
        raise _bad("activation", f"use auto, sigmoid or none (got {activation!r})")
    positive = options.get("positive_label")
    if positive is not None and (isinstance(positive, bool) or not isinstance(positive, str | int)):
        raise _bad("positive_label", f"must be a label name or index (got {positive!r})")
    for key in ("pair_column", "tokenizer"):
        if key in options and not (isinstance(options[key], str) and options[key]):
            raise _bad(key, f"must be a non-empty string (got {options[key]!r})")
    torchscript = options.get("torchscript")
    if torchscript is not None and not isinstance(torchscript, bool):
        raise _bad("torchscript", f"must be true or false (got {torchscript!r})")
    return TorchOptions(
        device=device,
        dtype=dtype,
        normalize=normalize,
        max_seq_length=_positive_int(options, "max_seq_length"),
        num_threads=_positive_int(options, "num_threads"),
        micro_batch_size=_positive_int(options, "micro_batch_size"),
        pair_column=options.get("pair_column"),
        labels=_str_list(options, "labels"),
        activation=activation,
        positive_label=positive,
        tokenizer=options.get("tokenizer"),
        torchscript=torchscript,
        inputs=_str_list(options, "inputs") or ("input_ids", "attention_mask"),
    )
