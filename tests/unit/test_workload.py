"""Workload measurement: rows, input tokens (tokenizer or approximation), output tokens."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from scheduler.errors import InputError
from scheduler.plan import CHAT_OVERHEAD_TOKENS, count_tokens, measure_workload
from scheduler.recipe import recipe_from_dict

MINILM = "sentence-transformers/all-MiniLM-L6-v2"


def write_jsonl(path: Path, texts: list[str]) -> Path:
    path.write_text(
        "".join(json.dumps({"id": str(i), "text": t}) + "\n" for i, t in enumerate(texts))
    )
    return path


def make_recipe(path: str, **over: Any) -> Any:
    data: dict[str, Any] = {
        "name": "w",
        "input": {"path": path, "format": "jsonl", "id_column": "id"},
        "task": "embed",
        "model": {"engine": "python", "name": "mod:func"},
    }
    for key, value in over.items():
        data[key] = {**data.get(key, {}), **value} if isinstance(value, dict) else value
    return recipe_from_dict(data)


def test_rows_from_metadata_and_chars_over_four(tmp_path: Path) -> None:
    src = write_jsonl(tmp_path / "in.jsonl", ["x" * 40] * 30 + ["y" * 400] * 10)
    w = measure_workload(make_recipe(str(src)))
    assert w.rows == 40
    assert w.rows_source == "input metadata (1 file)"
    assert w.input_tokens_per_row == pytest.approx((30 * 10 + 10 * 100) / 40)
    assert w.max_input_tokens == 100
    assert w.input_tokens_source.startswith("approximation: characters / 4")
    assert w.output_tokens_per_row == 0 and w.output_tokens_source == "none (task embed)"


def test_the_models_tokenizer_when_it_is_on_this_machine(tmp_path: Path) -> None:
    texts = ["The quick brown fox jumps over the lazy dog."] * 5
    src = write_jsonl(tmp_path / "in.jsonl", texts)
    recipe = make_recipe(str(src), model={"engine": "torch", "name": MINILM})
    w = measure_workload(recipe)
    counts, how = count_tokens(texts, model=MINILM)
    assert how == f"tokenizer of {MINILM}"
    assert counts[0] == 12  # 10 word pieces + [CLS] and [SEP]
    assert w.input_tokens_per_row == 12
    assert w.input_tokens_source == f"tokenizer of {MINILM}, sample of 5 rows"


def test_unknown_model_falls_back_to_the_approximation() -> None:
    counts, how = count_tokens(["abcdefgh"], model="nobody/no-such-model-here")
    assert counts == [2]
    assert how.startswith("approximation")


def test_generate_counts_the_prompt_and_budgets_output(tmp_path: Path) -> None:
    src = write_jsonl(tmp_path / "in.jsonl", ["d" * 400] * 4)
    base = {
        "task": "generate",
        "model": {"engine": "vllm", "name": "org/unknown-llm"},
        "prompt": {"system": "s" * 40, "template": "Doc: {text}"},
    }
    w = measure_workload(make_recipe(str(src), **base, sampling={"max_tokens": 300}))
    prompt_chars = 40 + 1 + len("Doc: ") + 400
    assert w.input_tokens_per_row == -(-prompt_chars // 4) + CHAT_OVERHEAD_TOKENS
    assert w.output_tokens_per_row == 300
    assert w.output_tokens_source.startswith("sampling.max_tokens (an upper bound")
    w = measure_workload(
        make_recipe(str(src), **base, sampling={"max_tokens": 300, "expected_tokens": 120})
    )
    assert (w.output_tokens_per_row, w.max_output_tokens) == (120, 300)
    assert w.output_tokens_source == "sampling.expected_tokens"
    assert w.context_tokens == w.max_input_tokens + 300


def test_remote_input_with_hints_is_not_read() -> None:
    recipe = make_recipe(
        "s3://no-such-bucket-skybatch/x/*.parquet",
        input={"format": "parquet", "rows_estimate": 10_000_000, "avg_input_tokens": 500},
    )
    w = measure_workload(recipe)
    assert (w.rows, w.input_tokens_per_row, w.max_input_tokens) == (10_000_000, 500, 1000)
    assert w.rows_source == "input.rows_estimate in the recipe"
    assert w.input_tokens_source == "input.avg_input_tokens in the recipe"


def test_local_input_wins_over_hints(tmp_path: Path) -> None:
    src = write_jsonl(tmp_path / "in.jsonl", ["abcd"] * 7)
    w = measure_workload(make_recipe(str(src), input={"rows_estimate": 99, "avg_input_tokens": 9}))
    assert (w.rows, w.input_tokens_per_row) == (7, 1)


def test_rows_given_by_the_caller_win(tmp_path: Path) -> None:
    src = write_jsonl(tmp_path / "in.jsonl", ["abcd"] * 7)
    assert measure_workload(make_recipe(str(src)), rows=123).rows == 123


def test_missing_local_input_is_an_input_error(tmp_path: Path) -> None:
    with pytest.raises(InputError, match=r"nothing\.jsonl"):
        measure_workload(make_recipe(str(tmp_path / "nothing.jsonl")))


def test_hints_do_not_change_the_recipe_digest(tmp_path: Path) -> None:
    plain = make_recipe("s3://b/x.parquet")
    hinted = make_recipe("s3://b/x.parquet", input={"rows_estimate": 5, "avg_input_tokens": 3})
    assert plain.digest() == hinted.digest()


def test_output_tokens_from_earlier_runs(tmp_path: Path) -> None:
    src = write_jsonl(tmp_path / "in.jsonl", ["abcd"] * 10)
    store = tmp_path / "runs"
    recipe = make_recipe(
        str(src),
        task="generate",
        model={"engine": "vllm", "name": "org/unknown-llm"},
        sampling={"max_tokens": 300, "expected_tokens": 200},
        store=str(store),
    )
    # The run-store layout (scheduler/store/README.md): run.json and done/ markers with token counts.
    run = store / "r1"
    (run / "done").mkdir(parents=True)
    (run / "run.json").write_text(json.dumps({"run_id": "r1", "recipe_digest": recipe.digest()}))
    for shard, (rows, tokens) in enumerate([(6, 600), (4, 200)]):
        marker = {
            "shard_id": f"s{shard}",
            "attempt": 0,
            "attempt_id": "a",
            "worker": "w",
            "out_file": "out/x",
            "out_size": 1,
            "out_sha256": "0",
            "dead_file": None,
            "rows_in": rows,
            "rows_out": rows,
            "rows_dead": 0,
            "ids_digest": "0",
            "tokens_out": tokens,
        }
        (run / "done" / f"s{shard}.json").write_text(json.dumps(marker))
    w = measure_workload(recipe)
    assert w.output_tokens_per_row == 80.0
    assert w.output_tokens_source == "earlier runs of this recipe (10 rows)"
