"""Refreshing prices from vms.csv files (the HTTP fetch: test_pricing_fetch.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

import pricing
from pricing._refresh import from_vms_dir

LAMBDA_VMS = """InstanceType,AcceleratorName,AcceleratorCount,vCPUs,MemoryGiB,Price,SpotPrice,Region,GpuInfo
gpu_1x_h100_sxm5,H100,1.0,26.0,225.0,2.49,,us-east-1,"{'Gpus': [{'Name': 'H100', 'Manufacturer': 'NVIDIA', 'Count': 1.0, 'MemoryInfo': {'SizeInMiB': 81920}}], 'TotalGpuMemoryInMiB': 81920}"
gpu_1x_a10,A10,1.0,30.0,200.0,0.75,,us-west-1,"{'Gpus': [{'Name': 'A10', 'Manufacturer': 'NVIDIA', 'Count': 1.0, 'MemoryInfo': {'SizeInMiB': 24576}}], 'TotalGpuMemoryInMiB': 24576}"
gpu_1x_new,L40S,1.0,30.0,200.0,0.0,,us-west-1,"{'Gpus': [{'Name': 'L40S', 'Manufacturer': 'NVIDIA', 'Count': 1.0, 'MemoryInfo': {'SizeInMiB': 49152}}], 'TotalGpuMemoryInMiB': 49152}"
"""
GCP_VMS = """InstanceType,vCPUs,MemoryGiB,AcceleratorName,AcceleratorCount,GpuInfo,Region,AvailabilityZone,Price,SpotPrice
g2-standard-4,4.0,16.0,,,,us-central1,us-central1-a,0.14,0.05
,,,L4,1,L4,us-central1,us-central1-a,0.56,0.22
,,,L4,1,L4,europe-west4,europe-west4-a,0.60,0.25
n1-standard-8,8.0,30.0,,,,us-central1,us-central1-a,0.38,0.08
,,,T4,1,T4,us-central1,us-central1-a,0.35,0.14
"""


def _catalog(root: Path) -> Path:
    for cloud, text in (("lambda", LAMBDA_VMS), ("gcp", GCP_VMS)):
        (root / cloud).mkdir(parents=True, exist_ok=True)
        (root / cloud / "vms.csv").write_text(text)
    return root


def test_from_vms_dir_joins_gcp_hosts_and_flags_missing_ones(tmp_path: Path) -> None:
    offers = {(o.cloud, o.region, o.accelerator): o for o in from_vms_dir(_catalog(tmp_path))}
    l4 = offers[("gcp", "us-central1", "L4")]
    assert l4.instance_type == "g2-standard-4"
    assert l4.price(False) == pytest.approx(0.70) and l4.price(True) == pytest.approx(0.27)
    t4 = offers[("gcp", "us-central1", "T4")]
    assert t4.instance_type == "n1-standard-8" and t4.price(False) == pytest.approx(0.73)
    orphan = offers[("gcp", "europe-west4", "L4")]
    assert orphan.flags == ("host_price_missing",)
    assert orphan.price(False) is None and orphan.price(True) is None
    zero = offers[("lambda", "us-west-1", "L40S")]
    assert "ondemand_zero" in zero.flags and zero.price(False) is None


def test_refresh_from_dir_replaces_only_those_clouds(tmp_path: Path) -> None:
    before = len(pricing.list_offerings(clouds=["aws"]))
    diff = pricing._catalog.replace_offerings(from_vms_dir(_catalog(tmp_path)))
    assert diff.clouds == ("gcp", "lambda")
    assert len(pricing.list_offerings(clouds=["aws"])) == before  # untouched
    assert {o.cloud for o in diff.removed} == {"gcp", "lambda"}
    changed = {o.instance_type: (a, o) for a, o in diff.changed}
    old, new = changed["gpu_1x_h100_sxm5"]
    assert new.raw_usd_per_hour == 2.49 and old.raw_usd_per_hour != 2.49
    lam = pricing.list_offerings(clouds=["lambda"], include_flagged=True)
    assert {o.instance_type for o in lam} == {"gpu_1x_h100_sxm5", "gpu_1x_a10", "gpu_1x_new"}
    assert {o.instance_type for o in pricing.list_offerings(clouds=["lambda"])} == {
        "gpu_1x_a10",
        "gpu_1x_h100_sxm5",
    }


def test_refresh_without_catalog_is_one_clear_error(isolated_home: Path) -> None:
    from scheduler.errors import UsageError

    with pytest.raises(UsageError, match="is not a directory"):
        from_vms_dir(isolated_home / "nope")
    (isolated_home / "bad" / "aws").mkdir(parents=True)
    (isolated_home / "bad" / "aws" / "vms.csv").write_text("a,b\n1,2\n")
    with pytest.raises(UsageError, match=r"is not a SkyPilot vms\.csv"):
        from_vms_dir(isolated_home / "bad")
