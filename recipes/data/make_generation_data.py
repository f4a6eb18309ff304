"""Write the sample inputs of the generation recipes (run from the repository root).

    python recipes/data/make_generation_data.py

* ``recipes/data/tiny-prompts.jsonl``: 64 short support notes (``id``, ``text``) for
  ``recipes/generate-tiny.yaml``;
* ``recipes/data/openai-batch-sample.jsonl``: 300 OpenAI Batch API chat-completions requests
  (``custom_id``, ``method``, ``url``, ``body``) for ``recipes/openai-batch.yaml``.

The texts are composed here from word lists this project wrote (no outside data), with a
fixed seed, so running the script again writes the same bytes.
"""

from __future__ import annotations

import json
import random
from pathlib import Path

HERE = Path(__file__).resolve().parent

_PRODUCTS = ["router", "kettle", "desk lamp", "backpack", "phone case", "keyboard", "printer"]
_PROBLEMS = [
    "stopped working after two days",
    "arrived with a cracked lid",
    "makes a clicking noise when switched on",
    "does not pair with my laptop",
    "was missing the power cable",
    "runs much hotter than expected",
]
_ASKS = [
    "I would like a replacement.",
    "Please tell me how to return it.",
    "Can you send the missing part?",
    "Is there a firmware update that fixes this?",
    "I want a refund to my original card.",
]
_TONES = ["Hello,", "Hi team,", "Good morning,", "To whom it may concern,", "Hey,"]
_SYSTEMS = [
    "Summarise the customer's message in one sentence.",
    "Classify the message as refund, replacement, repair or question. Answer with one word.",
    "Write a short, polite reply to the customer.",
]


def support_note(rng: random.Random) -> str:
    """One made-up support message."""
    product = rng.choice(_PRODUCTS)
    days = rng.randint(2, 40)
    return (
        f"{rng.choice(_TONES)} the {product} I bought {days} days ago "
        f"{rng.choice(_PROBLEMS)}. {rng.choice(_ASKS)}"
    )


def batch_request(rng: random.Random, n: int) -> dict[str, object]:
    """One chat-completions request in the OpenAI Batch input format."""
    body: dict[str, object] = {
        "model": "gpt-4o-mini",
        "messages": [
            {"role": "system", "content": rng.choice(_SYSTEMS)},
            {"role": "user", "content": support_note(rng)},
        ],
        "max_tokens": rng.choice([8, 16, 24]),
    }
    if n % 3 == 0:  # some requests sample, all with one seed (as batch files usually do)
        body["temperature"] = 0.7
        body["seed"] = 1234
    return {
        "custom_id": f"request-{n:04d}",
        "method": "POST",
        "url": "/v1/chat/completions",
        "body": body,
    }


def main() -> None:
    """Write both files."""
    rng = random.Random(20260101)
    with (HERE / "tiny-prompts.jsonl").open("w", encoding="utf-8") as f:
        for i in range(64):
            f.write(json.dumps({"id": f"note-{i:03d}", "text": support_note(rng)}) + "\n")
    with (HERE / "openai-batch-sample.jsonl").open("w", encoding="utf-8") as f:
        for n in range(1, 301):
            f.write(json.dumps(batch_request(rng, n)) + "\n")


if __name__ == "__main__":
    main()
