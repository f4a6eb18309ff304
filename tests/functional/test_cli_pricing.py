"""`skybatch pricing show|refresh` and `skybatch bench` through the real CLI."""

from __future__ import annotations

import importlib.util
import json
import re
from pathlib import Path

import pytest
from click.testing import CliRunner

import pricing
from scheduler.cli import _register, cli

_register()


def _invoke(*args: str) -> tuple[int, str, str]:
    try:
        runner = CliRunner(mix_stderr=False)  # type: ignore[call-arg]
    except TypeError:  # click >= 8.2 always keeps stderr apart
        runner = CliRunner()
    result = runner.invoke(cli, list(args), catch_exceptions=False)
    return result.exit_code, result.stdout, result.stderr


def test_show_ranks_cheapest_per_gpu_hour_and_never_shows_flagged() -> None:
    code, out, _ = _invoke("pricing", "show", "--gpu", "H100", "--spot", "--top", "50", "--json")
    assert code == 0
    data = json.loads(out)
    offers = data["offerings"]
    assert 0 < len(offers) <= 50 and data["spot"] is True
    per_gpu = [o["spot_usd_per_hour"] / o["accelerator_count"] for o in offers]
    assert per_gpu == sorted(per_gpu)
    assert {o["accelerator"] for o in offers} == {"H100"}
    assert not any(
        f in ("spot_zero", "spot_above_ondemand", "spot_outlier", "host_price_missing")
        for o in offers
        for f in o["flags"]
    )
    assert data["max_price_age_days"] == 30.0


def test_show_table_filters_and_flags() -> None:
    code, out, _ = _invoke("pricing", "show", "--gpu", "a100", "--cloud", "gcp", "--top", "3")
    assert code == 0
    assert "Cheapest on-demand offerings" in out and "A100-40GB" in out and "gcp" in out
    assert out.count("a2-") >= 3
    code, out, _ = _invoke("pricing", "show", "--cloud", "vast", "--spot", "--all", "--json")
    flagged = [o for o in json.loads(out)["offerings"] if o["flags"]]
    assert flagged and all(o["spot_usd_per_hour"] is None for o in flagged)
    code, out, _ = _invoke("pricing", "show", "--gpu", "nonexistent-gpu")
    assert code == 0 and "No offering matches" in out


def test_refresh_from_dir_prints_the_diff(tmp_path: Path) -> None:
    (tmp_path / "lambda").mkdir()
    (tmp_path / "lambda" / "vms.csv").write_text(
        "InstanceType,AcceleratorName,AcceleratorCount,vCPUs,MemoryGiB,Price,SpotPrice,Region\n"
        "gpu_1x_h100_sxm5,H100,1,26,225,2.49,,us-east-1\n"
        "gpu_8x_b200,B200,8,200,1800,39.9,,us-east-1\n"
    )
    code, out, _ = _invoke("pricing", "refresh", "--from", str(tmp_path))
    assert code == 0
    assert out.startswith("Imported 2 offerings for lambda:")
    assert "+ lambda us-east-1 gpu_8x_b200 B200x8" in out
    assert "~ lambda us-east-1 gpu_1x_h100_sxm5" in out and "-> 2.49 $/h" in out
    assert "- lambda" in out  # the snapshot's other lambda rows are gone
    code, out, _ = _invoke("pricing", "refresh", "--from", str(tmp_path), "--json")
    data = json.loads(out)
    assert data["unchanged"] == 2 and data["added"] == data["removed"] == data["changed"] == []


def test_refresh_says_how_many_it_left_out(tmp_path: Path) -> None:
    (tmp_path / "aws").mkdir()
    (tmp_path / "aws" / "vms.csv").write_text(
        "InstanceType,AcceleratorName,AcceleratorCount,vCPUs,MemoryGiB,Price,SpotPrice,Region\n"
        "p5.48xlarge,H100,8,192,2048,98.32,,us-east-1\n"
    )
    code, out, _ = _invoke("pricing", "refresh", "--from", str(tmp_path))
    assert code == 0
    found = re.search(r", (\d+) removed,", out)
    assert found is not None and int(found.group(1)) > 20, out
    removed = int(found.group(1))
    assert out.count("\n  - aws") == 20
    assert f"  … {removed - 20} more removed (--json lists them all)" in out


def test_refresh_errors_are_one_line(tmp_path: Path) -> None:
    from scheduler.cli import main

    with pytest.raises(SystemExit) as exit_info:
        main(["pricing", "refresh", "--from", str(tmp_path / "missing")])
    assert exit_info.value.code == 2


BENCH_FN = """
def embed(rows):
    return [{"len": len(r["text"])} for r in rows]
"""


def test_bench_python_engine_stores_a_measured_figure(tmp_path: Path) -> None:
    fn = tmp_path / "benchfn.py"
    fn.write_text(BENCH_FN)
    code, out, err = _invoke(
        "bench",
        "--model",
        f"{fn}:embed",
        "--engine",
        "python",
        "--task",
        "score",
        "--rows",
        "300",
        "--input-tokens",
        "40",
        "--json",
    )
    assert code == 0
    data = json.loads(out)
    assert data["accelerator"] == "cpu" and data["rows"] == 300 and data["stored"] is True
    # Signs of life on stderr while it loads and measures; stdout holds only the object.
    assert f"bench: loading {fn}:embed (python engine) …" in err
    assert "bench: measuring 300 rows in batches of" in err
    assert data["rows_per_s"] > 0 and data["tokens_per_s"] == pytest.approx(data["rows_per_s"] * 40)
    est = pricing.estimate_throughput(
        model=f"{fn}:embed",
        engine="python",
        task="score",
        accelerator="cpu",
        count=1,
        input_tokens=40,
        output_tokens=0,
    )
    assert est.kind == "measured" and est.rows_per_s == pytest.approx(data["rows_per_s"])
    assert "skybatch bench" in est.source


def test_bench_needs_a_model_or_recipe() -> None:
    from scheduler.cli import main

    with pytest.raises(SystemExit) as exit_info:
        main(["bench", "--engine", "python"])
    assert exit_info.value.code == 2


def test_bench_recipe_uses_its_input_sample(tmp_path: Path) -> None:
    fn = tmp_path / "scorefn.py"
    fn.write_text(BENCH_FN)
    data = tmp_path / "rows.jsonl"
    data.write_text("".join(json.dumps({"id": i, "text": "word " * 20}) + "\n" for i in range(10)))
    recipe = tmp_path / "r.yaml"
    recipe.write_text(
        f"name: bench-recipe\ninput: {{path: {data}, id_column: id}}\ntask: score\n"
        f"model: {{engine: python, name: '{fn}:embed'}}\n"
    )
    code, out, _ = _invoke("bench", "--recipe", str(recipe), "--rows", "25", "--no-store", "--json")
    assert code == 0
    result = json.loads(out)
    assert result["rows"] == 25 and result["stored"] is False
    assert result["input_tokens"] == 25  # 100 characters / 4, no tokenizer for a function
    code, out, _ = _invoke("bench", "--recipe", str(recipe), "--rows", "25", "--batch-size",
                           "7", "--no-store", "--json")  # fmt: skip
    assert code == 0 and json.loads(out)["batch_size"] == 7  # the flag beats the recipe's


@pytest.mark.slow
@pytest.mark.skipif(
    importlib.util.find_spec("sentence_transformers") is None, reason="needs sentence-transformers"
)
def test_bench_minilm_on_cpu(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    code, out, _ = _invoke(
        "bench",
        "--model",
        "sentence-transformers/all-MiniLM-L6-v2",
        "--engine",
        "torch",
        "--rows",
        "64",
        "--input-tokens",
        "16",
        "--json",
    )
    assert code == 0
    data = json.loads(out)
    assert data["task"] == "embed" and data["accelerator"] == "cpu" and data["rows_per_s"] > 1
    est = pricing.estimate_throughput(
        model="sentence-transformers/all-MiniLM-L6-v2",
        engine="torch",
        task="embed",
        accelerator="cpu",
        count=1,
        input_tokens=16,
        output_tokens=0,
    )
    assert est.kind == "measured"


def test_estimate_lists_gpus_per_worker_and_provenance() -> None:
    code, out, _ = _invoke(
        "pricing",
        "estimate",
        "--model",
        "meta-llama/Llama-3.1-70B-Instruct",
        "--gpu",
        "H100",
        "--gpu",
        "T4",
        "--gpu",
        "B300",
        "--json",
    )
    assert code == 0
    by_gpu = {e["accelerator"]: e for e in json.loads(out)["estimates"]}
    assert by_gpu["H100"]["accelerators_per_worker"] == 2
    assert by_gpu["H100"]["low_rows_per_s"] <= by_gpu["H100"]["rows_per_s"]
    assert "roofline" in by_gpu["H100"]["source"]
    assert by_gpu["T4"]["error"] == "does not fit on 8 GPUs"
    assert "no spec" in by_gpu["B300"]["error"]
    code, out, _ = _invoke(
        "pricing",
        "estimate",
        "--model",
        "BAAI/bge-large-en-v1.5",
        "--engine",
        "torch",
        "--task",
        "embed",
        "--gpu",
        "L4",
    )
    assert code == 0 and "L4 x1" in out and "published" in out


def test_show_warns_when_prices_are_older_than_the_limit(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SKYBATCH_MAX_PRICE_AGE_DAYS", "0")
    code, out, _ = _invoke("pricing", "show", "--gpu", "L4", "--top", "2")
    assert code == 0 and "run `skybatch pricing refresh`" in out
    monkeypatch.setenv("SKYBATCH_MAX_PRICE_AGE_DAYS", "100000")
    code, out, _ = _invoke("pricing", "show", "--gpu", "L4", "--top", "2")
    assert code == 0 and "pricing refresh" not in out
