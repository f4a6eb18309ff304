"""Prompt building for task ``generate``: recipe rows, OpenAI request bodies, length checks."""

from __future__ import annotations

from typing import Any

import pytest

from scheduler.engines import RowFailure
from scheduler.engines._prompts import (
    GenerationRequest,
    Sampling,
    build_request,
    check_length,
    stop_text,
)
from scheduler.recipe import Recipe, recipe_from_dict


def make_recipe(prompt: dict[str, Any] | None = None, **sampling: Any) -> Recipe:
    return recipe_from_dict(
        {
            "name": "p",
            "input": {"path": "x.jsonl"},
            "task": "generate",
            "model": {"engine": "torch", "name": "m"},
            "prompt": prompt,
            "sampling": {"temperature": 0.2, "max_tokens": 50, **sampling},
        }
    )


BASE = Sampling(temperature=0.2, top_p=1.0, max_tokens=50, seed=None, stop=None)


def chat(*messages: dict[str, Any], **body: Any) -> dict[str, Any]:
    return {"id": "r", "text": "", "body": {"messages": list(messages), **body}}


def user(text: str) -> dict[str, Any]:
    return {"role": "user", "content": text}


def test_recipe_row_uses_template_over_fields_and_system() -> None:
    r = make_recipe({"system": "S", "template": "{title}\n{text}"}, seed=3, stop=["##"])
    req = build_request({"id": "1", "text": "body {braces} stay", "title": "T"}, r)
    assert req == GenerationRequest(
        messages=(("system", "S"), ("user", "T\nbody {braces} stay")),
        sampling=Sampling(temperature=0.2, top_p=1.0, max_tokens=50, seed=3, stop=("##",)),
        chat=True,
    )
    assert isinstance(req, GenerationRequest)
    assert req.as_text() == "S\n\nT\nbody {braces} stay"


def test_no_prompt_section_means_the_text_alone() -> None:
    req = build_request({"id": "1", "text": "hello"}, make_recipe(None))
    assert isinstance(req, GenerationRequest)
    assert req.messages == (("user", "hello"),) and req.as_text() == "hello"


def test_bad_template_is_a_row_failure() -> None:
    res = build_request({"id": "1", "text": "t"}, make_recipe({"template": "{text!z}"}))
    assert isinstance(res, RowFailure) and res.reason.startswith("prompt.template: cannot format")


def test_body_overrides_recipe_sampling_and_multipart_content_joins() -> None:
    row = chat(
        {"role": "system", "content": "sys"},
        {"role": "user", "content": [{"type": "text", "text": "a"}, {"type": "text", "text": "b"}]},
        {"role": "assistant", "content": "c"},
        user("d"),
        max_completion_tokens=9,
        top_p=0.5,
        stop=["x", "y"],
    )
    req = build_request(row, make_recipe({"system": "ignored for bodies"}))
    assert isinstance(req, GenerationRequest)
    assert req.messages == (("system", "sys"), ("user", "ab"), ("assistant", "c"), ("user", "d"))
    assert req.sampling == Sampling(0.2, 0.5, 9, None, ("x", "y"))
    assert req.as_text() == "System: sys\nUser: ab\nAssistant: c\nUser: d\nAssistant:"


@pytest.mark.parametrize(
    ("row", "reason"),
    [
        ({"id": "r", "body": []}, "body must be a JSON object"),
        (chat(), "body.messages must be a non-empty list"),
        (chat({"role": "user"}), "body.messages[0].content must be text"),
        (chat({"content": "x"}), "body.messages[0] needs a role"),
        (chat(user("x"), n=2), "body.n must be 1"),
        (chat(user("x"), max_tokens="5"), "body.max_tokens must be a positive integer (got '5')"),
        (chat(user("x"), max_tokens=True), "body.max_tokens must be a positive integer"),
        (chat(user("x"), temperature=3), "body.temperature must be between 0 and 2 (got 3)"),
        (chat(user("x"), top_p=0), "body.top_p must be in (0, 1] (got 0)"),
        (chat(user("x"), seed=1.5), "body.seed must be an integer"),
        (chat(user("x"), stop=[1]), "body.stop must be a string or a list of strings"),
        ({**chat(user("x")), "url": "/v1/completions"}, "url '/v1/completions' is not supported"),
        ({**chat(user("x")), "method": "GET"}, "method 'GET' is not supported"),
    ],
)
def test_invalid_bodies_are_row_failures(row: dict[str, Any], reason: str) -> None:
    res = build_request(row, make_recipe())
    assert isinstance(res, RowFailure)
    assert res.reason.startswith("invalid request: ")
    assert reason in res.reason


def test_check_length_counts_prompt_plus_max_tokens() -> None:
    assert check_length(90, 10, 100, what="max_model_len") is None
    assert check_length(10**6, 10, None, what="max_model_len") is None
    res = check_length(91, 10, 100, what="max_model_len")
    assert res == RowFailure(
        "prompt too long: 91 prompt tokens + 10 max_tokens = 101 > 100 (max_model_len); "
        "shorten the text, lower max_tokens or raise the limit"
    )


def test_stop_text_cuts_at_the_earliest_stop() -> None:
    assert stop_text("abcXdefY", ("Y", "X")) == ("abc", True)
    assert stop_text("abc", ("Z",)) == ("abc", False)
    assert stop_text("abc", None) == ("abc", False)
