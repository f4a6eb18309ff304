"""Each cloud's terms and spot risk: the shipped tables, their lookups and their sources."""

from __future__ import annotations

import csv
import math
from importlib import resources
from pathlib import Path

import pytest

import pricing
from pricing._terms import BASES, parse_spot_risk
from scheduler.errors import PlanError
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


def _shipped(name: str) -> list[dict[str, str]]:
    text = resources.files("pricing").joinpath(f"data/{name}").read_text("utf-8")
    return list(csv.DictReader(text.splitlines()))


def test_every_risk_and_terms_row_names_its_source() -> None:
    for name in ("spot_risk.csv", "cloud_terms.csv"):
        for row in _shipped(name):
            assert len(row["source"]) > 20, (name, row)
    risks = parse_spot_risk(_shipped("spot_risk.csv"))
    assert {r.basis for r in risks.values()} <= set(BASES)
    for risk in risks.values():
        if risk.basis == "assumption":
            assert "assum" in risk.source, risk.source  # an assumption says it is one
        else:
            assert "http" in risk.source, risk.source


def test_lambda_no_spot_row_is_sourced_from_the_shipped_catalog() -> None:
    lam = pricing.spot_risk("lambda", "H100")
    assert (lam.basis, lam.preemptions_per_hour) == ("sourced", 0.0)
    offerings = [r for r in _shipped("gpu_prices.csv") if r["cloud"] == "lambda"]
    assert len(offerings) == 88 and "88 Lambda offerings" in lam.source
    assert not any(r["spot_price_per_hour"].strip() for r in offerings)


def test_gcp_rows_sit_above_googles_published_preemption_rate() -> None:
    # 15 %/day (the top of Google's published 5-15 %/day) as a per-hour hazard.
    published = -math.log(1 - 0.15) / 24
    for accelerator in ("L4", "H100"):
        risk = pricing.spot_risk("gcp", accelerator)
        assert risk.basis == "assumption"
        assert risk.published_per_hour == pytest.approx(published, abs=5e-5)
        assert risk.preemptions_per_hour >= published
    assert pricing.spot_risk("aws", "L4").published_per_hour is None


def test_azure_row_states_its_rate_on_azures_per_hour_eviction_scale() -> None:
    # Azure quotes eviction rates as the chance of eviction within the next hour.
    azure = pricing.spot_risk("azure", "A100-80GB")
    chance = 1 - math.exp(-azure.preemptions_per_hour)
    assert f"{100 * chance:.1f} % chance of eviction within the hour" in azure.source


_GOOD = {
    "cloud": "x",
    "gpu_class": "*",
    "region": "*",
    "preemptions_per_hour": "0.1",
    "capacity_wait_s_per_worker": "30",
    "basis": "assumption",
    "published_per_hour": "",
    "source": "assumption: nothing is published for this cloud",
}


@pytest.mark.parametrize(
    ("change", "match"),
    [
        ({"basis": "guess"}, r"line 2: basis 'guess' is not one of sourced, assumption"),
        ({"source": ""}, r"line 2: source is empty"),
        ({"preemptions_per_hour": "often"}, r"line 2: preemptions_per_hour 'often' is not a"),
        ({"capacity_wait_s_per_worker": "-5"}, r"line 2: capacity_wait_s_per_worker '-5'"),
        ({"published_per_hour": "0.2"}, r"line 2: a sourced or published figure needs its URL"),
        (
            {"published_per_hour": "0.2", "source": "assumption over https://example.org/x"},
            r"line 2: preemptions_per_hour 0.1 is below the published 0.2",
        ),
        ({"basis": "sourced"}, r"line 2: a sourced or published figure needs its URL"),
    ],
)
def test_bad_risk_rows_are_refused_with_line_and_field(change: dict[str, str], match: str) -> None:
    with pytest.raises(PlanError, match=match):
        parse_spot_risk([{**_GOOD, **change}])


def test_repeated_risk_row_is_refused() -> None:
    with pytest.raises(PlanError, match=r"spot_risk.csv line 3: x,\*,\* repeats an earlier row"):
        parse_spot_risk([_GOOD, _GOOD])


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
