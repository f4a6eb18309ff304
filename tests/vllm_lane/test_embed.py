"""Task ``embed`` through the real ``LLM.embed`` on a CPU (one model load).

The embedding model is the tiny Llama saved without its LM head (``build(..., embed=True)``);
vLLM's CPU build serves it with ``runner="pooling"`` (last-token pooling, normalised).
"""

from __future__ import annotations

import math
from typing import Any

import pytest

from scheduler.engines import PROMPT_TOO_LONG, RowFailure
from scheduler.engines.vllm import VllmEngine
from scheduler.recipe import recipe_from_dict

pytestmark = [pytest.mark.vllm, pytest.mark.slow, pytest.mark.timeout(900)]


@pytest.fixture(scope="module")
def embedder(tmp_path_factory: pytest.TempPathFactory, builder: Any, one_load: Any) -> VllmEngine:
    model = builder.build(tmp_path_factory.mktemp("models") / "tiny-embed", embed=True)
    recipe = recipe_from_dict(
        {
            "name": "vllm-embed",
            "input": {"path": "x.jsonl"},
            "task": "embed",
            "model": {"engine": "vllm", "name": str(model), "options": builder.EMBED_OPTIONS},
        }
    )
    return VllmEngine(recipe, vllm_module=one_load)


def test_embed_rows_in_order_counts_and_failures(embedder: VllmEngine) -> None:
    texts = [f"parcel {i} came {'late' if i % 2 else 'early'}" for i in range(12)]
    rows = [{"id": str(i), "text": t} for i, t in enumerate(texts)]
    rows.insert(3, {"id": "empty", "text": ""})
    rows.insert(7, {"id": "long", "text": "late " * 400})
    out = embedder.infer(rows)
    assert len(out) == len(rows)
    assert isinstance(out[3], RowFailure) and "nothing to embed" in out[3].reason
    assert isinstance(out[7], RowFailure) and out[7].reason.startswith(PROMPT_TOO_LONG)
    good = [(r, o) for r, o in zip(rows, out, strict=True) if isinstance(o, dict)]
    assert len(good) == 12
    tok = embedder._tokenizer
    llm = embedder._llm
    ref = llm.embed([r["text"] for r, _ in good], use_tqdm=False)
    for (row, res), expected in zip(good, ref, strict=True):
        assert res["prompt_tokens"] == len(tok.encode(row["text"], add_special_tokens=True))
        vec = res["embedding"]
        assert len(vec) == 128 and all(isinstance(x, float) for x in vec)
        assert math.isclose(math.fsum(x * x for x in vec), 1.0, rel_tol=1e-3)  # normalised
        assert vec == pytest.approx(list(expected.outputs.embedding), abs=1e-5)
    assert good[0][1]["embedding"] != good[1][1]["embedding"]
    # The same text gives the same vector wherever it sits in the batch.
    again = embedder.infer([rows[-1], rows[0]])
    assert again[1]["embedding"] == pytest.approx(out[0]["embedding"], abs=1e-5)  # type: ignore[index]


def test_describe_embed_on_cpu(embedder: VllmEngine) -> None:
    d = embedder.describe()
    assert (d["device"], d["accelerator"], d["engine_args"]["runner"]) == ("cpu", "cpu", "pooling")
