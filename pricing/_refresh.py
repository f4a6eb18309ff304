"""Refreshing the price catalog from SkyPilot's ``vms.csv`` files.

:func:`from_fetched` reads the files :mod:`pricing._fetch` downloaded over HTTP (SkyPilot's
public catalog, one file per cloud); :func:`from_vms_dir` reads ``DIR/<cloud>/vms.csv``
(``skybatch pricing refresh --from DIR``, e.g. ``~/.sky/catalogs/v8``). Neither imports
SkyPilot. GCP lists GPUs and host VMs on separate rows; the GPU price is
joined with its host VM's price the way SkyPilot does, and a GPU whose host VM has no
price in that zone is kept but flagged ``host_price_missing`` (never chosen).
"""

from __future__ import annotations

import csv
from collections.abc import Iterable
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from pricing._offering import Offering, make_offering, sanitise
from scheduler.errors import UsageError

__all__ = ["CATALOG_VERSION", "from_fetched", "from_vms_dir", "read_vms_csv"]

CATALOG_VERSION = "v8"

# GCP machine families that carry fixed GPUs (SkyPilot's gcp_catalog uses the same map);
# other GPUs attach to an n1 host with this many vCPUs per GPU count.
_GCP_HOSTS: dict[str, dict[int, tuple[str, ...]]] = {
    "A100": {
        1: ("a2-highgpu-1g",),
        2: ("a2-highgpu-2g",),
        4: ("a2-highgpu-4g",),
        8: ("a2-highgpu-8g",),
        16: ("a2-megagpu-16g",),
    },
    "A100-80GB": {n: (f"a2-ultragpu-{n}g",) for n in (1, 2, 4, 8)},
    "L4": {
        1: ("g2-standard-4", "g2-standard-8", "g2-standard-12", "g2-standard-16"),
        2: ("g2-standard-24",),
        4: ("g2-standard-48",),
        8: ("g2-standard-96",),
    },
    "H100": {n: (f"a3-highgpu-{n}g",) for n in (1, 2, 4, 8)},
    "H100-MEGA": {8: ("a3-megagpu-8g",)},
    "H200": {8: ("a3-ultragpu-8g",)},
    "B200": {8: ("a4-highgpu-8g",)},
}
_N1_VCPUS_PER_COUNT = {1: 8, 2: 16, 4: 32, 8: 64, 16: 96}


def from_fetched(files: Iterable[tuple[str, Path]]) -> list[Offering]:
    """Sanitised offerings from fetched ``(cloud, vms.csv path)`` pairs."""
    now = datetime.now(timezone.utc)
    out: list[Offering] = []
    for cloud, path in files:
        out.extend(
            read_vms_csv(
                path,
                cloud.lower(),
                now=now,
                source=f"skypilot-catalog {CATALOG_VERSION}/{cloud}/vms.csv over HTTP",
            )
        )
    return sanitise(out)


def _f(value: str | None) -> float | None:
    if value is None or not value.strip():
        return None
    try:
        number = float(value)
    except ValueError:
        return None
    return None if number != number else number


def _read_rows(path: Path) -> list[dict[str, str]]:
    with path.open(newline="", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    required = {"InstanceType", "AcceleratorName", "AcceleratorCount", "Price", "Region"}
    missing = required - set(rows[0].keys() if rows else required)
    if missing:
        raise UsageError(
            f"pricing refresh --from: {path} is not a SkyPilot vms.csv "
            f"(missing columns: {', '.join(sorted(missing))})"
        )
    return rows


def _gcp_rows(rows: list[dict[str, str]], source: str, now: datetime) -> list[Offering]:
    hosts: dict[tuple[str, str], list[dict[str, str]]] = {}
    for r in rows:
        if r["InstanceType"] and not r["AcceleratorName"]:
            hosts.setdefault((r["Region"], r.get("AvailabilityZone", "")), []).append(r)
    out = []
    for r in rows:
        if r["InstanceType"] or not r["AcceleratorName"]:
            continue
        acc, count = r["AcceleratorName"], int(float(r["AcceleratorCount"] or 0))
        if acc.lower().startswith("tpu"):
            continue
        zone_hosts = hosts.get((r["Region"], r.get("AvailabilityZone", "")), [])
        names = _GCP_HOSTS.get(acc, {}).get(count)
        if names:
            cands = [h for h in zone_hosts if h["InstanceType"] in names]
        else:
            cpus = _N1_VCPUS_PER_COUNT.get(count, 8 * count)
            cands = [
                h
                for h in zone_hosts
                if h["InstanceType"].startswith("n1-")
                and (_f(h.get("vCPUs")) or 0) >= cpus
                and (_f(h.get("MemoryGiB")) or 0) >= 3.75 * cpus
            ]
        priced = [h for h in cands if _f(h["Price"]) is not None]
        gpu_price, gpu_spot = _f(r["Price"]), _f(r.get("SpotPrice"))
        if priced:
            host = min(priced, key=lambda h: _f(h["Price"]) or 0.0)
            host_spot = _f(host.get("SpotPrice"))
            out.append(
                make_offering(
                    cloud="gcp",
                    region=r["Region"],
                    instance_type=host["InstanceType"],
                    accelerator=acc,
                    accelerator_count=count,
                    vcpus=host.get("vCPUs"),
                    memory_gib=host.get("MemoryGiB"),
                    price=None if gpu_price is None else gpu_price + (_f(host["Price"]) or 0),
                    spot_price=None
                    if gpu_spot is None or host_spot is None
                    else gpu_spot + host_spot,
                    source=source,
                    fetched_at=now,
                )
            )
        else:
            out.append(
                make_offering(
                    cloud="gcp",
                    region=r["Region"],
                    instance_type=(names[0] if names else "(attachable)"),
                    accelerator=acc,
                    accelerator_count=count,
                    vcpus=None,
                    memory_gib=None,
                    price=gpu_price,
                    spot_price=gpu_spot,
                    source=source,
                    fetched_at=now,
                    flags=("host_price_missing",),
                )
            )
    return out


def _cheapest_per_region(offerings: list[Offering]) -> list[Offering]:
    # vms.csv has one row per zone; keep the cheapest zone of each region.
    best: dict[tuple[str, str, str, str, int], Offering] = {}
    for o in offerings:
        cur = best.get(o.key)
        if cur is None or (o.raw_usd_per_hour or float("inf")) < (
            cur.raw_usd_per_hour or float("inf")
        ):
            best[o.key] = o
    return list(best.values())


def read_vms_csv(
    path: Path, cloud: str, *, now: datetime | None = None, source: str | None = None
) -> list[Offering]:
    """Unsanitised offerings from one SkyPilot ``vms.csv``."""
    now = now or datetime.now(timezone.utc)
    rows = _read_rows(path)
    source = source or f"vms.csv import ({path})"
    if cloud == "gcp":
        return _cheapest_per_region(_gcp_rows(rows, source, now))
    out = []
    for r in rows:
        if not r["AcceleratorName"] or not r["InstanceType"]:
            continue
        values: dict[str, Any] = {
            "cloud": cloud,
            "region": r["Region"],
            "instance_type": r["InstanceType"],
            "accelerator": r["AcceleratorName"],
            "accelerator_count": float(r["AcceleratorCount"] or 0),
            "vcpus": r.get("vCPUs"),
            "memory_gib": r.get("MemoryGiB"),
            "price": r["Price"],
            "spot_price": r.get("SpotPrice"),
        }
        if values["accelerator_count"] <= 0:
            continue
        out.append(make_offering(**values, source=source, fetched_at=now))
    return _cheapest_per_region(out)


def from_vms_dir(directory: str | Path) -> list[Offering]:
    """Sanitised offerings from ``DIR/<cloud>/vms.csv`` (or one ``DIR/vms.csv`` per cloud dir)."""
    base = Path(directory).expanduser()
    if not base.is_dir():
        raise UsageError(f"pricing refresh --from: {base} is not a directory")
    files = sorted(base.glob("*/vms.csv"))
    if (base / "vms.csv").is_file():
        files.insert(0, base / "vms.csv")
    if not files:
        raise UsageError(
            f"pricing refresh --from: no <cloud>/vms.csv under {base} "
            "(expected the layout of ~/.sky/catalogs/v8)"
        )
    now = datetime.now(timezone.utc)
    out: list[Offering] = []
    for path in files:
        cloud = path.parent.name.lower()
        out.extend(read_vms_csv(path, cloud, now=now))
    return sanitise(out)
