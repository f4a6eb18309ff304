"""Torch engine options and model resolution: pure checks, no torch import, no model load."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from scheduler.engines._models import local_revision, resolve_model
from scheduler.engines._torch_options import TorchOptions, parse_options
from scheduler.errors import EngineError, RecipeError


def test_defaults_and_a_full_set_of_options() -> None:
    assert parse_options("embed", {}) == TorchOptions()
    opts = parse_options(
        "score",
        {
            "device": "cuda:1",
            "dtype": "bfloat16",
            "max_seq_length": 128,
            "pair_column": "doc",
            "positive_label": "relevant",
            "activation": "none",
            "labels": ["a", "b"],
            "inputs": ["input_ids"],
        },
    )
    assert opts.device == "cuda:1" and opts.dtype == "bfloat16"
    assert opts.labels == ("a", "b") and opts.inputs == ("input_ids",)


@pytest.mark.parametrize(
    ("task", "options", "message"),
    [
        ("embed", {"normalise": True}, r"model.options.normalise: unknown option for the torch"),
        ("embed", {"device": "gpu"}, r"model.options.device: use auto, cpu, cuda, cuda:N or mps"),
        ("embed", {"dtype": "int8"}, r"model.options.dtype: use one of auto, float32"),
        ("embed", {"normalize": "yes"}, r"model.options.normalize: must be true or false"),
        ("embed", {"max_seq_length": -1}, r"model.options.max_seq_length: must be a positive"),
        ("embed", {"num_threads": True}, r"model.options.num_threads: must be a positive"),
        ("classify", {"labels": []}, r"model.options.labels: must be a non-empty list"),
        ("score", {"activation": "relu"}, r"model.options.activation: use auto, sigmoid or none"),
        ("score", {"positive_label": 1.5}, r"model.options.positive_label: must be a label"),
        ("score", {"pair_column": ""}, r"model.options.pair_column: must be a non-empty string"),
        ("generate", {}, r"task: the torch engine runs embed, classify, score here"),
    ],
)
def test_bad_options_name_the_field(task: str, options: dict[str, Any], message: str) -> None:
    with pytest.raises(RecipeError, match=message):
        parse_options(task, options)


def test_options_and_resolution_import_no_torch() -> None:
    code = (
        "import sys; from scheduler.engines._torch_options import parse_options; "
        "import scheduler.engines.torch, scheduler.engines.python; "
        "from scheduler.engines._models import resolve_model; "
        "resolve_model('all-MiniLM-L6-v2'); parse_options('embed', {}); "
        "print(sorted(m for m in ('torch', 'transformers', 'sentence_transformers') "
        "if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_packaged_minilm_resolves_under_both_names() -> None:
    full = resolve_model("sentence-transformers/all-MiniLM-L6-v2")
    assert full.source == "package" and (full.path / "model.safetensors").is_file()
    assert resolve_model("all-minilm-l6-v2").revision == full.revision
    assert resolve_model("all-MiniLM-L6-v2", "pinned-1").revision == "pinned-1"


def test_local_revision_follows_config_and_weight_size(tmp_path: Path) -> None:
    (tmp_path / "config.json").write_text('{"hidden_size": 8}')
    (tmp_path / "model.safetensors").write_bytes(b"x" * 10)
    (tmp_path / "README.md").write_text("notes")
    first = local_revision(tmp_path)
    assert first.startswith("local-") and local_revision(tmp_path) == first
    (tmp_path / "README.md").write_text("other notes")  # docs do not change results
    assert local_revision(tmp_path) == first
    (tmp_path / "model.safetensors").write_bytes(b"x" * 11)
    assert local_revision(tmp_path) != first
    assert local_revision(tmp_path, "v2") == "v2"
    assert resolve_model(str(tmp_path)).revision == local_revision(tmp_path)


def test_missing_models_say_what_to_do(tmp_path: Path) -> None:
    with pytest.raises(
        EngineError,
        match=r"model 'acme/nothing' at revision r1 is not in the local Hugging Face cache "
        r"\(offline mode is on\): download it once with network .* or set model.name to a "
        "local directory",
    ):
        resolve_model("acme/nothing", "r1")
    with pytest.raises(EngineError, match=r"model.name: '.*/gone.pt' does not exist"):
        resolve_model(str(tmp_path / "gone.pt"))


def test_a_model_in_the_hf_cache_records_its_commit(tmp_path: Path) -> None:
    commit = "0123456789abcdef0123456789abcdef01234567"
    repo = tmp_path / "hub" / "models--acme--tiny"
    (repo / "refs").mkdir(parents=True)
    (repo / "refs" / "main").write_text(commit)
    (repo / "snapshots" / commit).mkdir(parents=True)
    (repo / "snapshots" / commit / "config.json").write_text("{}")
    code = (
        "from scheduler.engines._models import resolve_model; "
        "r = resolve_model('acme/tiny'); print(r.source, r.revision, r.path.name)"
    )
    # The cache location is read when huggingface_hub is imported: use a fresh process.
    env = {**os.environ, "HF_HUB_CACHE": str(tmp_path / "hub"), "HF_HUB_OFFLINE": "1"}
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, env=env
    )
    assert out.stdout.split() == ["hf-cache", commit, commit]
