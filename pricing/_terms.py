"""Each cloud's terms and spot risk: billing granularity, egress, preemptions, capacity wait.

Two small shipped tables, read once per process (they change with a release, not a refresh):

* ``data/cloud_terms.csv`` - billing increment and minimum per cloud, and the $/GB a cloud
  charges for data leaving it, each row with its public source;
* ``data/spot_risk.csv`` - spot preemptions per instance-hour and the capacity wait each
  further spot worker adds, by cloud x GPU class (x region where a row names one). Each row
  says its ``basis``: ``sourced`` (the rate is what the cited source says) or ``assumption``
  (skybatch's figure, the source column saying what it rests on). Where a provider publishes
  a figure that converts to the planner's unit, ``published_per_hour`` holds it (conversion
  stated in the source) and an assumption may not sit below it. A malformed row stops the
  load with :class:`~scheduler.errors.PlanError` naming the line and field.

A lookup takes the most specific row: (cloud, class, region) → (cloud, class, any region)
→ (cloud, any class) → the fallback. A cloud without a terms row is billed per second
(the common case), which the plan's assumptions then carry.
"""

from __future__ import annotations

import csv
import functools
from dataclasses import dataclass
from importlib import resources

from pricing._specs import normalize_accelerator
from scheduler.errors import PlanError

__all__ = [
    "BASES",
    "FALLBACK_CAPACITY_WAIT_S",
    "FALLBACK_PREEMPTIONS_PER_HOUR",
    "CloudTerms",
    "SpotRisk",
    "cloud_terms",
    "gpu_class",
    "parse_spot_risk",
    "spot_risk",
]

# What a risk row's number is: the source's own figure, or skybatch's assumption.
BASES = ("sourced", "assumption")

FALLBACK_PREEMPTIONS_PER_HOUR = 0.10
FALLBACK_CAPACITY_WAIT_S = 60.0

# GPU classes the risk table distinguishes: flagship training/inference parts are the
# most contended spot capacity everywhere.
_FLAGSHIP = frozenset(
    {"H100", "H100-PCIe", "H100-NVL", "H200", "H200-NVL", "GH200", "B200", "B300", "GB200",
     "A100-80GB", "MI300X", "MI325X", "MI355X"}
)  # fmt: skip


@dataclass(frozen=True)
class CloudTerms:
    """How a cloud bills an instance and what data leaving it costs."""

    cloud: str
    billing_increment_s: float
    billing_minimum_s: float
    egress_usd_per_gb: float | None
    source: str


@dataclass(frozen=True)
class SpotRisk:
    """Spot preemptions per instance-hour and the start-up wait per further spot worker.

    ``basis`` is ``sourced`` or ``assumption``; ``published_per_hour`` is the provider's
    own figure in the same unit where one exists (a floor for the assumption)."""

    preemptions_per_hour: float
    capacity_wait_s_per_worker: float
    source: str
    basis: str = "assumption"
    published_per_hour: float | None = None


def gpu_class(accelerator: str) -> str:
    """``flagship`` (H100, H200, A100-80GB, B200, MI300X ...) or ``other``."""
    return "flagship" if normalize_accelerator(accelerator) in _FLAGSHIP else "other"


def _rows(name: str) -> list[dict[str, str]]:
    text = resources.files("pricing").joinpath(f"data/{name}").read_text("utf-8")
    return list(csv.DictReader(text.splitlines()))


@functools.cache
def _terms() -> dict[str, CloudTerms]:
    out = {}
    for r in _rows("cloud_terms.csv"):
        egress = r["egress_usd_per_gb"].strip()
        out[r["cloud"]] = CloudTerms(
            cloud=r["cloud"],
            billing_increment_s=float(r["billing_increment_s"]),
            billing_minimum_s=float(r["billing_minimum_s"]),
            egress_usd_per_gb=float(egress) if egress else None,
            source=r["source"],
        )
    return out


def _number(raw: str, where: str, field: str) -> float:
    try:
        value = float(raw)
    except ValueError:
        value = -1.0
    if not value >= 0:  # also rejects NaN
        raise PlanError(f"{where}: {field} {raw!r} is not a number >= 0; write one")
    return value


def _risk_row(row: dict[str, str], where: str) -> SpotRisk:
    basis = (row.get("basis") or "").strip()
    if basis not in BASES:
        raise PlanError(f"{where}: basis {basis!r} is not one of {', '.join(BASES)}; say which")
    source = (row.get("source") or "").strip()
    if len(source) < 20:
        raise PlanError(f"{where}: source is empty or too short; cite it or state the assumption")
    rate = _number(row.get("preemptions_per_hour") or "", where, "preemptions_per_hour")
    wait_s = _number(
        row.get("capacity_wait_s_per_worker") or "", where, "capacity_wait_s_per_worker"
    )
    raw = (row.get("published_per_hour") or "").strip()
    published = _number(raw, where, "published_per_hour") if raw else None
    if (basis == "sourced" or published is not None) and "http" not in source:
        raise PlanError(f"{where}: a sourced or published figure needs its URL in source")
    # A guess below what the provider itself reports would plan with less risk than is known.
    if basis == "assumption" and published is not None and rate < published:
        raise PlanError(
            f"{where}: preemptions_per_hour {rate:g} is below the published {published:g}; "
            "raise it to at least the published figure"
        )
    return SpotRisk(rate, wait_s, source, basis, published)


def parse_spot_risk(
    rows: list[dict[str, str]], name: str = "spot_risk.csv"
) -> dict[tuple[str, str, str], SpotRisk]:
    """Risk rows keyed by (cloud, GPU class, region); :class:`PlanError` names a bad row."""
    out: dict[tuple[str, str, str], SpotRisk] = {}
    for line, row in enumerate(rows, start=2):  # line 1 is the header
        where = f"pricing/data/{name} line {line}"
        key = (row.get("cloud") or "", row.get("gpu_class") or "", row.get("region") or "")
        if key in out:
            raise PlanError(f"{where}: {','.join(key)} repeats an earlier row; keep one")
        out[key] = _risk_row(row, where)
    return out


@functools.cache
def _risks() -> dict[tuple[str, str, str], SpotRisk]:
    return parse_spot_risk(_rows("spot_risk.csv"))


def cloud_terms(cloud: str) -> CloudTerms:
    """The cloud's billing and egress terms (per-second billing when no row says)."""
    cloud = cloud.lower()
    found = _terms().get(cloud)
    if found is not None:
        return found
    return CloudTerms(cloud, 1.0, 0.0, None, "no row: per-second billing assumed")


def spot_risk(cloud: str, accelerator: str | None = None, region: str | None = None) -> SpotRisk:
    """The most specific spot-risk row for (cloud, GPU class, region)."""
    cloud = cloud.lower()
    cls = gpu_class(accelerator) if accelerator else "*"
    table = _risks()
    for key in ((cloud, cls, region or "*"), (cloud, cls, "*"), (cloud, "*", "*")):
        if key in table:
            return table[key]
    return SpotRisk(
        FALLBACK_PREEMPTIONS_PER_HOUR,
        FALLBACK_CAPACITY_WAIT_S,
        "no row for this cloud: skybatch's generic fallback (an assumption)",
    )
