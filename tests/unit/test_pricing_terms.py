"""Each cloud's terms and spot risk: the shipped tables, their lookups and their sources."""

from __future__ import annotations

from pathlib import Path

import pytest

import pricing
from scheduler.plan import PlanRequest, model_load_s
from scheduler.recipe import load_recipe

ROOT = Path(__file__).resolve().parents[2]


def test_preemption_rate_depends_on_the_gpu_class_and_history_of_that_gpu() -> None:
    assert pricing.preemption_rate_per_hour("aws", "L4") == pytest.approx(0.05)
    assert pricing.preemption_rate_per_hour("aws", "H200") == pytest.approx(0.10)
    assert pricing.preemption_rate_per_hour("gcp", "H100", "us-central1") == pytest.approx(0.12)
    # Nebius has its own row now instead of falling back silently.
    assert "Nebius" in pricing.spot_risk("nebius", "H200").source
    assert pricing.spot_risk("some-new-cloud").source.startswith("no row for this cloud")
    pricing.record_run(run_id="r", cloud="aws", spot=True, worker_hours=90.0, preemptions=18,
                       accelerator="H200")  # fmt: skip
    # (18 + 0.10 x 10) / (90 + 10) for H200; the L4's rate keeps its own (empty) history.
    assert pricing.preemption_rate_per_hour("aws", "H200") == pytest.approx(0.19)
    assert pricing.preemption_rate_per_hour("aws", "L4") == pytest.approx(0.05)


def test_every_risk_and_terms_row_names_its_source() -> None:
    import csv
    from importlib import resources

    for name in ("spot_risk.csv", "cloud_terms.csv"):
        text = resources.files("pricing").joinpath(f"data/{name}").read_text("utf-8")
        for row in csv.DictReader(text.splitlines()):
            assert len(row["source"]) > 20, (name, row)


def test_billing_terms_per_cloud() -> None:
    assert pricing.cloud_terms("aws").billing_increment_s == 1
    assert pricing.cloud_terms("aws").billing_minimum_s == 60
    assert pricing.cloud_terms("runpod").billing_increment_s == 60
    assert pricing.cloud_terms("AWS").egress_usd_per_gb == pytest.approx(0.09)
    unknown = pricing.cloud_terms("verda")
    assert unknown.billing_increment_s == 1 and unknown.egress_usd_per_gb is None


def test_spot_capacity_waits_longest_for_flagship_gpus() -> None:
    assert pricing.gpu_class("NVIDIA H100 80GB HBM3") == "flagship"
    assert pricing.gpu_class("L4") == "other"
    flagship = pricing.spot_risk("aws", "H200").capacity_wait_s_per_worker
    assert flagship > pricing.spot_risk("aws", "L4").capacity_wait_s_per_worker > 0


def test_model_download_follows_the_checkpoint_size() -> None:
    bf16 = model_load_s(70.6, pricing.bytes_per_param("BF16"))
    fp8 = model_load_s(70.6, pricing.bytes_per_param("FP8"))
    assert bf16 - fp8 == pytest.approx(70.6 / 0.5)  # 70.6 GB less at 0.5 GB/s


def test_request_knows_where_the_data_lives() -> None:
    req = PlanRequest.from_recipe(load_recipe(ROOT / "recipes" / "generate-70b.yaml"))
    assert (req.input_cloud, req.store_cloud) == ("aws", "aws")
    local = PlanRequest.from_recipe(load_recipe(ROOT / "recipes" / "embed-minilm.yaml"))
    assert (local.input_cloud, local.store_cloud) == (None, None)
