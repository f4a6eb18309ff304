"""Placement: only enabled clouds, a local model shipped with the task, store credentials."""

from __future__ import annotations

from pathlib import Path

import pytest

from scheduler.backends import skypilot as sp
from scheduler.errors import LaunchError, RecipeError
from scheduler.recipe import recipe_from_dict
from scheduler.store import LaunchOption, Offering

OPTION = LaunchOption("L4", offerings=(Offering("gcp", "us-east4", "g2-standard-4", 0.7),))


def test_recipe_clouds_that_are_not_enabled_are_dropped_with_the_reason() -> None:
    keep, dropped = sp.enabled_clouds_for(["gcp", "aws", "nebius"], ["AWS", "nebius"])
    assert keep == ["aws", "nebius"]
    assert dropped == ["gcp: not enabled in SkyPilot (run `sky check gcp` to set it up)"]
    assert sp.enabled_clouds_for(None, ["gcp", "aws"]) == (["aws", "gcp"], [])
    with pytest.raises(LaunchError, match=r"^none of the recipe's clouds \(gcp\) is enabled "
                       r"in SkyPilot \(enabled: aws\); run `sky check`"):  # fmt: skip
        sp.enabled_clouds_for(["gcp"], ["aws"])


def _recipe(tmp_path: Path, name: str, engine: str = "python") -> object:
    return recipe_from_dict(
        {"name": "p", "input": {"path": "s3://b/in.jsonl"}, "task": "score",
         "model": {"engine": engine, "name": name}},
        source=str(tmp_path / "r.yaml"),
    )  # fmt: skip


def test_a_python_engine_file_on_this_machine_is_shipped_with_the_task(tmp_path: Path) -> None:
    (tmp_path / "fn.py").write_text("def f(rows):\n    return rows\n")
    recipe = _recipe(tmp_path, f"{tmp_path / 'fn.py'}:f")
    job = sp.build_worker_job(recipe=recipe, run_id="p-1", store_url="s3://b/r",  # type: ignore[arg-type]
                              worker_index=0, option=OPTION)  # fmt: skip
    shipped = job.config["envs"][sp.MODEL_ENV]
    assert shipped.startswith("~/.skybatch/model/") and shipped.endswith("/fn.py:f")
    assert job.config["file_mounts"][shipped[: -len(":f")]] == str(tmp_path / "fn.py")
    sp.validate_task_config(job.config)


def test_a_local_model_directory_is_shipped_and_a_missing_one_refused(tmp_path: Path) -> None:
    (tmp_path / "weights").mkdir()
    recipe = _recipe(tmp_path, str(tmp_path / "weights"), engine="vllm")
    files, envs = sp.model_mount(recipe)  # type: ignore[arg-type]
    assert list(files.values()) == [str(tmp_path / "weights")]
    assert envs[sp.MODEL_ENV] in files
    assert sp.model_mount(_recipe(tmp_path, "meta-llama/Llama-3.1-8B", "vllm")) == ({}, {})  # type: ignore[arg-type]
    with pytest.raises(RecipeError, match=r"model.name /nowhere/w is a path on this machine "
                       r"that does not exist, and cloud workers cannot read this machine"):  # fmt: skip
        sp.model_mount(_recipe(tmp_path, "/nowhere/w", "vllm"))  # type: ignore[arg-type]


def test_a_store_on_another_cloud_than_the_workers_gets_one_warning_with_the_fix() -> None:
    line = sp.store_credentials_warning("s3://b/runs", ["aws", "gcp", "nebius"])
    assert line == (
        "store s3://b/runs is on aws, but workers may run on gcp, nebius, where aws "
        "credentials exist only if SkyPilot uploads them; pass them with --secret "
        "AWS_ACCESS_KEY_ID --secret AWS_SECRET_ACCESS_KEY, or keep the workers on aws "
        "(schedule.clouds)"
    )
    assert "gs://b/runs is on gcp, but workers may run on aws" in str(
        sp.store_credentials_warning("gs://b/runs", ["aws"])
    )
    assert sp.store_credentials_warning("s3://b/runs", ["aws"]) is None
