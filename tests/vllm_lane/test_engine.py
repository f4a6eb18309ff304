"""The vllm engine through the real ``vllm.LLM`` on a CPU: one model load for the module.

What the fake in ``tests/unit/test_vllm_adapter.py`` cannot show: the prompt the engine
builds is the prompt vLLM generates from (checked by generating from the expected token ids
directly), token counts are the tokenizer's, prompts that do not fit are dead before vLLM
(vLLM itself would fail the whole call), and sampling options change what comes out.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from scheduler.engines import PROMPT_TOO_LONG, RowFailure
from scheduler.engines.vllm import VllmEngine
from scheduler.recipe import recipe_from_dict

pytestmark = [pytest.mark.vllm, pytest.mark.slow, pytest.mark.timeout(900)]

SYSTEM = "Summarise the review in one line."
TEXTS = [
    f"order {i} arrived {'late' if i % 3 else 'early'} and the box was {'damp' if i % 2 else 'torn'}"
    for i in range(24)
]
ROWS = [{"id": f"r{i}", "text": t} for i, t in enumerate(TEXTS)]
LONG = {"id": "long", "text": "late " * 400}  # > max_model_len (256) tokens


def engine(
    one_load: Any,
    model: Path,
    options: dict[str, Any],
    *,
    prompt: dict[str, Any] | None = None,
    **sampling: Any,
) -> VllmEngine:
    """An engine for a recipe over the module's one loaded model."""
    recipe = recipe_from_dict(
        {
            "name": "vllm-cpu",
            "input": {"path": "x.jsonl"},
            "task": "generate",
            "model": {"engine": "vllm", "name": str(model), "options": options},
            "prompt": prompt or {"system": SYSTEM, "template": "Review: {text}"},
            "sampling": {"temperature": 0.0, "max_tokens": 12, **sampling},
        }
    )
    return VllmEngine(recipe, vllm_module=one_load)


@pytest.fixture(scope="module")
def make(one_load: Any, tiny_llama: Path, builder: Any) -> Any:
    def _make(**kw: Any) -> VllmEngine:
        return engine(one_load, tiny_llama, builder.CPU_OPTIONS, **kw)

    return _make


@pytest.fixture(scope="module")
def tok(make: Any) -> Any:
    return make()._tokenizer


def raw(one_load: Any, make: Any, ids: list[list[int]], **params: Any) -> list[Any]:
    """vLLM's own answer for exact prompt ids (the reference the engine must match)."""
    llm = make()._llm
    sp = one_load.SamplingParams(**{"temperature": 0.0, "max_tokens": 12, **params})
    return list(llm.generate([{"prompt_token_ids": i} for i in ids], sp, use_tqdm=False))


def test_whole_shard_chat_prompts_counts_and_long_prompts_dead(
    make: Any, tok: Any, one_load: Any
) -> None:
    eng = make()
    rows = [*ROWS[:10], LONG, *ROWS[10:]]
    out = eng.infer(rows)  # one call, one shard: vLLM would refuse the whole call on LONG
    assert len(out) == len(rows)
    dead = out[10]
    assert isinstance(dead, RowFailure) and dead.reason.startswith(PROMPT_TOO_LONG)
    assert "> 256 (max_model_len)" in dead.reason
    good = [r for r in rows if r is not LONG]
    results = [r for r in out if not isinstance(r, RowFailure)]
    assert len(results) == len(good)
    # The chat template with the system prompt, rendered and counted by the tokenizer.
    expected_ids = [
        tok.encode(
            tok.apply_chat_template(
                [
                    {"role": "system", "content": SYSTEM},
                    {"role": "user", "content": f"Review: {r['text']}"},
                ],
                tokenize=False,
                add_generation_prompt=True,
            ),
            add_special_tokens=False,
        )
        for r in good
    ]
    assert "<|system|>" in tok.decode(expected_ids[0])
    reference = raw(one_load, make, expected_ids)
    for res, ids, ref in zip(results, expected_ids, reference, strict=True):
        assert res["prompt_tokens"] == len(ids)
        best = ref.outputs[0]
        assert res["completion"] == best.text  # same prompt ids in, same answer out
        assert res["completion_tokens"] == len(best.token_ids)
        # vLLM's detokenizer holds back a trailing partial UTF-8 character; the rest is the
        # tokenizer's decoding of exactly those tokens.
        decoded = tok.decode(best.token_ids, skip_special_tokens=True)
        assert decoded.startswith(res["completion"].rstrip("\ufffd"))
        assert res["finish_reason"] == best.finish_reason
        if res["finish_reason"] == "length":
            assert res["completion_tokens"] == 12
        else:
            assert res["finish_reason"] == "stop" and res["completion_tokens"] <= 12
    assert {r["finish_reason"] for r in results} <= {"stop", "length"}
    assert any(r["completion"].strip() for r in results)


def test_template_prompt_without_chat(make: Any, tok: Any, one_load: Any) -> None:
    eng = make(prompt={"system": SYSTEM, "template": "Review: {text}", "chat": False})
    out = eng.infer(ROWS[:6])
    ids = [
        tok.encode(f"{SYSTEM}\n\nReview: {r['text']}", add_special_tokens=True) for r in ROWS[:6]
    ]
    assert "<|system|>" not in tok.decode(ids[0])
    for res, expected, ref in zip(out, ids, raw(one_load, make, ids), strict=True):
        assert isinstance(res, dict)
        assert res["prompt_tokens"] == len(expected)
        assert res["completion"] == ref.outputs[0].text


def test_same_seed_same_completions_other_seed_other_ones(make: Any) -> None:
    first = make(temperature=1.0, seed=7).infer(ROWS)
    again = make(temperature=1.0, seed=7).infer(ROWS)
    other = make(temperature=1.0, seed=8).infer(ROWS)
    assert [r["completion"] for r in first] == [r["completion"] for r in again]  # type: ignore[index]
    assert [r["completion"] for r in first] != [r["completion"] for r in other]  # type: ignore[index]


def test_sampling_options_reach_vllm(make: Any) -> None:
    greedy = make().infer(ROWS)
    # max_tokens: no completion is longer, and cut ones are exactly that long.
    short = make(max_tokens=3).infer(ROWS)
    assert all(r["completion_tokens"] <= 3 for r in short)  # type: ignore[index]
    assert any(r["finish_reason"] == "length" and r["completion_tokens"] == 3 for r in short)  # type: ignore[index]
    # temperature: sampling at 1.5 leaves the greedy path.
    hot = make(temperature=1.5, seed=1).infer(ROWS)
    assert [r["completion"] for r in hot] != [r["completion"] for r in greedy]  # type: ignore[index]
    # top_p: a nucleus of one token is greedy again, whatever the temperature.
    narrow = make(temperature=1.5, seed=1, top_p=1e-6).infer(ROWS)
    assert [r["completion"] for r in narrow] == [r["completion"] for r in greedy]  # type: ignore[index]
    # stop: a word of a greedy completion ends it there, with finish_reason "stop".
    text = next(str(r["completion"]) for r in greedy if len(str(r["completion"]).strip()) > 3)  # type: ignore[index]
    word = text.strip()[1:3]
    stopped = make(stop=[word]).infer(ROWS)
    cut = [
        (g, s)
        for g, s in zip(greedy, stopped, strict=True)
        if word in str(g["completion"])  # type: ignore[index]
    ]
    assert cut
    for g, s in cut:
        assert s["completion"] == str(g["completion"]).split(word)[0]  # type: ignore[index]
        assert s["finish_reason"] == "stop"  # type: ignore[index]


def test_describe_names_the_cpu(make: Any) -> None:
    d = make().describe()
    assert (d["engine"], d["device"], d["accelerator"]) == ("vllm", "cpu", "cpu")
    assert d["max_model_len"] == 256
    assert d["engine_args"]["dtype"] == "float32"
