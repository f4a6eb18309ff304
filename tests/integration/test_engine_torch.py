"""The torch engine for real on CPU: MiniLM embeddings from the packaged weights, and tiny
randomly initialised classifiers built here from a config (no download)."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import pytest

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")
pytest.importorskip("sentence_transformers")

from scheduler.engines import create_engine  # noqa: E402
from scheduler.engines._models import resolve_model  # noqa: E402
from scheduler.engines.base import RowFailure  # noqa: E402
from scheduler.engines.torch import TorchEngine  # noqa: E402
from scheduler.errors import EngineError, RecipeError  # noqa: E402
from scheduler.recipe import Recipe, recipe_from_dict  # noqa: E402

MINILM = "sentence-transformers/all-MiniLM-L6-v2"
WORDS = [
    *("the", "a", "cat", "dog", "sat", "on", "mat", "good", "bad", "movie", "film", "was"),
    *("is", "very", "not", "really", "great", "awful", "plot", "actors", "story", "boring"),
    *("fun", "and", "but", "it", "i", "liked", "hated"),
]
SENTENCES = [
    "The cat sat on the mat.",
    "A dog slept on the rug all afternoon while the rain kept falling outside.",
    "Stock markets fell sharply after the central bank raised interest rates again.",
    "Hi",
    "Photosynthesis converts light energy into chemical energy stored in glucose.",
    "The recipe needs two cups of flour, one egg and a pinch of salt.",
]


@pytest.fixture(autouse=True)
def _offline(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")


def _recipe(task: str, name: str, *, batch_size: int = 4, **options: Any) -> Recipe:
    return recipe_from_dict(
        {
            "name": "t",
            "input": {"path": "rows.jsonl"},
            "task": task,
            "model": {
                "engine": "torch",
                "name": name,
                "batch_size": batch_size,
                "options": {"device": "cpu", **options},
            },
        }
    )


def _rows(*texts: Any, **extra: list[Any]) -> list[dict[str, Any]]:
    rows = [{"id": f"r{i}", "text": t} for i, t in enumerate(texts)]
    for column, values in extra.items():
        for row, value in zip(rows, values, strict=True):
            row[column] = value
    return rows


@pytest.fixture(scope="module")
def minilm() -> TorchEngine:
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("HF_HUB_OFFLINE", "1")
        engine = TorchEngine(_recipe("embed", MINILM, batch_size=3, normalize=True))
    return engine


# -- embed: MiniLM -------------------------------------------------------------------------


def test_minilm_embeddings_are_384_dim_unit_vectors(minilm: TorchEngine) -> None:
    results = minilm.infer(_rows(*SENTENCES))
    assert len(results) == len(SENTENCES)
    for result in results:
        assert isinstance(result, dict)
        vector = result["embedding"]
        assert len(vector) == 384
        assert all(isinstance(x, float) for x in vector[:5])
        assert math.isclose(math.sqrt(sum(x * x for x in vector)), 1.0, abs_tol=1e-4)


@pytest.mark.slow
def test_minilm_is_deterministic_and_batch_matches_one_by_one(minilm: TorchEngine) -> None:
    batch = minilm.infer(_rows(*SENTENCES))
    again = minilm.infer(_rows(*SENTENCES))
    assert batch == again
    for text, together in zip(SENTENCES, batch, strict=True):
        alone = minilm.infer(_rows(text))[0]
        assert isinstance(alone, dict) and isinstance(together, dict)
        # Row i's vector belongs to text i even though the batch ran length-sorted.
        diff = max(
            abs(a - b) for a, b in zip(alone["embedding"], together["embedding"], strict=True)
        )
        assert diff < 1e-4


def test_minilm_embeddings_carry_meaning(minilm: TorchEngine) -> None:
    cat, kitten, markets = (
        r["embedding"]  # type: ignore[index]
        for r in minilm.infer(
            _rows("A cat sits on a mat.", "A kitten is sitting on a rug.", "Bond yields rose.")
        )
    )

    def cos(u: list[float], v: list[float]) -> float:
        return sum(a * b for a, b in zip(u, v, strict=True))

    assert cos(cat, kitten) > cos(cat, markets) + 0.2


def test_empty_and_non_string_texts_fail_only_their_rows(minilm: TorchEngine) -> None:
    results = minilm.infer(_rows("first", "", "   ", None, 42, "last"))
    assert results[1] == RowFailure("empty text")
    assert results[2] == RowFailure("empty text")
    assert results[3] == RowFailure("empty text (no value in the text column)")
    assert results[4] == RowFailure("empty text (the text column holds int, not a string)")
    assert isinstance(results[0], dict) and isinstance(results[5], dict)
    alone = minilm.infer(_rows("first"))[0]
    assert isinstance(alone, dict)
    assert results[0]["embedding"] == pytest.approx(alone["embedding"], abs=1e-4)
    assert minilm.infer(_rows("")) == [RowFailure("empty text")]


def test_minilm_describe_reports_the_packaged_weights(minilm: TorchEngine) -> None:
    info = minilm.describe()
    assert info["engine"] == "torch"
    assert info["model"] == MINILM
    assert info["device"] == "cpu" and info["accelerator"] == "cpu"
    assert info["model_source"] == "package"
    assert info["revision"].startswith("local-") and len(info["revision"]) == 18
    assert info["dim"] == 384 and info["dtype"] == "float32"


def test_short_alias_and_unknown_models_resolve_offline() -> None:
    assert resolve_model("all-MiniLM-L6-v2").path == resolve_model(MINILM).path
    assert resolve_model(MINILM, "abc123").revision == "abc123"
    with pytest.raises(
        EngineError,
        match=r"model 'acme/not-a-model' is not in the local Hugging Face cache \(offline mode is on\): download it once with network",
    ):
        resolve_model("acme/not-a-model")
    with pytest.raises(EngineError, match=r"model.name: './nowhere' does not exist"):
        create_engine(_recipe("classify", "./nowhere"))


def test_bad_options_are_refused_before_loading() -> None:
    with pytest.raises(RecipeError, match=r"model.options.normalise: unknown option"):
        TorchEngine(_recipe("embed", MINILM, normalise=True))
    with pytest.raises(RecipeError, match=r"model.options.dtype: use one of auto, float32"):
        TorchEngine(_recipe("embed", MINILM, dtype="fp8"))
    with pytest.raises(RecipeError, match=r"model.options.max_seq_length: must be a positive"):
        TorchEngine(_recipe("embed", MINILM, max_seq_length=0))


# -- classify / score: tiny models built here ---------------------------------------------


def _write_tokenizer(folder: Path) -> Any:
    folder.mkdir(parents=True, exist_ok=True)
    vocab = folder / "vocab.txt"
    vocab.write_text("\n".join(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *WORDS]) + "\n")
    tokenizer = transformers.BertTokenizerFast(vocab=str(vocab))
    tokenizer.save_pretrained(folder)
    return tokenizer


def _tiny_bert(folder: Path, labels: list[str], **config: Any) -> Any:
    tokenizer = _write_tokenizer(folder)
    torch.manual_seed(0)
    cfg = transformers.BertConfig(
        vocab_size=len(tokenizer),
        hidden_size=16,
        num_hidden_layers=1,
        num_attention_heads=2,
        intermediate_size=32,
        max_position_embeddings=64,
        # Large initial weights so different texts get clearly different logits.
        initializer_range=0.5,
        num_labels=len(labels),
        id2label=dict(enumerate(labels)),
        label2id={name: i for i, name in enumerate(labels)},
        **config,
    )
    model = transformers.BertForSequenceClassification(cfg).eval()
    model.save_pretrained(folder)
    return tokenizer, model


def _direct_logits(tokenizer: Any, model: Any, text: str, pair: str | None = None) -> Any:
    with torch.inference_mode():
        return model(**tokenizer(text, pair, return_tensors="pt")).logits[0].float()


CLASSIFY_TEXTS = [
    "the movie was very good",
    "bad",
    "i hated the plot and the actors but the story was fun and not boring",
    "a cat sat on the mat",
    "really great film",
    "it was awful",
]


@pytest.fixture(scope="module")
def sentiment(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Any, Any]:
    folder = tmp_path_factory.mktemp("sentiment")
    tokenizer, model = _tiny_bert(folder, ["negative", "neutral", "positive"])
    return folder, tokenizer, model


def test_classify_labels_scores_and_order_after_length_sorting(
    sentiment: tuple[Path, Any, Any],
) -> None:
    folder, tokenizer, model = sentiment
    engine = TorchEngine(_recipe("classify", str(folder), batch_size=2))
    results = engine.infer(_rows(*CLASSIFY_TEXTS))
    seen = set()
    for text, result in zip(CLASSIFY_TEXTS, results, strict=True):
        probs = torch.softmax(_direct_logits(tokenizer, model, text), dim=-1)
        assert isinstance(result, dict)
        assert result["label"] == ["negative", "neutral", "positive"][int(probs.argmax())]
        assert result["score"] == pytest.approx(float(probs.max()), abs=1e-5)
        seen.add(round(result["score"], 4))
    assert len(seen) > 1  # the texts really differ, so a mix-up would show
    info = engine.describe()
    assert info["labels"] == ["negative", "neutral", "positive"]
    assert info["model_source"] == "path" and info["revision"].startswith("local-")


def test_classify_labels_option_and_bfloat16(sentiment: tuple[Path, Any, Any]) -> None:
    folder, tokenizer, model = sentiment
    engine = TorchEngine(
        _recipe("classify", str(folder), labels=["neg", "mid", "pos"], dtype="bfloat16")
    )
    assert engine.describe()["dtype"] == "bfloat16"
    result = engine.infer(_rows("the movie was very good"))[0]
    probs = torch.softmax(_direct_logits(tokenizer, model, "the movie was very good"), dim=-1)
    assert isinstance(result, dict)
    assert result["label"] == ["neg", "mid", "pos"][int(probs.argmax())]
    assert result["score"] == pytest.approx(float(probs.max()), abs=0.03)


def test_score_multi_logit_takes_the_positive_label(sentiment: tuple[Path, Any, Any]) -> None:
    folder, tokenizer, model = sentiment
    for option, index in ((None, 2), ("neutral", 1), (0, 0)):
        extra = {} if option is None else {"positive_label": option}
        engine = TorchEngine(_recipe("score", str(folder), **extra))
        results = engine.infer(_rows(*CLASSIFY_TEXTS))
        for text, result in zip(CLASSIFY_TEXTS, results, strict=True):
            probs = torch.softmax(_direct_logits(tokenizer, model, text), dim=-1)
            assert result == {"score": pytest.approx(float(probs[index]), abs=1e-5)}
    engine = TorchEngine(_recipe("score", str(folder), positive_label="joy"))
    with pytest.raises(EngineError, match=r"positive_label: 'joy' is not a label"):
        engine.infer(_rows("good"))


def test_score_cross_encoder_pairs_single_logit(tmp_path: Path) -> None:
    tokenizer, model = _tiny_bert(tmp_path, ["relevance"])
    queries = ["good movie", "cat", "the plot", "awful film"]
    docs = ["the film was really great", "a dog sat", "boring story and actors", ""]
    rows = _rows(*queries, doc=docs)
    raw = TorchEngine(_recipe("score", str(tmp_path), pair_column="doc", activation="none"))
    auto = TorchEngine(_recipe("score", str(tmp_path), pair_column="doc"))
    raw_results, auto_results = raw.infer(rows), auto.infer(rows)
    assert raw_results[3] == RowFailure("empty pair text (column 'doc')")
    for q, d, r, a in zip(queries[:3], docs[:3], raw_results, auto_results, strict=False):
        logit = float(_direct_logits(tokenizer, model, q, d)[0])
        assert r == {"score": pytest.approx(logit, abs=1e-5)}
        assert a == {"score": pytest.approx(1 / (1 + math.exp(-logit)), abs=1e-5)}


def test_score_regression_model_is_raw_by_default(tmp_path: Path) -> None:
    tokenizer, model = _tiny_bert(tmp_path, ["similarity"], problem_type="regression")
    engine = TorchEngine(_recipe("score", str(tmp_path)))
    logit = float(_direct_logits(tokenizer, model, "great film")[0])
    assert engine.infer(_rows("great film")) == [{"score": pytest.approx(logit, abs=1e-5)}]


class _BagOfWords(torch.nn.Module):  # type: ignore[misc]
    """A small classifier with the (input_ids, attention_mask) -> logits shape of exports."""

    def __init__(self, vocab: int, labels: int) -> None:
        super().__init__()
        self.embed = torch.nn.Embedding(vocab, 8)
        self.head = torch.nn.Linear(8, labels)

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        mask = attention_mask.unsqueeze(-1).float()
        pooled = (self.embed(input_ids) * mask).sum(1) / mask.sum(1)
        return self.head(pooled)


def test_torchscript_classifier_with_labels_option(tmp_path: Path) -> None:
    tokenizer = _write_tokenizer(tmp_path / "tok")
    torch.manual_seed(1)
    eager = _BagOfWords(len(tokenizer), 2).eval()
    scripted = torch.jit.script(eager)
    scripted.save(str(tmp_path / "classifier.pt"))
    engine = create_engine(
        _recipe(
            "classify",
            str(tmp_path / "classifier.pt"),
            batch_size=2,
            tokenizer=str(tmp_path / "tok"),
            labels=["spam", "ham"],
        )
    )
    assert engine.describe()["revision"].startswith("local-")
    results = engine.infer(_rows(*CLASSIFY_TEXTS))
    for text, result in zip(CLASSIFY_TEXTS, results, strict=True):
        enc = tokenizer(text, return_tensors="pt")
        with torch.inference_mode():
            probs = torch.softmax(eager(enc["input_ids"], enc["attention_mask"])[0], dim=-1)
        assert result == {
            "label": ["spam", "ham"][int(probs.argmax())],
            "score": pytest.approx(float(probs.max()), abs=1e-5),
        }


def test_torchscript_without_a_tokenizer_says_what_to_set(tmp_path: Path) -> None:
    torch.jit.script(_BagOfWords(10, 2)).save(str(tmp_path / "m.pt"))
    with pytest.raises(EngineError, match=r"no tokenizer found at .* set model.options.tokenizer"):
        TorchEngine(_recipe("classify", str(tmp_path / "m.pt")))


def test_micro_batches_inside_a_worker_batch_keep_results(
    sentiment: tuple[Path, Any, Any],
) -> None:
    folder, _, _ = sentiment
    whole = TorchEngine(_recipe("classify", str(folder), batch_size=8))
    micro = TorchEngine(_recipe("classify", str(folder), batch_size=8, micro_batch_size=2))
    rows = _rows(*CLASSIFY_TEXTS)
    for a, b in zip(whole.infer(rows), micro.infer(rows), strict=True):
        assert isinstance(a, dict) and isinstance(b, dict)
        assert a["label"] == b["label"] and a["score"] == pytest.approx(b["score"], abs=1e-5)


class _SmallMemory(TorchEngine):
    """Runs out of memory on forward passes of more than two rows (a seam for OOM)."""

    def _run(self, rows: list[dict[str, Any]]) -> list[Any]:
        if len(rows) > 2:
            raise MemoryError(f"out of memory at {len(rows)} rows")
        return super()._run(rows)


def test_out_of_memory_propagates_and_halves_the_micro_batch(
    sentiment: tuple[Path, Any, Any],
) -> None:
    folder, _, _ = sentiment
    engine = _SmallMemory(_recipe("classify", str(folder), batch_size=8))
    rows = _rows(*CLASSIFY_TEXTS)
    with pytest.raises(MemoryError, match="out of memory at 6 rows"):
        engine.infer(rows)
    assert engine.micro_batch_size == 3
    with pytest.raises(MemoryError, match="out of memory at 3 rows"):
        engine.infer(rows)
    assert engine.micro_batch_size == 1
    expected = TorchEngine(_recipe("classify", str(folder))).infer(rows)
    for a, b in zip(engine.infer(rows), expected, strict=True):
        assert isinstance(a, dict) and isinstance(b, dict)
        assert a["label"] == b["label"] and a["score"] == pytest.approx(b["score"], abs=1e-5)


def test_a_folder_without_a_model_is_one_clear_error(tmp_path: Path) -> None:
    (tmp_path / "config.json").write_text('{"model_type": "bert"}')
    with pytest.raises(EngineError, match=r"model '.*': cannot load it for task classify from"):
        TorchEngine(_recipe("classify", str(tmp_path)))
