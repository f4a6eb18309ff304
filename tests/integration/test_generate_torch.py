"""Real generation on CPU through transformers, with a tiny random causal LM built here.

The model is a two-layer Llama initialised at random from a config inside this file, with
a byte-level BPE tokenizer trained on a few sentences: no download, a second to build.
Its words are noise, which is all the pipeline needs: prompts, left padding, batched
``generate``, token counts, finish reasons, dead-lettering and determinism are real.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest

from scheduler.engines import RowFailure, create_engine
from scheduler.engines.torch_generate import TorchGenerateEngine
from scheduler.errors import EngineError
from scheduler.recipe import Recipe, recipe_from_dict

SPECIALS = ["<|endoftext|>", "<|pad|>", "<|system|>", "<|user|>", "<|assistant|>", "<|end|>"]
CHAT_TEMPLATE = (
    "{% for m in messages %}<|{{ m['role'] }}|>{{ m['content'] }}<|end|>{% endfor %}"
    "{% if add_generation_prompt %}<|assistant|>{% endif %}"
)
SENTENCES = [
    "The kettle arrived with a cracked lid and I would like a replacement.",
    "My router stopped working after two days; please tell me how to return it.",
    "Summarise the customer's message in one sentence.",
]
TEXTS = [f"note {i}: " + SENTENCES[i % 3][: 20 + 3 * i] for i in range(12)]


def build_tiny_lm(out: Path, *, eos_always: bool = False) -> None:
    """Save a random two-layer Llama and a byte-level BPE tokenizer (with chat template).

    ``eos_always``: an all-zero output layer, so every logit ties and greedy decoding picks
    token 0, which is EOS: every row ends at once with finish_reason ``stop``.
    """
    import torch
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()

    bpe = Tokenizer(models.BPE())
    bpe.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    bpe.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=320,
        special_tokens=SPECIALS,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    bpe.train_from_iterator(SENTENCES * 4, trainer=trainer)
    tok = PreTrainedTokenizerFast(
        tokenizer_object=bpe,
        bos_token=SPECIALS[0],
        eos_token=SPECIALS[0],
        pad_token=SPECIALS[1],
        additional_special_tokens=SPECIALS[2:],
    )
    tok.chat_template = CHAT_TEMPLATE
    config = LlamaConfig(
        vocab_size=len(tok),
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=256,
        tie_word_embeddings=not eos_always,
        initializer_range=0.2,
        bos_token_id=tok.bos_token_id,
        eos_token_id=tok.eos_token_id,
        pad_token_id=tok.pad_token_id,
    )
    torch.manual_seed(0)
    model = LlamaForCausalLM(config)
    with torch.no_grad():  # special tokens decode to nothing: keep greedy picks on text
        for t in SPECIALS[1:]:
            model.model.embed_tokens.weight[tok.convert_tokens_to_ids(t)] = 0.0
        if eos_always:
            assert tok.eos_token_id == 0
            model.lm_head.weight.zero_()
    model.save_pretrained(out)
    tok.save_pretrained(out)


@pytest.fixture(scope="module")
def tiny_lm(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("tiny-lm")
    build_tiny_lm(out)
    return out


@pytest.fixture(scope="module")
def eos_lm(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("eos-lm")
    build_tiny_lm(out, eos_always=True)
    return out


@pytest.fixture(scope="module")
def tiny_lm_plain(tiny_lm: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The same model with no chat template: prompts are system + template text."""
    out = tmp_path_factory.mktemp("tiny-lm-plain") / "m"
    shutil.copytree(tiny_lm, out)
    (out / "chat_template.jinja").unlink(missing_ok=True)
    config = json.loads((out / "tokenizer_config.json").read_text())
    config.pop("chat_template", None)
    (out / "tokenizer_config.json").write_text(json.dumps(config))
    return out


def recipe(model_dir: Path, *, options: dict[str, Any] | None = None, **over: Any) -> Recipe:
    data: dict[str, Any] = {
        "name": "gen-tiny",
        "input": {"path": "in.jsonl", "id_column": "id"},
        "task": "generate",
        "model": {
            "engine": "torch",
            "name": str(model_dir),
            "batch_size": 4,
            "options": {"device": "cpu", **(options or {})},
        },
        "prompt": {"system": "Summarise.", "template": "{text}"},
        "sampling": {"temperature": 0.0, "max_tokens": 6},
    }
    data.update(over)
    return recipe_from_dict(data)


def rows(n: int = len(TEXTS)) -> list[dict[str, Any]]:
    return [{"id": f"r{i}", "text": TEXTS[i]} for i in range(n)]


def completions(results: list[Any]) -> list[str]:
    return [r["completion"] for r in results if isinstance(r, dict)]


# --- the engine ----------------------------------------------------------------------------


def test_rows_in_equal_rows_out_plus_dead_with_token_counts(tiny_lm: Path) -> None:
    engine = create_engine(recipe(tiny_lm, options={"max_model_len": 64}))
    assert isinstance(engine, TorchGenerateEngine) and engine.whole_shard is False
    batch = [*rows(8), {"id": "long", "text": "word " * 60}]
    out = engine.infer(batch)
    assert len(out) == len(batch)
    ok = [r for r in out if isinstance(r, dict)]
    dead = [r for r in out if isinstance(r, RowFailure)]
    assert len(ok) + len(dead) == len(batch) and len(dead) == 1
    assert isinstance(out[-1], RowFailure)
    assert out[-1].reason.startswith("prompt too long: ")
    assert "+ 6 max_tokens" in out[-1].reason and "model.options.max_model_len" in out[-1].reason

    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(tiny_lm)
    for row, res in zip(batch, out, strict=False):
        if not isinstance(res, dict):
            continue
        rendered = tok.apply_chat_template(
            [{"role": "system", "content": "Summarise."}, {"role": "user", "content": row["text"]}],
            tokenize=False,
            add_generation_prompt=True,
        )
        assert res["prompt_tokens"] == len(tok.encode(rendered, add_special_tokens=False))
        assert 1 <= res["completion_tokens"] <= 6
        assert res["finish_reason"] in ("stop", "length")
        assert set(res) == {"completion", "prompt_tokens", "completion_tokens", "finish_reason"}


def test_left_padding_a_row_alone_equals_the_row_in_a_batch(tiny_lm: Path) -> None:
    engine = create_engine(recipe(tiny_lm))
    together = engine.infer(rows(6))  # prompts of different lengths: padding is exercised
    alone = [engine.infer([row])[0] for row in rows(6)]
    assert together == alone


def test_sampling_with_a_seed_is_deterministic(tiny_lm: Path) -> None:
    sampled = {"temperature": 1.0, "top_p": 0.95, "max_tokens": 8, "seed": 7}
    first = create_engine(recipe(tiny_lm, sampling=sampled)).infer(rows())
    second = create_engine(recipe(tiny_lm, sampling=sampled)).infer(rows())
    assert first == second
    other = create_engine(recipe(tiny_lm, sampling={**sampled, "seed": 8})).infer(rows())
    assert completions(other) != completions(first)


def test_stop_string_cuts_the_completion(tiny_lm: Path) -> None:
    row = rows(1)
    [free] = create_engine(recipe(tiny_lm, sampling={"max_tokens": 12})).infer(row)
    assert isinstance(free, dict)
    text = free["completion"]
    stop = text[3:5]
    assert stop.strip(), f"the greedy completion {text!r} is too short to pick a stop string"
    [cut] = create_engine(recipe(tiny_lm, sampling={"max_tokens": 12, "stop": [stop]})).infer(row)
    assert isinstance(cut, dict)
    assert cut["completion"] == text[: text.find(stop)]
    assert cut["finish_reason"] == "stop"
    assert cut["completion_tokens"] <= free["completion_tokens"]


def test_eos_ends_a_row_with_stop_and_counts_the_eos_token(eos_lm: Path) -> None:
    out = create_engine(recipe(eos_lm, sampling={"max_tokens": 5})).infer(rows(3))
    for res in out:
        assert isinstance(res, dict)
        assert (res["completion"], res["completion_tokens"], res["finish_reason"]) == (
            "",
            1,
            "stop",
        )


def test_without_chat_template_prompt_is_system_and_template(tiny_lm_plain: Path) -> None:
    from transformers import AutoTokenizer

    engine = create_engine(recipe(tiny_lm_plain, prompt={"system": "Sys.", "template": "[{text}]"}))
    [res] = engine.infer(rows(1))
    tok = AutoTokenizer.from_pretrained(tiny_lm_plain)
    assert tok.chat_template is None
    assert isinstance(res, dict)
    assert res["prompt_tokens"] == len(tok.encode(f"Sys.\n\n[{TEXTS[0]}]"))


def test_openai_batch_rows_use_their_own_max_tokens(tiny_lm: Path) -> None:
    engine = create_engine(recipe(tiny_lm, prompt=None, sampling={"max_tokens": 6}))
    batch = [
        {
            "id": "a",
            "text": "hi",
            "body": {"messages": [{"role": "user", "content": "hi"}], "max_tokens": 2},
        },
        {"id": "b", "text": "yo", "body": {"messages": [{"role": "user", "content": "yo"}]}},
        {"id": "c", "text": "x", "body": {"messages": [{"role": "robot", "content": "x"}]}},
    ]
    a, b, c = engine.infer(batch)
    assert isinstance(a, dict) and a["completion_tokens"] <= 2
    # a and b share one generate call run to 6 tokens; a, cut at 2, equals a run alone.
    assert engine.infer(batch[:1]) == [a]
    assert isinstance(b, dict) and b["completion_tokens"] <= 6
    assert isinstance(c, RowFailure)
    assert c.reason.startswith("invalid request: body.messages[0] needs a role")


def test_describe_and_close(tiny_lm: Path) -> None:
    engine = create_engine(recipe(tiny_lm))
    d = engine.describe()
    assert d["engine"] == "torch" and d["device"] == "cpu" and d["dtype"] == "float32"
    assert d["model"] == str(tiny_lm) and d["max_model_len"] == 256
    engine.close()


def test_unknown_option_and_missing_model_are_clear_errors(tmp_path: Path) -> None:
    with pytest.raises(
        EngineError, match=r"model.options.beams: unknown option for torch generation"
    ):
        create_engine(recipe(tmp_path, options={"beams": 4}))
    with pytest.raises(EngineError, match=r"model.name: cannot load '.*nowhere' for generation"):
        create_engine(recipe(tmp_path / "nowhere"))


def test_generate_options_are_the_torch_engines_and_validate_checks_them(
    tiny_lm: Path, tmp_path: Path
) -> None:
    from scheduler.engines import check_options
    from scheduler.errors import RecipeError

    engine = create_engine(recipe(tiny_lm, options={"device": "auto", "dtype": "auto"}))
    assert engine.describe()["device"] == "cpu"  # auto, on a machine without CUDA
    engine.close()
    with pytest.raises(
        RecipeError, match=r"model.options.beams: unknown option for torch generation"
    ):
        check_options(recipe(tiny_lm, options={"beams": 4}))  # before any worker starts
    with pytest.raises(RecipeError, match=r"model.options.dtype: use one of auto, float32"):
        check_options(recipe(tiny_lm, options={"dtype": "fp8"}))
    with pytest.raises(RecipeError, match=r"model.options.max_model_len: must be a positive"):
        check_options(recipe(tiny_lm, options={"max_model_len": 0}))


# --- end to end through `skybatch run` -----------------------------------------------------


def _run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> dict[str, Any]:
    from scheduler.cli import main

    try:
        main([*argv, "--json"])
    except SystemExit as exc:  # a failed command exits; a successful one returns
        raise AssertionError(f"exit {exc.code}: {capsys.readouterr().err}") from exc
    out: dict[str, Any] = json.loads(capsys.readouterr().out)
    return out


@pytest.mark.slow
def test_skybatch_run_generates_counts_tokens_and_repeats_with_a_seed(
    tiny_lm: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")  # the worker processes inherit it
    data = tmp_path / "notes.jsonl"
    lines = [json.dumps({"id": f"n{i}", "text": t}) for i, t in enumerate(TEXTS)]
    lines.insert(5, '{"id": "broken", "text": ')  # malformed: an input dead row
    lines.append(json.dumps({"id": "huge", "text": "word " * 300}))  # over 256 positions
    data.write_text("\n".join(lines) + "\n")
    recipe = tmp_path / "gen.yaml"
    recipe.write_text(
        f"""\
name: gen-e2e
input: {{path: {data}, id_column: id}}
task: generate
model: {{engine: torch, name: {tiny_lm}, batch_size: 4, options: {{device: cpu}}}}
prompt: {{system: Summarise., template: "{{text}}"}}
sampling: {{temperature: 0.9, top_p: 0.95, max_tokens: 6, seed: 42}}
shards: {{rows_per_shard: 5}}
limits: {{max_error_rate: 0.5, retries: 1}}
"""
    )
    store = str(tmp_path / "runs")
    first = _run(
        ["run", str(recipe), "--store", store, "--run-id", "gen-a", "--no-progress"], capsys
    )
    assert first["state"] == "done"
    assert first["rows_in"] == len(lines) == first["rows_out"] + first["rows_dead"]
    assert (first["rows_out"], first["rows_dead"]) == (len(TEXTS), 2)
    assert first["tokens_in"] > 0 and 0 < first["tokens_out"] <= 6 * len(TEXTS)

    query = "select id, completion, prompt_tokens, completion_tokens, finish_reason from results order by id"
    got = _run(["results", "gen-a", "--store", store, "--sql", query], capsys)
    assert [r["id"] for r in got["rows"]] == sorted(f"n{i}" for i in range(len(TEXTS)))
    assert sum(r["prompt_tokens"] for r in got["rows"]) == first["tokens_in"]
    assert sum(r["completion_tokens"] for r in got["rows"]) == first["tokens_out"]
    assert all(r["finish_reason"] in ("stop", "length") for r in got["rows"])
    # Every row records the revision the run was created with (the weights' hash).
    from scheduler.store import RunStore

    revision = RunStore(store, "gen-a").read_run_info()["model_revision"]
    assert revision and revision.startswith("local-")
    revs = _run(["results", "gen-a", "--store", store, "--sql",
                 "select distinct model_revision from results"], capsys)  # fmt: skip
    assert revs["rows"] == [{"model_revision": revision}]

    # The same recipe again under another run id: the seed makes every completion repeat.
    second = _run(
        ["run", str(recipe), "--store", store, "--run-id", "gen-b", "--no-progress"], capsys
    )
    assert second["rows_out"] == first["rows_out"]
    again = _run(["results", "gen-b", "--store", store, "--sql", query], capsys)
    assert again["rows"] == got["rows"]
