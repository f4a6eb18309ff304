"""Each cloud's terms and spot risk: billing granularity, egress, preemptions, capacity wait.

Two small shipped tables, read once per process (they change with a release, not a refresh):

* ``data/cloud_terms.csv`` - billing increment and minimum per cloud, and the $/GB a cloud
  charges for data leaving it, each row with its public source;
* ``data/spot_risk.csv`` - spot preemptions per instance-hour and the capacity wait each
  further spot worker adds, by cloud x GPU class (x region where a row names one), each row
  with its source or the assumption it is.

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

__all__ = [
    "FALLBACK_CAPACITY_WAIT_S",
    "FALLBACK_PREEMPTIONS_PER_HOUR",
    "CloudTerms",
    "SpotRisk",
    "cloud_terms",
    "gpu_class",
    "spot_risk",
]

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
    """Spot preemptions per instance-hour and the start-up wait per further spot worker."""

    preemptions_per_hour: float
    capacity_wait_s_per_worker: float
    source: str


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


@functools.cache
def _risks() -> dict[tuple[str, str, str], SpotRisk]:
    return {
        (r["cloud"], r["gpu_class"], r["region"]): SpotRisk(
            float(r["preemptions_per_hour"]), float(r["capacity_wait_s_per_worker"]), r["source"]
        )
        for r in _rows("spot_risk.csv")
    }


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
