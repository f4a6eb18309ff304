"""Names, sanitising and the shipped snapshot: no flagged price is ever returned as trusted."""

from __future__ import annotations

import csv
from datetime import datetime, timezone
from importlib import resources
from pathlib import Path

import pytest

import pricing
from pricing._offering import load_snapshot, make_offering, sanitise

NOW = datetime(2026, 11, 23, tzinfo=timezone.utc)


@pytest.mark.parametrize(
    ("raw", "norm"),
    [
        ("H100", "H100"),
        ("H100-SXM", "H100"),
        ("NVIDIA H100 80GB HBM3", "H100"),
        ("H100_SXM", "H100"),
        ("H100-PCIe", "H100-PCIe"),
        ("NVIDIA H100 PCIe", "H100-PCIe"),
        ("A100", "A100-40GB"),
        ("a100", "A100-40GB"),
        ("NVIDIA A100-SXM4-40GB", "A100-40GB"),
        ("NVIDIA A100-SXM4-80GB", "A100-80GB"),
        ("A100-80GB", "A100-80GB"),
        ("Tesla T4", "T4"),
        ("NVIDIA L4", "L4"),
        ("NVIDIA GeForce RTX 4090", "RTX4090"),
        ("RTXPRO6000", "RTX-PRO-6000"),
        ("RTX-6000-Ada", "RTX6000-Ada"),
        ("RTX6000-Ada", "RTX6000-Ada"),
        ("AMD Instinct MI300X", "MI300X"),
        ("cpu", "cpu"),
    ],
)
def test_normalize_accelerator(raw: str, norm: str) -> None:
    assert pricing.normalize_accelerator(raw) == norm


def test_sky_name_round_trip() -> None:
    assert pricing.sky_accelerator_name("A100-40GB") == "A100"
    assert pricing.sky_accelerator_name("H100") == "H100"


def _offer(
    cloud: str = "aws", od: object = 2.0, spot: object = 1.0, **kw: object
) -> pricing.Offering:
    values: dict[str, object] = {
        "cloud": cloud,
        "region": "r1",
        "instance_type": "x.large",
        "accelerator": "L4",
        "accelerator_count": 1,
        "vcpus": 4,
        "memory_gib": 16,
        "price": od,
        "spot_price": spot,
        "source": "test",
        "fetched_at": NOW,
    }
    values.update(kw)
    return make_offering(**values)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("offer", "flag", "od_ok", "spot_ok"),
    [
        (_offer(od=0.0), "ondemand_zero", False, True),
        (_offer(od=None), "ondemand_missing", False, True),
        (_offer(spot=0.0), "spot_zero", True, False),
        (_offer(spot=3.0), "spot_above_ondemand", True, False),
        (_offer(cloud="gcp", vcpus=None, memory_gib=None), "host_price_missing", False, False),
        (_offer(cloud="gcp", vcpus=0, memory_gib=16), "host_price_missing", False, False),
    ],
)
def test_sanitise_flags_and_blanks(
    offer: pricing.Offering, flag: str, od_ok: bool, spot_ok: bool
) -> None:
    [out] = sanitise([offer])
    assert flag in out.flags
    assert (out.price(spot=False) is not None) is od_ok
    assert (out.price(spot=True) is not None) is spot_ok
    assert out.raw_usd_per_hour == offer.raw_usd_per_hour  # raw figure kept for audits


def test_sanitise_trusts_sane_rows_and_spots_outliers() -> None:
    sane = [_offer(region=f"r{i}", od=1.0 + i / 10, spot=0.5) for i in range(6)]
    wild = _offer(region="rx", od=1.1, spot=700.0)  # SkyPilot's "not offered" placeholder
    out = {o.region: o for o in sanitise([*sane, wild])}
    assert all(out[f"r{i}"].flags == () for i in range(6))
    assert out["rx"].flags == ("spot_above_ondemand",) or "spot_outlier" in out["rx"].flags
    assert out["rx"].price(spot=True) is None and out["rx"].price(spot=False) == 1.1
    cheap = _offer(region="ry", od=0.01, spot=None)
    assert "ondemand_outlier" in sanitise([*sane, cheap])[-1].flags


def test_snapshot_never_trusts_a_bad_raw_price() -> None:
    text = resources.files("pricing").joinpath("data/gpu_prices.csv").read_text("utf-8")
    raw_rows = list(csv.DictReader(text.splitlines()))
    snapshot = load_snapshot()
    assert len(snapshot) == len(raw_rows) == 624
    for o in snapshot:
        od, spot = o.raw_usd_per_hour, o.raw_spot_usd_per_hour
        if od is None or od <= 0:
            assert o.price(spot=False) is None, o
        if spot is not None and (spot <= 0 or (od is not None and spot > od)):
            assert o.price(spot=True) is None, o
        if o.flags:
            # Every flag blanks at least one price; a trusted row has both it can have.
            assert o.price(spot=False) is None or o.price(spot=True) is None, o
        for spot_side in (False, True):
            price = o.price(spot_side)
            assert price is None or price > 0
    flagged = [o for o in snapshot if o.flags]
    kinds = {f for o in flagged for f in o.flags}
    assert {"spot_zero", "ondemand_missing"} <= kinds
    assert sum("spot_zero" in o.flags for o in snapshot) == 24  # vast.ai rows with spot 0


def test_database_returns_no_flagged_price() -> None:
    everything = pricing.list_offerings(include_flagged=True)
    default = pricing.list_offerings()
    assert len(everything) == 624
    assert all(o.price(False) is not None or o.price(True) is not None for o in default)
    by_key = {o.key: o for o in load_snapshot()}
    for o in everything:
        assert o.price(False) == by_key[o.key].price(False)
        assert o.price(True) == by_key[o.key].price(True)
        if "spot_zero" in o.flags or "spot_above_ondemand" in o.flags:
            assert o.price(True) is None
        if {"ondemand_zero", "ondemand_missing", "host_price_missing"} & set(o.flags):
            assert o.price(False) is None


def test_filters_take_any_spelling() -> None:
    a100 = pricing.list_offerings(accelerators=["a100"], clouds=["GCP"])
    assert a100 and {o.accelerator for o in a100} == {"A100-40GB"}
    assert {o.cloud for o in a100} == {"gcp"}
    one_region = pricing.list_offerings(regions=["us-central1"], clouds=["gcp"])
    assert one_region and {o.region for o in one_region} == {"us-central1"}


def test_prices_age(monkeypatch: pytest.MonkeyPatch) -> None:
    age = pricing.prices_age_days(now=datetime(2027, 1, 2, tzinfo=timezone.utc))
    assert age == pytest.approx(40.0)
    assert pricing.max_price_age_days() == 30.0
    monkeypatch.setenv("SKYBATCH_MAX_PRICE_AGE_DAYS", "7")
    assert pricing.max_price_age_days() == 7.0


def test_specs_are_normalised_and_complete() -> None:
    specs = pricing.gpu_specs()
    assert {"H100", "H200", "A100-40GB", "A100-80GB", "L4", "A10G", "T4"} <= set(specs)
    assert pricing.gpu_spec("A100") == specs["A100-40GB"]
    assert specs["A10G"].bf16_tflops == specs["A10"].bf16_tflops
    assert "A10 datasheet" in specs["A10G"].source
    assert pricing.gpu_spec("GB300-imaginary") is None


def test_implausible_spot_prices_are_named_on_the_real_snapshot() -> None:
    by_key = {(o.cloud, o.region, o.instance_type): o for o in load_snapshot()}
    # p5en (8x H200) in eu-south-2: spot 6.836 against 68.36 on demand, exactly 10 %.
    tenth = by_key[("aws", "eu-south-2", "p5en.48xlarge")]
    assert "spot_tenth_of_ondemand" in tenth.flags
    assert tenth.price(spot=True) is None and tenth.price(spot=False) == pytest.approx(68.35968)
    # RunPod copies on-demand into spot, although it sells spot pods at a discount.
    runpod = [o for o in by_key.values() if o.cloud == "runpod"]
    assert runpod and all("spot_equals_ondemand" in o.flags for o in runpod)
    assert all(o.price(spot=True) is None and o.price(spot=False) for o in runpod)
    tenths = [o for o in by_key.values() if "spot_tenth_of_ondemand" in o.flags]
    assert {o.instance_type for o in tenths} == {
        "p5en.48xlarge",
        "p3.16xlarge",
        "p3.8xlarge",
    }


@pytest.mark.parametrize(
    ("cloud", "od", "spot", "flag"),
    [
        ("aws", 10.0, 1.0, "spot_tenth_of_ondemand"),
        ("aws", 68.35968, 6.836, "spot_tenth_of_ondemand"),
        ("runpod", 2.0, 2.0, "spot_equals_ondemand"),
        ("aws", 2.0, 2.0, "spot_equals_ondemand"),
    ],
)
def test_spot_rules_blank_the_spot_price_only(
    cloud: str, od: float, spot: float, flag: str
) -> None:
    [out] = sanitise([_offer(cloud=cloud, od=od, spot=spot)])
    assert out.flags == (flag,)
    assert out.price(spot=True) is None and out.price(spot=False) == od


def test_a_plausible_discount_is_trusted() -> None:
    for od, spot in ((10.0, 1.2), (10.0, 0.9), (10.0, 9.99)):
        [out] = sanitise([_offer(od=od, spot=spot)])
        assert out.flags == () and out.price(spot=True) == spot
    [lam] = sanitise([_offer(cloud="lambda", od=2.0, spot=2.0)])  # sells no discounted spot
    assert lam.flags == ()


def test_a_database_from_before_the_rules_is_migrated(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import duckdb

    from pricing._db import MIGRATIONS

    path = tmp_path / "old" / "skybatch.duckdb"
    path.parent.mkdir()
    con = duckdb.connect(str(path))
    con.execute(
        "CREATE TABLE schema_version (version INTEGER PRIMARY KEY, applied_at TIMESTAMP NOT NULL)"
    )
    con.execute(MIGRATIONS[0][1])
    con.execute("INSERT INTO schema_version VALUES (1, now())")
    con.execute(
        "INSERT INTO gpu_specs VALUES ('L4', 24, 300, 121, 242, 's'), "
        "('H100', 80, 3350, 989, 1979, 's')"
    )
    for cloud, itype, od, spot in (
        ("aws", "p5en.48xlarge", 68.35968, 6.836),
        ("runpod", "1x_L4", 0.43, 0.43),
        ("aws", "g6.xlarge", 0.8, 0.3),
    ):
        con.execute(
            "INSERT INTO offerings VALUES ('" + cloud + "', 'r', ?, 'L4', 1, 4, 16, ?, ?, ?, ?,"
            " '', 's', now())",
            [itype, od, spot, od, spot],
        )
    con.close()
    monkeypatch.setenv("SKYBATCH_HOME", str(path.parent))
    specs = pricing.gpu_specs()
    assert specs["L4"].memory_gib == pytest.approx(24e9 / 2**30)
    assert specs["H100"].memory_gib == 80
    rows = {o.instance_type: o for o in pricing.list_offerings(include_flagged=True)}
    assert rows["p5en.48xlarge"].flags == ("spot_tenth_of_ondemand",)
    assert rows["1x_L4"].flags == ("spot_equals_ondemand",)
    assert rows["g6.xlarge"].flags == () and rows["g6.xlarge"].price(spot=True) == 0.3
    assert rows["p5en.48xlarge"].price(spot=True) is None
    assert rows["p5en.48xlarge"].price(spot=False) == pytest.approx(68.35968)


def test_l4_and_l40s_memory_is_read_as_gib() -> None:
    specs = pricing.gpu_specs()
    assert specs["L4"].memory_gib == pytest.approx(22.35, abs=0.01)
    assert specs["L40S"].memory_gib == pytest.approx(44.70, abs=0.01)
    assert specs["A100-80GB"].memory_gib == 80
