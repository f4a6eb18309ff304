"""The vLLM engine on a real GPU with real vLLM (marked ``gpu``: deselected by default).

Run on a CUDA machine with ``pip install 'skybatch[vllm]'``::

    pytest -m gpu tests/integration/test_vllm_gpu.py

The model is a small random Llama built here (head size 64, which every vLLM attention
backend supports); what is checked is the adapter's contract on the real engine: one
result per row in order, token counts equal to the tokenizer's, finish reasons, prompts
that do not fit dead-lettered before vLLM, and greedy output equal to transformers'.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

pytestmark = pytest.mark.gpu

SPECIALS = ["<|endoftext|>", "<|pad|>", "<|user|>", "<|assistant|>", "<|end|>"]
TEXTS = [f"order {i} arrived late and the box was {'damp' if i % 2 else 'torn'}" for i in range(16)]


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    torch = pytest.importorskip("torch")
    pytest.importorskip("vllm")
    if not torch.cuda.is_available():
        pytest.skip("needs a CUDA GPU")
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    bpe = Tokenizer(models.BPE())
    bpe.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    bpe.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=384,
        special_tokens=SPECIALS,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    bpe.train_from_iterator(TEXTS * 4, trainer=trainer)
    tok = PreTrainedTokenizerFast(
        tokenizer_object=bpe, bos_token=SPECIALS[0], eos_token=SPECIALS[0], pad_token=SPECIALS[1]
    )
    tok.chat_template = (
        "{% for m in messages %}<|{{ m['role'] }}|>{{ m['content'] }}<|end|>{% endfor %}"
        "{% if add_generation_prompt %}<|assistant|>{% endif %}"
    )
    config = LlamaConfig(
        vocab_size=len(tok),
        hidden_size=256,
        intermediate_size=512,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=4,
        max_position_embeddings=256,
        initializer_range=0.2,
        bos_token_id=tok.bos_token_id,
        eos_token_id=tok.eos_token_id,
        pad_token_id=tok.pad_token_id,
    )
    torch.manual_seed(0)
    out = tmp_path_factory.mktemp("tiny-llama")
    LlamaForCausalLM(config).to(torch.bfloat16).save_pretrained(out)
    tok.save_pretrained(out)
    return out


def torch_device_name() -> str:
    import torch

    return str(torch.cuda.get_device_name(0))


def _recipe(model: Path, engine: str, options: dict[str, Any]) -> Any:
    from scheduler.recipe import recipe_from_dict

    return recipe_from_dict(
        {
            "name": "vllm-gpu",
            "input": {"path": "x.jsonl"},
            "task": "generate",
            "model": {"engine": engine, "name": str(model), "options": options},
            "prompt": {"template": "{text}"},
            "sampling": {"temperature": 0.0, "max_tokens": 8},
        }
    )


def test_vllm_engine_on_a_gpu(model_dir: Path) -> None:
    from transformers import AutoTokenizer

    from scheduler.engines import RowFailure, create_engine

    engine = create_engine(
        _recipe(
            model_dir,
            "vllm",
            {"dtype": "bfloat16", "max_model_len": 128, "gpu_memory_utilization": 0.3,
             "enforce_eager": True, "enable_prefix_caching": True},
        )
    )  # fmt: skip
    assert engine.whole_shard
    rows = [{"id": f"r{i}", "text": t} for i, t in enumerate(TEXTS)]
    rows.append({"id": "long", "text": "late " * 200})
    out = engine.infer(rows)
    assert len(out) == len(rows)
    assert isinstance(out[-1], RowFailure) and out[-1].reason.startswith("prompt too long")
    tok = AutoTokenizer.from_pretrained(model_dir)
    for row, res in zip(rows[:-1], out[:-1], strict=True):
        assert isinstance(res, dict)
        rendered = tok.apply_chat_template(
            [{"role": "user", "content": row["text"]}], tokenize=False, add_generation_prompt=True
        )
        assert res["prompt_tokens"] == len(tok.encode(rendered, add_special_tokens=False))
        assert 1 <= res["completion_tokens"] <= 8
        assert res["finish_reason"] in ("stop", "length")
    described = engine.describe()
    assert described["device"] == "cuda"  # the CUDA build's platform, not a hard-coded guess
    assert described["accelerator"] == torch_device_name()
    engine.close()

    # Greedy decoding is the same computation in transformers: most rows must agree
    # (bf16 kernels differ, so an early near-tie may flip a token on a random model).
    hf = create_engine(_recipe(model_dir, "torch", {"device": "cuda", "dtype": "bfloat16"}))
    ref = hf.infer(rows[:-1])
    same = sum(a == b for a, b in zip(out[:-1], ref, strict=True))
    assert same >= len(ref) // 2
