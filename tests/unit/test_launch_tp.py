"""Tensor parallelism on launch: from GPUs per worker, the recipe's own when it fits, and the
planner's memory check on ``--gpu G --workers N``."""

from __future__ import annotations

import shlex
from pathlib import Path
from typing import Any

import pytest
import yaml

from scheduler.backends import skypilot as sp
from scheduler.errors import PlanError, RecipeError
from scheduler.launch import LaunchRequest, choose_option
from scheduler.recipe import load_recipe

REPO = Path(__file__).resolve().parents[2]


def _recipe(tmp_path: Path, **options: Any) -> Any:
    data = yaml.safe_load((REPO / "recipes" / "generate-70b.yaml").read_text())
    data["model"]["options"].update(options)
    path = tmp_path / "r.yaml"
    path.write_text(yaml.safe_dump(data))
    return load_recipe(str(path))


def test_gpu_flag_gets_the_gpus_the_model_needs_and_the_task_sets_tp(tmp_path: Path) -> None:
    recipe = _recipe(tmp_path)
    option, _ = choose_option(recipe, LaunchRequest(recipe_path="r", gpu="H100", workers=2))
    assert option.gpus_per_worker >= 2 and option.tp_size >= 2  # ~140 GB of weights
    job = sp.build_worker_job(recipe=recipe, run_id="g-1", store_url="s3://b/r",
                              worker_index=0, option=option)  # fmt: skip
    assert job.config["resources"]["any_of"][0]["accelerators"] == f"H100:{option.gpus_per_worker}"
    argv = shlex.split(job.config["run"])
    assert argv[argv.index("--tensor-parallel-size") + 1] == str(option.tp_size)


def test_gpu_flag_refuses_a_gpu_that_cannot_hold_the_model(tmp_path: Path) -> None:
    with pytest.raises(PlanError, match=r"^--gpu T4: meta-llama/Llama-3.1-70B-Instruct does "
                       r"not fit in the memory of up to 8 T4 per worker; pick a GPU"):  # fmt: skip
        choose_option(_recipe(tmp_path), LaunchRequest(recipe_path="r", gpu="T4", workers=2))


def test_the_recipes_tensor_parallel_size_is_used_when_it_fits(tmp_path: Path) -> None:
    recipe = _recipe(tmp_path, tensor_parallel_size=2)
    option, _ = choose_option(recipe, LaunchRequest(recipe_path="r", gpu="H100", workers=1))
    assert (option.tp_size, option.replicas_per_worker) == (2, option.gpus_per_worker // 2)


def test_a_contradicting_tensor_parallel_size_is_refused_in_one_line(tmp_path: Path) -> None:
    recipe = _recipe(tmp_path, tensor_parallel_size=1)  # 70B in BF16 on one H100: no
    with pytest.raises(RecipeError, match=r"model.options.tensor_parallel_size 1 contradicts "
                       r"the launch option \(2× H100 per worker\): fewer than the 2 H100 the "
                       r"model needs; remove it"):  # fmt: skip
        choose_option(recipe, LaunchRequest(recipe_path="r", gpu="H100", workers=1))
    recipe = _recipe(tmp_path, tensor_parallel_size=3)
    with pytest.raises(RecipeError, match=r"3 contradicts .*does not divide the 2 H100"):
        choose_option(recipe, LaunchRequest(recipe_path="r", gpu="H100", workers=1))


def test_a_planned_option_takes_the_recipes_tensor_parallel_size_too(tmp_path: Path) -> None:
    recipe = _recipe(tmp_path, tensor_parallel_size=1)
    with pytest.raises(RecipeError, match=r"tensor_parallel_size 1 contradicts"):
        choose_option(recipe, LaunchRequest(recipe_path="r", deadline_s=8 * 3600))
