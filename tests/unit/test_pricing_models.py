"""The model table and the memory check."""

from __future__ import annotations

import pytest

import pricing


@pytest.mark.parametrize(
    ("name", "canonical"),
    [
        ("meta-llama/Llama-3.1-8B-Instruct", "Llama-3.1-8B"),
        ("Meta-Llama-3.1-8B-FP8", "Llama-3.1-8B"),
        ("Llama-3.3-70B-Instruct", "Llama-3.1-70B"),
        ("Meta-Llama-3.1-70B-Instruct-FP8", "Llama-3.1-70B"),
        ("sentence-transformers/all-MiniLM-L6-v2", "all-MiniLM-L6-v2"),
        ("BAAI/bge-large-en-v1.5", "bge-large-en-v1.5"),
        ("mistralai/Mistral-7B-Instruct-v0.3", "Mistral-7B"),
    ],
)
def test_model_key(name: str, canonical: str) -> None:
    assert pricing.model_key(name) == canonical
    info = pricing.model_info(name)
    assert info is not None and info.name == canonical


def test_unknown_model_size_from_name() -> None:
    info = pricing.model_info("acme/wonder-13B-chat")
    assert info is not None and info.params_b == 13.0 and info.layers is None
    moe = pricing.model_info("acme/mix-8x7B")
    assert moe is not None and moe.params_b == 56.0
    assert pricing.model_info("acme/no-size-here") is None


def _info(name: str) -> pricing.ModelInfo:
    info = pricing.model_info(name)
    assert info is not None
    return info


def test_8b_on_l4_fits_until_long_contexts() -> None:
    llama8 = _info("meta-llama/Llama-3.1-8B-Instruct")
    # 16 GB of BF16 weights leave ~3.6 GiB of a 24 GB (22.35 GiB) L4 at 90 % use, less a
    # 1.5 GiB reserve: 128 KiB of KV per token holds about 29k tokens.
    assert pricing.memory_fit(model=llama8, accelerator="L4", count=1, context_tokens=8192)
    assert pricing.memory_fit(model=llama8, accelerator="L4", count=1, context_tokens=16384)
    assert not pricing.memory_fit(model=llama8, accelerator="L4", count=1, context_tokens=32768)
    assert not pricing.memory_fit(
        model=llama8, accelerator="L4", count=1, context_tokens=8192, batch_seqs=8
    )
    assert pricing.gpus_needed(model=llama8, accelerator="L4", context_tokens=131072) == 2
    assert not pricing.memory_fit(model=llama8, accelerator="T4", count=1, context_tokens=2048)


def test_70b_needs_more_than_one_h100() -> None:
    llama70 = _info("meta-llama/Llama-3.1-70B-Instruct")
    assert not pricing.memory_fit(model=llama70, accelerator="H100", count=1, context_tokens=4096)
    assert pricing.gpus_needed(model=llama70, accelerator="H100", context_tokens=4096) == 2
    assert pricing.gpus_needed(model=llama70, accelerator="H200", context_tokens=4096) == 2
    assert pricing.gpus_needed(model=llama70, accelerator="L4", context_tokens=4096) == 8
    assert pricing.gpus_needed(model=llama70, accelerator="T4", context_tokens=4096) is None
    assert (
        pricing.gpus_needed(model=llama70, accelerator="L4", context_tokens=4096, max_count=4)
        is None
    )
    # FP8 weights (1 byte) fit one H100.
    assert pricing.memory_fit(
        model=llama70, accelerator="H100", count=1, context_tokens=4096, dtype_bytes=1.0
    )
    assert (
        pricing.gpus_needed(model=llama70, accelerator="H100", context_tokens=4096, precision="FP8")
        == 1
    )


def test_the_planner_sizes_a_quantised_checkpoint_by_its_name() -> None:
    from scheduler.plan import CatalogMarket

    market = CatalogMarket()
    need = {
        name: market.gpus_needed(model=name, accelerator="H100", context_tokens=4096)
        for name in ("meta-llama/Llama-3.1-70B-Instruct", "neuralmagic/Llama-3.1-70B-Instruct-FP8",
                     "hugging-quants/Meta-Llama-3.1-70B-Instruct-AWQ-INT4")
    }  # fmt: skip
    assert list(need.values()) == [2, 1, 1]
    # the throughput estimate agrees: one H100 holds the FP8 weights
    est = market.estimate(model="neuralmagic/Llama-3.1-70B-Instruct-FP8", engine="vllm",
                          task="generate", accelerator="H100", count=1, input_tokens=500,
                          output_tokens=200)  # fmt: skip
    assert est.rows_per_s > 0


def test_405b_and_small_encoders() -> None:
    llama405 = _info("Llama-3.1-405B-Instruct")
    assert pricing.gpus_needed(model=llama405, accelerator="H100", context_tokens=4096) is None
    assert not pricing.memory_fit(
        model=llama405, accelerator="H100", count=8, context_tokens=4096, dtype_bytes=2.0
    )
    assert pricing.memory_fit(
        model=llama405, accelerator="H100", count=8, context_tokens=4096, dtype_bytes=1.0
    )
    minilm = _info("sentence-transformers/all-MiniLM-L6-v2")
    assert pricing.gpus_needed(model=minilm, accelerator="T4", context_tokens=512) == 1
    assert not pricing.memory_fit(
        model=minilm, accelerator="nonexistent", count=1, context_tokens=1
    )
