"""``skybatch plan`` end to end: the shipped recipes against the real DuckDB catalog."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from scheduler.cli import main

ROOT = Path(__file__).resolve().parents[2]
CLOUD_RECIPES = ["summarize-llama-10m", "embed-50m", "generate-70b"]


def run_cli(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    try:
        main(args)
        code = 0
    except SystemExit as e:
        code = int(e.code or 0)
    out, err = capsys.readouterr()
    return code, out, err


def recipe(name: str) -> str:
    return str(ROOT / "recipes" / f"{name}.yaml")


@pytest.mark.parametrize("name", CLOUD_RECIPES)
def test_cloud_recipes_plan_out_of_the_box(name: str, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run_cli(["plan", recipe(name), "--json"], capsys)
    assert code == 0, err
    data = json.loads(out)  # exactly one JSON object on stdout
    assert data["chosen"] == 0
    assert data["workload"]["rows"] > 1_000_000 or name == "generate-70b"
    assert data["workload"]["rows_source"] == "input.rows_estimate in the recipe"
    choice = data["options"][0]
    assert choice["p_on_time"] >= 0.95
    assert choice["offerings"] and all(o["usd_per_hour"] > 0 for o in choice["offerings"])
    if name == "generate-70b":
        assert choice["accelerators_per_worker"] >= 2  # 140 GB of weights: multi-GPU workers


def test_json_contract(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run_cli(["plan", recipe("summarize-llama-10m"), "--json", "--top", "3"], capsys)
    assert code == 0
    data = json.loads(out)
    assert out.count("\n") == 1
    assert {"workload", "options", "chosen", "reason"} <= set(data)
    assert {"rows", "input_tokens_per_row", "output_tokens_per_row"} <= set(data["workload"])
    assert data["workload"]["input_tokens_per_row"] == 500
    assert data["workload"]["output_tokens_per_row"] == 150
    assert len(data["options"]) == 3
    keys = {
        "accelerator",
        "accelerators_per_worker",
        "spot",
        "workers",
        "hours",
        "cost_usd",
        "p_on_time",
        "throughput_source",
        "offerings",
    }
    for option in data["options"]:
        assert keys <= set(option)
        for o in option["offerings"]:
            assert set(o) == {"cloud", "region", "instance_type", "usd_per_hour"}


def test_table_explains_the_choice(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run_cli(["plan", recipe("summarize-llama-10m")], capsys)
    assert code == 0
    assert "GPU" in out and "P(on time)" in out and "throughput" in out
    assert "★" in out
    assert "Choice: " in out and "is the cheapest plan that finishes within 8h with P ≥ 0.95" in out
    assert re.search(r"\$[\d.,]+ per 1M tokens \(input \+ output\), \$[\d.,]+ per 1M output", out)


def test_plot_draws_the_frontier(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run_cli(["plan", recipe("generate-70b"), "--plot"], capsys)
    assert code == 0
    assert "expected cost (USD) against finish time (hours)" in out
    assert "◆ Pareto frontier" in out


def test_deadline_too_short_exits_4_with_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run_cli(["plan", recipe("generate-70b"), "--deadline", "30m"], capsys)
    assert code == 4
    lines = err.strip().splitlines()
    assert len(lines) == 1
    assert lines[0].startswith("skybatch: error: no plan finishes within 30m with P ≥ 0.95")
    assert "the cheapest plan needs" in lines[0] and "the fastest costs $" in lines[0]


def test_budget_too_small_exits_4_and_json_says_why(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run_cli(
        ["plan", recipe("summarize-llama-10m"), "--budget", "5", "--json"], capsys
    )
    assert code == 4
    data = json.loads(out)
    assert data["chosen"] is None
    assert data["reason"].startswith("no plan finishes within 8h for the $5.00 budget")
    assert "finishing on time costs at least $" in err


def test_bad_deadline_is_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run_cli(["plan", recipe("embed-50m"), "--deadline", "soon"], capsys)
    assert code == 2
    assert err.startswith("skybatch: error: --deadline: expected a duration")


def test_local_recipe_measures_its_input(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run_cli(["plan", recipe("embed-minilm"), "--json"], capsys)
    assert code == 0, err
    data = json.loads(out)
    assert data["workload"]["rows_source"].startswith("input metadata")
    assert data["workload"]["input_tokens_source"].startswith(
        "tokenizer of sentence-transformers/all-MiniLM-L6-v2"
    )


def test_a_short_shard_reads_in_seconds_not_zero_minutes(
    capsys: pytest.CaptureFixture[str],
) -> None:
    code, out, err = run_cli(["plan", recipe("embed-minilm")], capsys)
    assert code == 0, err
    found = re.search(r"\(about (\S+) per shard\)", out)
    assert found is not None, out
    assert found.group(1) != "0" and re.fullmatch(r"\d+s|\d+m\d\ds|\d+m|\d+h\d\dm", found.group(1))
    assert "0 min" not in out


def test_help_has_an_example(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run_cli(["plan", "--help"], capsys)
    assert code == 0
    assert "Example" in out and "skybatch plan recipes/" in out


def test_plan_command_imports_no_duckdb() -> None:
    code = (
        "import sys; import scheduler.cli._plan, scheduler.plan; "
        "print(sorted(m for m in ('duckdb', 'pricing', 'sky', 'torch', 'transformers') "
        "if m in sys.modules))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT
    ).stdout
    assert out.strip() == "[]"
