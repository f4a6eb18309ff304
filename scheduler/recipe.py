"""Recipes: one YAML file that says what to run, on what, by when.

A recipe is validated up front into a frozen :class:`Recipe`. Unknown fields are errors
(a typo must never pass silently) and every problem is reported as one line naming the
file and the field path, e.g.::

    recipes/x.yaml: model.batch_size: must be greater than 0 (got -4)

Relative paths: ``input.path`` is resolved against the current directory first and the
recipe's own directory second, so both ``skybatch run recipes/embed-minilm.yaml`` from the
repository root and a recipe copied next to its data work. ``store`` is resolved against
the current directory (it is where *this* user wants runs to live).
"""

from __future__ import annotations

import difflib
import hashlib
import json
import re
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from scheduler.errors import RecipeError

__all__ = [
    "InputSpec",
    "LimitsSpec",
    "ModelSpec",
    "PromptSpec",
    "Recipe",
    "SamplingSpec",
    "ScheduleSpec",
    "ShardsSpec",
    "load_recipe",
    "parse_duration",
    "recipe_from_dict",
    "resolve_input_path",
    "resolve_model_name",
]

_DURATION_PART = re.compile(r"(\d+(?:\.\d+)?)\s*(d|h|m|s)", re.IGNORECASE)
_UNIT_S = {"d": 86400.0, "h": 3600.0, "m": 60.0, "s": 1.0}

Task = Literal["embed", "classify", "score", "generate"]
EngineName = Literal["torch", "vllm", "python"]
InputFormat = Literal["parquet", "jsonl", "csv", "openai-batch"]


def parse_duration(value: object) -> float:
    """Parse ``8h``, ``30m``, ``1h30m``, ``90s``, ``2d`` or a number of seconds into seconds."""
    if isinstance(value, bool):
        raise ValueError(f"expected a duration such as 8h, 30m or 90s (got {value!r})")
    if isinstance(value, int | float):
        seconds = float(value)
    elif isinstance(value, str):
        text = value.strip().replace(" ", "")
        if not text:
            raise ValueError("expected a duration such as 8h, 30m or 90s (got an empty string)")
        try:
            seconds = float(text)
        except ValueError:
            pos, seconds = 0, 0.0
            for m in _DURATION_PART.finditer(text):
                if m.start() != pos:
                    break
                seconds += float(m.group(1)) * _UNIT_S[m.group(2).lower()]
                pos = m.end()
            if pos != len(text):
                raise ValueError(
                    f"expected a duration such as 8h, 30m or 90s (got {value!r})"
                ) from None
    else:
        raise ValueError(f"expected a duration such as 8h, 30m or 90s (got {value!r})")
    if seconds <= 0:
        raise ValueError(f"must be a positive duration (got {value!r})")
    return seconds


Duration = Annotated[float, BeforeValidator(parse_duration)]


class _Spec(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


class InputSpec(_Spec):
    """Where the rows come from and which columns matter."""

    path: str = Field(min_length=1)
    format: InputFormat | None = None
    id_column: str | None = None
    text_column: str = "text"
    # Planning hints for inputs that cannot be read from here (a bucket, data not yet
    # written): ``skybatch plan`` uses them instead of reading the input; local files are
    # always measured. They never change results, so the recipe digest ignores them.
    rows_estimate: int | None = Field(default=None, gt=0)
    avg_input_tokens: float | None = Field(default=None, gt=0)


class ModelSpec(_Spec):
    """Which engine runs which model, and how."""

    engine: EngineName
    name: str = Field(min_length=1)
    revision: str | None = None
    batch_size: int = Field(default=32, gt=0, le=1_000_000)
    options: dict[str, Any] = Field(default_factory=dict)


class PromptSpec(_Spec):
    """How a row becomes a prompt (task ``generate`` only)."""

    system: str | None = None
    template: str = "{text}"
    chat: bool = True


class SamplingSpec(_Spec):
    """Sampling parameters for generation."""

    temperature: float = Field(default=0.0, ge=0.0)
    top_p: float = Field(default=1.0, gt=0.0, le=1.0)
    max_tokens: int = Field(default=256, gt=0)
    expected_tokens: int | None = Field(default=None, gt=0)
    seed: int | None = None
    stop: list[str] | None = None


class ShardsSpec(_Spec):
    """How the input is cut into shards."""

    rows_per_shard: int | None = Field(default=None, gt=0)


class ScheduleSpec(_Spec):
    """The deadline, the budget and where workers may run."""

    deadline: Duration | None = None
    budget_usd: float | None = Field(default=None, gt=0)
    spot: Literal["prefer", "require", "never"] = "prefer"
    clouds: list[str] | None = None
    regions: list[str] | None = None
    accelerators: list[str] | None = None
    max_workers: int = Field(default=16, gt=0)
    p_target: float = Field(default=0.95, gt=0.0, lt=1.0)


class LimitsSpec(_Spec):
    """Failure handling."""

    retries: int = Field(default=3, ge=0)
    shard_timeout: Duration = 1800.0
    lease_ttl: Duration = 300.0
    max_error_rate: float = Field(default=0.001, ge=0.0, le=1.0)


class Recipe(_Spec):
    """A validated recipe. ``source`` is the file it was read from (None when built in code)."""

    name: str = Field(min_length=1, max_length=63, pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
    input: InputSpec
    task: Task
    model: ModelSpec
    prompt: PromptSpec | None = None
    sampling: SamplingSpec = Field(default_factory=SamplingSpec)
    shards: ShardsSpec = Field(default_factory=ShardsSpec)
    store: str = "./runs"
    schedule: ScheduleSpec = Field(default_factory=ScheduleSpec)
    limits: LimitsSpec = Field(default_factory=LimitsSpec)
    source: str | None = Field(default=None, exclude=True)

    @field_validator("model")
    @classmethod
    def _python_name(cls, model: ModelSpec) -> ModelSpec:
        if model.engine == "python" and ":" not in model.name:
            raise ValueError(f"the python engine needs name: module:function (got {model.name!r})")
        return model

    @model_validator(mode="after")
    def _task_fits_engine(self) -> Recipe:
        if self.task != "generate" and self.prompt is not None:
            raise ValueError("prompt: only task 'generate' takes a prompt; remove it")
        if self.input.format == "openai-batch" and self.task != "generate":
            raise ValueError("input.format: openai-batch requests need task: generate")
        return self

    def to_dict(self) -> dict[str, Any]:
        """The resolved recipe as plain data (what ``run.json`` records)."""
        return self.model_dump(mode="json")

    def digest(self) -> str:
        """A hash of everything that changes results (not schedule or limits)."""
        keyed = self.model_dump(
            mode="json", include={"input", "task", "model", "prompt", "sampling"}
        )
        keyed["input"].pop("path", None)  # the input is covered by its fingerprint
        for hint in ("rows_estimate", "avg_input_tokens"):  # planning hints only
            keyed["input"].pop(hint, None)
        text = json.dumps(keyed, sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(text.encode()).hexdigest()[:16]


def _format_loc(loc: tuple[int | str, ...]) -> str:
    parts: list[str] = []
    for item in loc:
        if isinstance(item, int):
            parts.append(f"[{item}]")
        else:
            parts.append(("." if parts else "") + item)
    return "".join(parts) or "(top level)"


def _known_fields() -> set[str]:
    specs: list[type[BaseModel]] = [
        Recipe,
        InputSpec,
        ModelSpec,
        PromptSpec,
        SamplingSpec,
        ShardsSpec,
        ScheduleSpec,
        LimitsSpec,
    ]
    return {name for spec in specs for name in spec.model_fields if name != "source"}


def _describe(source: str, e: Any) -> str:
    """One pydantic error as the one line a user reads: file, field, what is wrong."""
    loc = tuple(x for x in e["loc"] if not (isinstance(x, str) and x.startswith("function-")))
    field = _format_loc(loc)
    kind = e["type"]
    if kind == "extra_forbidden":
        typo = str(loc[-1]) if loc else ""
        close = difflib.get_close_matches(typo, sorted(_known_fields()), n=1)
        hint = f"did you mean '{close[0]}'?" if close else "see recipes/README.md for the fields"
        msg = f"unknown field ({hint})"
    elif kind == "missing":
        msg = "required field is missing"
    else:
        msg = str(e["msg"]).removeprefix("Value error, ")
        if "input" in e and not isinstance(e["input"], dict | list):
            msg += f" (got {e['input']!r})"
    if kind == "model_validator" or (field == "(top level)" and ":" in msg):
        return f"{source}: {msg}"
    return f"{source}: {field}: {msg}"


def _first_error(source: str, err: ValidationError) -> RecipeError:
    errors = err.errors(include_url=False)
    # A typo shows up both as an unknown field and as a missing one: name the typo.
    errors.sort(key=lambda x: x["type"] != "extra_forbidden")
    lines = [_describe(source, e) for e in errors]
    more = len(lines) - 1
    tail = f" (+{more} more problem{'s' if more > 1 else ''})" if more else ""
    # The message is one line; ``problems`` lists each one, for the CLI to print them all.
    return RecipeError(lines[0] + tail, problems=lines)


def recipe_from_dict(data: object, *, source: str = "<recipe>") -> Recipe:
    """Validate plain data into a :class:`Recipe`, raising :class:`RecipeError`."""
    if not isinstance(data, dict):
        raise RecipeError(f"{source}: expected a mapping of fields at the top level")
    try:
        recipe = Recipe.model_validate({**data, "source": source})
    except ValidationError as e:
        raise _first_error(source, e) from e
    return recipe


def load_recipe(path: str | Path) -> Recipe:
    """Read and validate a recipe file; every failure is one :class:`RecipeError` line."""
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise RecipeError(f"{p}: recipe file not found") from None
    except (OSError, UnicodeDecodeError) as e:
        raise RecipeError(f"{p}: cannot read the recipe ({e})") from e
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark is not None else ""
        problem = getattr(e, "problem", None) or "syntax error"
        raise RecipeError(f"{p}: invalid YAML{where}: {problem}") from e
    if data is None:
        raise RecipeError(f"{p}: the recipe is empty")
    return recipe_from_dict(data, source=str(p))


def _local_candidate(raw: str, recipe: Recipe) -> Path | None:
    """``raw`` as an existing local path: from the current directory, else the recipe's."""
    if "://" in raw or recipe.source is None:
        return None
    beside = Path(recipe.source).parent / raw
    for candidate in (Path(raw), beside):
        if candidate.exists() or any(candidate.parent.glob(candidate.name)):
            return candidate
    return None


def resolve_input_path(recipe: Recipe) -> str:
    """The input path as a user means it (see the module docstring for the rule)."""
    raw = recipe.input.path
    if Path(raw).is_absolute():
        return raw
    found = _local_candidate(raw, recipe)
    return str(found) if found is not None else raw


def resolve_model_name(recipe: Recipe) -> str:
    """``model.name`` with a relative local path made absolute (same rule as the input).

    Model ids (``org/name``) that are not local paths are returned unchanged; for the
    python engine only the ``file.py`` part of ``file.py:function`` is resolved.
    """
    name = recipe.model.name
    head, sep, func = name.rpartition(":") if recipe.model.engine == "python" else ("", "", name)
    path = head if sep else func
    if not path or Path(path).is_absolute() or (sep and not path.endswith(".py")):
        return name
    found = _local_candidate(path, recipe)
    if found is None:
        return name
    resolved = str(found.resolve())
    return f"{resolved}:{func}" if sep else resolved
