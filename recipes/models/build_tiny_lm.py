"""Build ``recipes/models/tiny-lm``: a tiny, randomly initialised causal LM with a tokenizer.

    python recipes/models/build_tiny_lm.py        # from the repository root

It exists so that ``recipes/generate-tiny.yaml`` and ``recipes/openai-batch.yaml`` run the
whole generation pipeline offline on a CPU, with no download. Its words are noise: the
weights are random. Shape: a two-layer Llama (hidden size 64, 512-token vocabulary, 512
positions, tied embeddings, about 0.1 M parameters, under 1 MB on disk) and a byte-level
BPE tokenizer trained on the recipes' sample texts, with a small chat template so the chat
path (system + user messages → template → tokens) is exercised too.

Run ``recipes/data/make_generation_data.py`` first: the tokenizer learns its merges from
those files. Seeds are fixed, so the output is the same on every run.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

HERE = Path(__file__).resolve().parent
DATA = HERE.parent / "data"
OUT = HERE / "tiny-lm"

SPECIALS = ["<|endoftext|>", "<|pad|>", "<|system|>", "<|user|>", "<|assistant|>", "<|end|>"]
CHAT_TEMPLATE = (
    "{% for m in messages %}<|{{ m['role'] }}|>{{ m['content'] }}<|end|>{% endfor %}"
    "{% if add_generation_prompt %}<|assistant|>{% endif %}"
)


def corpus() -> Iterator[str]:
    """The sample texts of the generation recipes."""
    for line in (DATA / "tiny-prompts.jsonl").read_text(encoding="utf-8").splitlines():
        yield json.loads(line)["text"]
    for line in (DATA / "openai-batch-sample.jsonl").read_text(encoding="utf-8").splitlines():
        for m in json.loads(line)["body"]["messages"]:
            yield m["content"]


def main() -> None:
    """Train the tokenizer, initialise the model, save both to ``tiny-lm/``."""
    import torch
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    bpe = Tokenizer(models.BPE())
    bpe.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    bpe.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=512,
        special_tokens=SPECIALS,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    bpe.train_from_iterator(corpus(), trainer=trainer)
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=bpe,
        bos_token="<|endoftext|>",
        eos_token="<|endoftext|>",
        pad_token="<|pad|>",
        additional_special_tokens=SPECIALS[2:],
        model_max_length=512,
    )
    tokenizer.chat_template = CHAT_TEMPLATE
    config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=512,
        tie_word_embeddings=True,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
        initializer_range=0.2,  # wider than the default 0.02: varied, not repeated, tokens
    )
    torch.manual_seed(0)
    model = LlamaForCausalLM(config)
    # A random model's greedy choice is often a special token, which decodes to nothing.
    # Zeroing those rows of the (tied) embedding keeps their logits at 0 so completions
    # show text; EOS keeps its row, so some rows still end with finish_reason "stop".
    with torch.no_grad():
        for token in SPECIALS[1:]:
            model.model.embed_tokens.weight[tokenizer.convert_tokens_to_ids(token)] = 0.0
    OUT.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(OUT)
    tokenizer.save_pretrained(OUT)
    size = sum(p.stat().st_size for p in OUT.iterdir())
    print(f"wrote {OUT} ({size / 1e6:.2f} MB, {model.num_parameters():,} parameters)")


if __name__ == "__main__":
    main()
