"""Build tiny, randomly initialised models that real vLLM loads on a CPU (no download).

    python recipes/models/build_tiny_llama.py OUT_DIR            # the generator (Llama)
    python recipes/models/build_tiny_llama.py OUT_DIR --embed    # the embedding model

``recipes/models/tiny-lm`` (head size 16) runs on the torch engine, but vLLM's CPU attention
kernel refuses head sizes under 64 ("Unsupported CPU attention configuration"). These
models have head size 64 (hidden size 128, two heads) and the same byte-level BPE tokenizer
and chat template as tiny-lm, trained on the recipes' sample texts, so the tests and
``benchmarks/bench_vllm.py`` run vLLM for real on a CPU. Their words are noise. Seeds are
fixed: the same files come out on every run (about 1.5 MB each, float32).

The embedding model is the same Llama shape saved as ``LlamaModel`` (no LM head), which
vLLM serves through ``LLM.embed`` with ``runner="pooling"`` (see ``EMBED_OPTIONS``).
"""

from __future__ import annotations

import argparse
import importlib.util
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent

# Engine arguments that make vLLM fit a shared CPU machine: float32 (the CPU build's
# reliable dtype), eager mode (no graph capture to compile), and a KV cache of 5% of RAM
# (on CPU, gpu_memory_utilization is the share of RAM; the default 0.92 fails).
CPU_OPTIONS: dict[str, Any] = {
    "dtype": "float32",
    "enforce_eager": True,
    "gpu_memory_utilization": 0.05,
    "max_model_len": 256,
}
EMBED_OPTIONS: dict[str, Any] = {**CPU_OPTIONS, "runner": "pooling"}


def _tiny_lm() -> Any:
    """The sibling builder of tiny-lm: its tokenizer corpus, special tokens, chat template."""
    spec = importlib.util.spec_from_file_location("build_tiny_lm", HERE / "build_tiny_lm.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _tokenizer() -> Any:
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    lm = _tiny_lm()
    bpe = Tokenizer(models.BPE())
    bpe.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    bpe.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=512,
        special_tokens=lm.SPECIALS,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    bpe.train_from_iterator(lm.corpus(), trainer=trainer)
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=bpe,
        bos_token="<|endoftext|>",
        eos_token="<|endoftext|>",
        pad_token="<|pad|>",
        additional_special_tokens=lm.SPECIALS[2:],
        model_max_length=512,
    )
    tokenizer.chat_template = lm.CHAT_TEMPLATE
    return tokenizer


def build(out: Path, *, embed: bool = False) -> Path:
    """Write the generator (or, with ``embed``, the embedding model) to ``out``; return it."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM, LlamaModel

    tokenizer = _tokenizer()
    config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=128,
        intermediate_size=256,
        num_hidden_layers=2,
        num_attention_heads=2,  # head size 64: the smallest vLLM's CPU kernel takes
        num_key_value_heads=2,
        max_position_embeddings=512,
        tie_word_embeddings=not embed,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
        initializer_range=0.2,  # wider than the default 0.02: varied, not repeated, tokens
    )
    torch.manual_seed(0)
    model = LlamaModel(config) if embed else LlamaForCausalLM(config)
    if not embed:
        # As in tiny-lm: zero the special tokens' rows (EOS excepted) so greedy picks show
        # text, and some rows still end with finish_reason "stop".
        with torch.no_grad():
            for token in _tiny_lm().SPECIALS[1:]:
                model.model.embed_tokens.weight[tokenizer.convert_tokens_to_ids(token)] = 0.0
    out.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)
    return out


def main() -> None:
    """Build one model into the folder given on the command line."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", type=Path, help="folder to write the model to")
    parser.add_argument("--embed", action="store_true", help="the embedding model")
    args = parser.parse_args()
    out = build(args.out, embed=args.embed)
    size = sum(p.stat().st_size for p in out.iterdir())
    print(f"wrote {out} ({size / 1e6:.2f} MB)")


if __name__ == "__main__":
    main()
