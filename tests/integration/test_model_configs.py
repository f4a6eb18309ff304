"""A model's size, precision and context from its config.json: local, cached, or the Hub.

The Hub is a real HTTP server on 127.0.0.1 (``HF_ENDPOINT``) serving one config.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import ClassVar

import pytest

import pricing
from pricing import _configs

# meta-llama/Llama-3.1-8B-Instruct's config.json (the fields that size the model).
LLAMA_8B = {
    "architectures": ["LlamaForCausalLM"],
    "model_type": "llama",
    "hidden_size": 4096,
    "intermediate_size": 14336,
    "num_hidden_layers": 32,
    "num_attention_heads": 32,
    "num_key_value_heads": 8,
    "vocab_size": 128256,
    "max_position_embeddings": 131072,
    "tie_word_embeddings": False,
    "torch_dtype": "bfloat16",
}


@pytest.fixture(autouse=True)
def _fresh_memo() -> None:
    _configs._memo.clear()


def test_params_and_shape_are_counted_from_the_config() -> None:
    info = _configs.info_from_config("org/llama-like", LLAMA_8B)
    assert info is not None
    assert info.params_b == pytest.approx(8.03, abs=0.01)
    assert (info.layers, info.kv_heads, info.head_dim, info.max_context) == (32, 8, 128, 131072)
    assert not info.encoder
    assert _configs.config_precision(LLAMA_8B) == "BF16"
    fp8 = {**LLAMA_8B, "quantization_config": {"quant_method": "fp8"}}
    assert _configs.config_precision(fp8) == "FP8"
    awq = {**LLAMA_8B, "quantization_config": {"quant_method": "awq", "bits": 4}}
    assert _configs.config_precision(awq) == "INT4"


def test_a_local_model_directory_is_read(tmp_path: Path) -> None:
    model = tmp_path / "my-finetune"
    model.mkdir()
    quantised = {**LLAMA_8B, "quantization_config": {"quant_method": "fp8"}}
    (model / "config.json").write_text(json.dumps(quantised))
    info = pricing.model_info(str(model))
    assert info is not None and info.params_b == pytest.approx(8.03, abs=0.01)
    assert pricing.precision_of(str(model)) == "FP8"
    est = pricing.estimate_throughput(
        model=str(model), engine="vllm", task="generate", accelerator="H100", count=1,
        input_tokens=500, output_tokens=150,
    )  # fmt: skip
    assert est.rows_per_s > 0


class _Hub(BaseHTTPRequestHandler):
    hits: ClassVar[list[str]] = []

    def do_GET(self) -> None:
        type(self).hits.append(self.path)
        if self.path == "/acme/chatter/resolve/main/config.json":
            body = json.dumps(LLAMA_8B).encode()
            self.send_response(200)
        else:
            body = b"{}"
            self.send_response(404)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def hub(monkeypatch: pytest.MonkeyPatch) -> Iterator[ThreadingHTTPServer]:
    _Hub.hits = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Hub)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    monkeypatch.setenv("HF_ENDPOINT", f"http://127.0.0.1:{server.server_address[1]}")
    monkeypatch.setenv("HF_HUB_OFFLINE", "0")
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def test_the_hub_is_asked_once_and_the_answer_cached_in_duckdb(
    hub: ThreadingHTTPServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    info = pricing.model_info("acme/chatter")  # no size in the name, not in the table
    assert info is not None and info.params_b == pytest.approx(8.03, abs=0.01)
    assert _Hub.hits == ["/acme/chatter/resolve/main/config.json"]
    _configs._memo.clear()  # a new process: the answer comes from DuckDB
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    again = pricing.model_info("acme/chatter")
    assert again == info and len(_Hub.hits) == 1
    with pricing.connect(read_only=True) as con:
        (count,) = con.execute("SELECT count(*) FROM model_configs").fetchone()  # type: ignore[misc]
    assert count == 1
    assert pricing.model_info("acme/unknown") is None  # 404: no size (the miss is remembered)


def test_offline_never_asks_the_hub(
    hub: ThreadingHTTPServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    assert pricing.model_info("acme/chatter") is None  # no size in the name either
    assert _Hub.hits == []


def test_the_hf_cache_is_read_without_importing_huggingface_hub(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import subprocess
    import sys

    commit = "a" * 40
    repo = tmp_path / "hub" / "models--org--cached"
    (repo / "refs").mkdir(parents=True)
    (repo / "refs" / "main").write_text(commit)
    (repo / "snapshots" / commit).mkdir(parents=True)
    (repo / "snapshots" / commit / "config.json").write_text(json.dumps(LLAMA_8B))
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hub"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    assert _configs.load_config("org/cached") == LLAMA_8B
    assert _configs.load_config("org/cached", revision=commit) == LLAMA_8B
    assert _configs.load_config("org/cached", revision="v2") is None
    # The same file huggingface_hub itself finds.
    from huggingface_hub import try_to_load_from_cache

    found = try_to_load_from_cache("org/cached", "config.json", cache_dir=str(tmp_path / "hub"))
    assert found == str(_configs._cached_hub_file("org/cached", "config.json", None))
    code = (
        "import sys; from pricing import _configs; "
        "assert _configs.load_config('org/cached') is not None; "
        "print('huggingface_hub' in sys.modules, 'httpx' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False", "False"]


def _new_process() -> None:
    from pricing import _db, _readcache

    _configs._memo.clear()
    _db._cache.clear()
    _readcache._loaded.clear()


def test_a_refusal_is_remembered_until_a_token_is_set(
    hub: ThreadingHTTPServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("HF_TOKEN", raising=False)
    assert _configs.load_config("acme/gated") is None  # 404, as the Hub says to strangers
    _new_process()
    assert _configs.load_config("acme/gated") is None
    assert _Hub.hits == ["/acme/gated/resolve/main/config.json"]  # asked once
    with pricing.connect(read_only=True) as con:
        row = con.execute("SELECT reason, transient FROM model_config_misses").fetchall()
    assert row == [("HTTP 404", False)]
    _new_process()
    monkeypatch.setenv("HF_TOKEN", "hf_x")  # a token may open a gated model: ask again
    assert _configs.load_config("acme/gated") is None
    _new_process()
    assert _configs.load_config("acme/gated") is None
    assert len(_Hub.hits) == 2


def test_no_answer_is_asked_again_a_day_later(monkeypatch: pytest.MonkeyPatch) -> None:
    import httpx

    calls: list[str] = []

    def unreachable(url: str, **kwargs: object) -> httpx.Response:
        calls.append(url)
        raise httpx.ConnectTimeout("timed out")

    monkeypatch.setattr(httpx, "get", unreachable)
    monkeypatch.setenv("HF_HUB_OFFLINE", "0")
    assert _configs.load_config("acme/far") is None
    _new_process()
    assert _configs.load_config("acme/far") is None
    assert len(calls) == 1  # a repeated plan does not wait on the network again
    with pricing.connect() as con:
        con.execute("UPDATE model_config_misses SET tried_at = tried_at - INTERVAL 25 HOUR")
    _new_process()
    assert _configs.load_config("acme/far") is None
    assert len(calls) == 2


def test_a_plan_asks_the_hub_once_then_answers_from_the_cache(
    hub: ThreadingHTTPServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    from scheduler.plan import PlanRequest, catalog_market, measure_workload, plan_workload
    from scheduler.recipe import recipe_from_dict

    recipe = recipe_from_dict(
        {
            "name": "chat",
            "input": {"path": "s3://b/x.parquet", "rows_estimate": 1000, "avg_input_tokens": 100},
            "task": "generate",
            "model": {"engine": "vllm", "name": "acme/chatter"},
            "sampling": {"max_tokens": 50},
            "schedule": {"deadline": "8h", "accelerators": ["H100"], "clouds": ["lambda"]},
        }
    )
    load, req = measure_workload(recipe), PlanRequest.from_recipe(recipe)
    market = catalog_market()
    with market.batch():  # the fetch writes its answer while the plan's session reads
        first = plan_workload(load, req, market)
    assert first.options and _Hub.hits == ["/acme/chatter/resolve/main/config.json"]
    _new_process()
    again = catalog_market()
    with again.batch():
        assert plan_workload(load, req, again).to_json() == first.to_json()
    assert len(_Hub.hits) == 1
