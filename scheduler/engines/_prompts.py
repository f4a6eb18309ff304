"""Prompts for task ``generate``: a row becomes chat messages (or plain text) and sampling.

Shared by the ``vllm`` and ``torch`` generation engines so both build the same prompt from
the same row. Two kinds of rows arrive:

* recipe rows (``id``, ``text``, other columns): the prompt is ``prompt.template`` formatted
  over the row's fields, with ``prompt.system`` as a system message, and the recipe's
  ``sampling``;
* OpenAI Batch rows (``body`` holds the request): the body's ``messages`` and its sampling
  fields (``max_tokens``/``max_completion_tokens``, ``temperature``, ``top_p``, ``seed``,
  ``stop``) override the recipe's; a request skybatch cannot honour is a row failure whose
  reason starts with :data:`INVALID_REQUEST`.

A prompt that does not fit the model is a row failure whose reason starts with
:data:`PROMPT_TOO_LONG` (see :func:`check_length`); :mod:`scheduler.results` maps both
prefixes to OpenAI error codes.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from scheduler.engines.base import Row, RowFailure

if TYPE_CHECKING:
    from scheduler.recipe import Recipe

__all__ = [
    "CHAT_URL",
    "INVALID_REQUEST",
    "PROMPT_TOO_LONG",
    "GenerationRequest",
    "Sampling",
    "build_request",
    "check_length",
    "encode_prompt",
]

PROMPT_TOO_LONG = "prompt too long"
INVALID_REQUEST = "invalid request"
CHAT_URL = "/v1/chat/completions"
_ROLES = frozenset({"system", "developer", "user", "assistant"})


class Tokenizer(Protocol):
    """The part of a Hugging Face tokenizer that prompt building uses."""

    chat_template: str | None

    def encode(self, text: str, *, add_special_tokens: bool = ...) -> list[int]: ...

    def apply_chat_template(
        self,
        conversation: list[dict[str, str]],
        *,
        tokenize: bool = ...,
        add_generation_prompt: bool = ...,
    ) -> Any: ...


@dataclass(frozen=True)
class Sampling:
    """Sampling parameters of one request (hashable: rows are grouped by it)."""

    temperature: float
    top_p: float
    max_tokens: int
    seed: int | None
    stop: tuple[str, ...] | None


@dataclass(frozen=True)
class GenerationRequest:
    """One row as the engines see it: messages to render, and how to sample."""

    messages: tuple[tuple[str, str], ...]  # (role, content), in order
    sampling: Sampling
    chat: bool  # use the tokenizer's chat template when it has one

    def as_chat(self) -> list[dict[str, str]]:
        """The messages in the shape ``apply_chat_template`` takes."""
        return [{"role": role, "content": content} for role, content in self.messages]

    def as_text(self) -> str:
        """A plain-text prompt for models without a chat template.

        A recipe prompt (system + user) is the system text, a blank line and the user text;
        a longer conversation is written as ``Role: content`` turns ending on ``Assistant:``.
        """
        roles = [role for role, _ in self.messages]
        if roles in (["user"], ["system", "user"]):
            return "\n\n".join(content for _, content in self.messages)
        turns = [f"{role.capitalize()}: {content}" for role, content in self.messages]
        return "\n".join([*turns, "Assistant:"])


def build_request(row: Row, recipe: Recipe) -> GenerationRequest | RowFailure:
    """Turn one row into a request, or a :class:`RowFailure` saying what is wrong with it."""
    s = recipe.sampling
    base = Sampling(
        temperature=s.temperature,
        top_p=s.top_p,
        max_tokens=s.max_tokens,
        seed=s.seed,
        stop=tuple(s.stop) if s.stop else None,
    )
    body = row.get("body")
    if body is not None:
        return _from_body(row, body, base)
    prompt = recipe.prompt
    template = prompt.template if prompt is not None else "{text}"
    try:
        user = template.format_map(row)
    except KeyError as e:
        return RowFailure(
            f"prompt.template: the row has no field {e.args[0]!r} "
            f"(fields: {', '.join(sorted(row))})"
        )
    except (ValueError, IndexError, AttributeError) as e:
        return RowFailure(f"prompt.template: cannot format the template ({e})")
    messages: list[tuple[str, str]] = []
    if prompt is not None and prompt.system:
        messages.append(("system", prompt.system))
    messages.append(("user", user))
    return GenerationRequest(
        messages=tuple(messages), sampling=base, chat=prompt.chat if prompt else True
    )


def _from_body(row: Row, body: object, base: Sampling) -> GenerationRequest | RowFailure:
    """Validate an OpenAI chat-completions request body and read it into a request."""

    def bad(why: str) -> RowFailure:
        return RowFailure(f"{INVALID_REQUEST}: {why}")

    url = row.get("url")
    if url not in (None, CHAT_URL):
        return bad(f"url {url!r} is not supported (skybatch runs {CHAT_URL} requests)")
    method = row.get("method")
    if method not in (None, "POST"):
        return bad(f"method {method!r} is not supported (use POST)")
    if not isinstance(body, Mapping):
        return bad("body must be a JSON object")
    raw = body.get("messages")
    if not isinstance(raw, list) or not raw:
        return bad("body.messages must be a non-empty list of {role, content} objects")
    messages: list[tuple[str, str]] = []
    for i, m in enumerate(raw):
        if not isinstance(m, Mapping) or m.get("role") not in _ROLES:
            return bad(f"body.messages[{i}] needs a role among {', '.join(sorted(_ROLES))}")
        content = _content_text(m.get("content"))
        if content is None:
            return bad(f"body.messages[{i}].content must be text or a list of text parts")
        # OpenAI's newer "developer" role is the system prompt under another name.
        messages.append(("system" if m["role"] == "developer" else str(m["role"]), content))
    if body.get("n", 1) != 1:
        return bad("body.n must be 1 (one completion per request)")
    try:
        sampling = _body_sampling(body, base)
    except ValueError as e:
        return bad(str(e))
    return GenerationRequest(messages=tuple(messages), sampling=sampling, chat=True)


def _content_text(content: object) -> str | None:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        parts = []
        for part in content:
            if not (isinstance(part, Mapping) and part.get("type") == "text"):
                return None
            text = part.get("text")
            if not isinstance(text, str):
                return None
            parts.append(text)
        return "".join(parts)
    return None


def _body_sampling(body: Mapping[str, Any], base: Sampling) -> Sampling:
    max_tokens = body.get("max_completion_tokens", body.get("max_tokens", base.max_tokens))
    if isinstance(max_tokens, bool) or not isinstance(max_tokens, int) or max_tokens <= 0:
        raise ValueError(f"body.max_tokens must be a positive integer (got {max_tokens!r})")
    temperature = body.get("temperature", base.temperature)
    if not _number(temperature) or not 0.0 <= temperature <= 2.0:
        raise ValueError(f"body.temperature must be between 0 and 2 (got {temperature!r})")
    top_p = body.get("top_p", base.top_p)
    if not _number(top_p) or not 0.0 < top_p <= 1.0:
        raise ValueError(f"body.top_p must be in (0, 1] (got {top_p!r})")
    seed = body.get("seed", base.seed)
    if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int)):
        raise ValueError(f"body.seed must be an integer (got {seed!r})")
    stop_raw = body.get("stop", list(base.stop) if base.stop else None)
    if isinstance(stop_raw, str):
        stop_raw = [stop_raw]
    if stop_raw is not None and (
        not isinstance(stop_raw, list) or not all(isinstance(x, str) and x for x in stop_raw)
    ):
        raise ValueError(f"body.stop must be a string or a list of strings (got {stop_raw!r})")
    return Sampling(
        temperature=float(temperature),
        top_p=float(top_p),
        max_tokens=max_tokens,
        seed=seed,
        stop=tuple(stop_raw) if stop_raw else None,
    )


def _number(x: object) -> bool:
    return isinstance(x, int | float) and not isinstance(x, bool)


def encode_prompt(request: GenerationRequest, tokenizer: Tokenizer) -> tuple[str, list[int]]:
    """The prompt text and its token ids, as the model will see them.

    With a chat template the rendered text already holds the special tokens (BOS, turn
    markers), so it is encoded without adding them again: a second BOS changes the output.
    """
    if request.chat and getattr(tokenizer, "chat_template", None):
        text = tokenizer.apply_chat_template(
            request.as_chat(), tokenize=False, add_generation_prompt=True
        )
        return str(text), list(tokenizer.encode(str(text), add_special_tokens=False))
    text = request.as_text()
    return text, list(tokenizer.encode(text, add_special_tokens=True))


def check_length(
    prompt_tokens: int, max_tokens: int, max_model_len: int | None, *, what: str
) -> RowFailure | None:
    """A failure when ``prompt_tokens + max_tokens`` does not fit ``max_model_len``.

    ``what`` names where the limit comes from (``max_model_len``, the model's positions),
    so the reason tells the user which knob to turn.
    """
    if max_model_len is None or prompt_tokens + max_tokens <= max_model_len:
        return None
    return RowFailure(
        f"{PROMPT_TOO_LONG}: {prompt_tokens} prompt tokens + {max_tokens} max_tokens = "
        f"{prompt_tokens + max_tokens} > {max_model_len} ({what}); shorten the text, "
        "lower max_tokens or raise the limit"
    )


def stop_text(text: str, stop: Sequence[str] | None) -> tuple[str, bool]:
    """Cut ``text`` at the earliest stop string; True when one was found."""
    if not stop:
        return text, False
    cuts = [i for i in (text.find(s) for s in stop) if i >= 0]
    if not cuts:
        return text, False
    return text[: min(cuts)], True
