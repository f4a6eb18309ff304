"""Offerings as values: one price row, made from raw source values and sanitised.

Rows come from three places, all through :func:`sanitise`:

* the snapshot shipped in ``pricing/data/gpu_prices.csv`` (SkyPilot's public catalog, one
  commit per row), loaded when the database is created (:func:`load_snapshot`);
* ``skybatch pricing refresh``: SkyPilot's own catalog through
  ``sky.catalog.list_accelerators(all_regions=True)`` (offline when the catalog files sit
  under ``~/.sky/catalogs/v8/<cloud>/vms.csv``);
* ``skybatch pricing refresh --from DIR``: SkyPilot ``vms.csv`` files read directly (see
  :mod:`pricing._refresh`).

A price is trusted only when it is present and positive, a spot price only when it is
below on-demand, and a GCP price only when its host VM's price was found. Anything else
sets a flag and the price becomes ``None``: :meth:`Offering.price` never returns it, so a
planner cannot choose it. Raw figures stay in the table for display and audits.
"""

from __future__ import annotations

import csv
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from datetime import datetime, timezone
from importlib import resources
from typing import Any

from pricing._specs import normalize_accelerator

__all__ = [
    "SNAPSHOT_FETCHED_AT",
    "SPOT_ONLY_FLAGS",
    "Offering",
    "load_snapshot",
    "make_offering",
    "sanitise",
]

# The day the snapshot CSV was copied from the reference data into the package; prices
# are at least this old (the per-row catalog commit in `source` is older still).
SNAPSHOT_FETCHED_AT = datetime(2026, 11, 23, tzinfo=timezone.utc)

# A per-GPU price this many times above or below the median for that accelerator is a
# catalog error (SkyPilot uses 700 $/h as a "not offered" placeholder, for instance).
OUTLIER_FACTOR = 6.0
# Implausible spot prices, each a rule named in the flagged row. SkyPilot's catalog
# writes a spot price of exactly a tenth of on-demand where AWS gave no spot history (real
# AWS discounts vary by region and hour and never land on 10.00 %), and RunPod's rows copy
# on-demand into spot although its spot (interruptible) pods are sold at a discount.
SPOT_TENTH_TOLERANCE = 0.0005
SPOT_DISCOUNTING_CLOUDS = frozenset({"aws", "gcp", "azure", "runpod", "nebius", "oci"})
#: Flags that distrust the spot price alone: the row's on-demand price stays usable.
SPOT_ONLY_FLAGS = frozenset({"spot_tenth_of_ondemand", "spot_equals_ondemand"})


@dataclass(frozen=True)
class Offering:
    """One price row: an instance type with its accelerators in one cloud region."""

    cloud: str
    region: str
    instance_type: str
    accelerator: str
    accelerator_count: int
    vcpus: float | None
    memory_gib: float | None
    usd_per_hour: float | None
    spot_usd_per_hour: float | None
    source: str
    fetched_at: datetime
    flags: tuple[str, ...] = ()
    raw_usd_per_hour: float | None = field(default=None, compare=False)
    raw_spot_usd_per_hour: float | None = field(default=None, compare=False)

    def price(self, spot: bool) -> float | None:
        """The trusted $/h for spot or on-demand, or None (no such price, or untrusted)."""
        return self.spot_usd_per_hour if spot else self.usd_per_hour

    @property
    def key(self) -> tuple[str, str, str, str, int]:
        """Identity of the row across refreshes."""
        return (
            self.cloud,
            self.region,
            self.instance_type,
            self.accelerator,
            self.accelerator_count,
        )


def _positive(value: float | None) -> bool:
    return value is not None and value == value and value > 0  # NaN != NaN


def _clean(value: Any) -> float | None:
    if value is None:
        return None
    if isinstance(value, str):
        value = value.strip()
        if not value:
            return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    # NaN -> None; rounding drops float noise from summed prices (0.7000000000000001).
    return None if number != number else round(number, 6)


def make_offering(
    *,
    cloud: str,
    region: str,
    instance_type: str,
    accelerator: str,
    accelerator_count: float,
    vcpus: Any,
    memory_gib: Any,
    price: Any,
    spot_price: Any,
    source: str,
    fetched_at: datetime,
    flags: Iterable[str] = (),
) -> Offering:
    """An unsanitised offering from raw source values (names normalised here, once)."""
    raw_od, raw_spot = _clean(price), _clean(spot_price)
    return Offering(
        cloud=cloud.strip().lower(),
        region=region.strip(),
        instance_type=instance_type.strip(),
        accelerator=normalize_accelerator(accelerator),
        accelerator_count=int(float(accelerator_count)),
        vcpus=_clean(vcpus),
        memory_gib=_clean(memory_gib),
        usd_per_hour=raw_od,
        spot_usd_per_hour=raw_spot,
        source=source,
        fetched_at=fetched_at,
        flags=tuple(flags),
        raw_usd_per_hour=raw_od,
        raw_spot_usd_per_hour=raw_spot,
    )


def _row_flags(o: Offering) -> list[str]:
    flags = list(o.flags)
    od, spot = o.raw_usd_per_hour, o.raw_spot_usd_per_hour
    if od is None:
        flags.append("ondemand_missing")
    elif not _positive(od):
        flags.append("ondemand_zero")
    if spot is not None and not _positive(spot):
        flags.append("spot_zero")
    elif spot is not None and _positive(od) and od is not None and spot > od:
        flags.append("spot_above_ondemand")
    elif spot is not None and od is not None and _positive(od):
        if abs(spot / od - 0.1) <= SPOT_TENTH_TOLERANCE:
            flags.append("spot_tenth_of_ondemand")
        elif spot == od and o.cloud in SPOT_DISCOUNTING_CLOUDS:
            flags.append("spot_equals_ondemand")
    # GCP sells the GPU and its host VM separately; a row without the host's size has no
    # host price in it and understates the cost.
    if o.cloud == "gcp" and not (_positive(o.vcpus) and _positive(o.memory_gib)):
        flags.append("host_price_missing")
    return flags


def _outlier(price: float | None, count: int, median: float) -> bool:
    if price is None:
        return False
    ratio = price / count / median
    return not 1 / OUTLIER_FACTOR <= ratio <= OUTLIER_FACTOR


def sanitise(offerings: Iterable[Offering]) -> list[Offering]:
    """Flag every untrusted price and blank it; drop exact duplicate keys (first wins).

    Flags: ``ondemand_missing``, ``ondemand_zero``, ``spot_zero``, ``spot_above_ondemand``,
    ``spot_tenth_of_ondemand`` (exactly 10 %: a placeholder, not a market price),
    ``spot_equals_ondemand`` (on a cloud that discounts spot), ``host_price_missing``
    (GCP), ``ondemand_outlier`` / ``spot_outlier`` (per-GPU price more than
    :data:`OUTLIER_FACTOR` times off the median for that accelerator).
    """
    seen: set[tuple[str, str, str, str, int]] = set()
    rows: list[tuple[Offering, list[str]]] = []
    for o in offerings:
        if o.key in seen or o.accelerator_count <= 0:
            continue
        seen.add(o.key)
        rows.append((o, _row_flags(o)))

    per_gpu: dict[str, list[float]] = defaultdict(list)
    for o, _ in rows:
        for price in (o.raw_usd_per_hour, o.raw_spot_usd_per_hour):
            if price is not None and _positive(price):
                per_gpu[o.accelerator].append(price / o.accelerator_count)
    medians = {acc: sorted(v)[len(v) // 2] for acc, v in per_gpu.items() if len(v) >= 5}

    out = []
    for o, flags in rows:
        median = medians.get(o.accelerator)
        od_ok = not {"ondemand_missing", "ondemand_zero", "host_price_missing"} & set(flags)
        spot_ok = o.raw_spot_usd_per_hour is not None and not {
            "spot_zero",
            "spot_above_ondemand",
            "host_price_missing",
            *SPOT_ONLY_FLAGS,
        } & set(flags)
        if median:
            # Judge each price on its own: a wild spot price must not hide a sane on-demand.
            if od_ok and _outlier(o.raw_usd_per_hour, o.accelerator_count, median):
                flags.append("ondemand_outlier")
                od_ok = False
            if spot_ok and _outlier(o.raw_spot_usd_per_hour, o.accelerator_count, median):
                flags.append("spot_outlier")
                spot_ok = False
        out.append(
            replace(
                o,
                usd_per_hour=o.raw_usd_per_hour if od_ok else None,
                spot_usd_per_hour=o.raw_spot_usd_per_hour if spot_ok else None,
                flags=tuple(dict.fromkeys(flags)),
            )
        )
    return out


def load_snapshot() -> list[Offering]:
    """The shipped snapshot, sanitised."""
    text = resources.files("pricing").joinpath("data/gpu_prices.csv").read_text("utf-8")
    raw = []
    for r in csv.DictReader(text.splitlines()):
        cloud = r["cloud"]
        raw.append(
            make_offering(
                cloud=cloud,
                region=r["region"],
                instance_type=r["instance_type"],
                accelerator=r["accelerator"],
                accelerator_count=float(r["accelerator_count"]),
                vcpus=r["vcpus"],
                memory_gib=r["memory_gib"],
                price=r["price_per_hour"],
                spot_price=r["spot_price_per_hour"],
                source=(
                    f"snapshot: skypilot-catalog@{r['source_commit'][:12]} "
                    f"catalogs/v8/{cloud}/vms.csv"
                ),
                fetched_at=SNAPSHOT_FETCHED_AT,
            )
        )
    return sanitise(raw)
