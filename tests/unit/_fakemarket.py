"""A small hand-built market for planner tests (a fake at the planner's Market seam)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field


@dataclass(frozen=True)
class FakeOffering:
    cloud: str
    region: str
    instance_type: str
    accelerator: str
    accelerator_count: int
    usd_per_hour: float | None
    spot_usd_per_hour: float | None
    flags: tuple[str, ...] = ()

    def price(self, spot: bool) -> float | None:
        if self.flags:
            return None
        return self.spot_usd_per_hour if spot else self.usd_per_hour


@dataclass(frozen=True)
class FakeEstimate:
    rows_per_s: float
    low_rows_per_s: float
    high_rows_per_s: float
    kind: str = "estimated"
    source: str = "hand-built test figure"


@dataclass
class FakeMarket:
    """Offerings, per-GPU rows/s (linear in GPUs per worker) and per-cloud figures."""

    offers: list[FakeOffering]
    rows_per_s: dict[str, float]
    band: float = 0.2  # ±20 %
    need: dict[str, int | None] = field(default_factory=dict)  # GPUs per worker (default 1)
    preempt: dict[str, float] = field(default_factory=dict)
    startup: dict[str, float] = field(default_factory=dict)
    load_s: float = 60.0
    age_days: float | None = 1.0
    wait: dict[str, float] = field(default_factory=dict)  # spot capacity wait per worker
    increment: dict[str, float] = field(default_factory=dict)  # billing increment
    egress: dict[str, float] = field(default_factory=dict)  # $/GB leaving a cloud

    def offerings(
        self,
        *,
        accelerators: Sequence[str] | None,
        clouds: Sequence[str] | None,
        regions: Sequence[str] | None,
    ) -> list[FakeOffering]:
        return [
            o
            for o in self.offers
            if (accelerators is None or o.accelerator in accelerators)
            and (clouds is None or o.cloud in clouds)
            and (regions is None or o.region in regions)
        ]

    def gpus_needed(self, *, model: str, accelerator: str, context_tokens: int) -> int | None:
        return self.need.get(accelerator, 1)

    def estimate(
        self,
        *,
        model: str,
        engine: str,
        task: str,
        accelerator: str,
        count: int,
        input_tokens: float,
        output_tokens: float,
    ) -> FakeEstimate:
        r = self.rows_per_s[accelerator] * count
        return FakeEstimate(r, r * (1 - self.band), r * (1 + self.band))

    def preemption_rate_per_hour(self, cloud: str, accelerator: str, region: str) -> float:
        return self.preempt.get(cloud, 0.1)

    def capacity_wait_s(self, cloud: str, accelerator: str) -> float:
        return self.wait.get(cloud, 0.0)

    def billing_increment_s(self, cloud: str) -> float:
        return self.increment.get(cloud, 1.0)

    def egress_usd_per_gb(self, cloud: str) -> float:
        return self.egress.get(cloud, 0.0)

    def startup_s(self, cloud: str) -> float:
        return self.startup.get(cloud, 180.0)

    def model_load_s(self, model: str) -> float:
        return self.load_s

    def prices_age_days(self) -> float | None:
        return self.age_days


def offer(
    acc: str,
    od: float | None,
    spot: float | None,
    *,
    cloud: str = "aws",
    region: str = "us-east-1",
    count: int = 1,
    flags: tuple[str, ...] = (),
) -> FakeOffering:
    return FakeOffering(
        cloud, region, f"{acc.lower()}-{count}x-{cloud}", acc, count, od, spot, flags
    )


def small_market() -> FakeMarket:
    return FakeMarket(
        offers=[
            offer("L4", 0.8, 0.3),
            offer("L4", 0.7, 0.35, cloud="gcp", region="us-central1"),
            offer("A100-80GB", 3.0, 1.2),
            offer("H100", 4.0, 2.0, cloud="lambda", region="us-west-1"),
            offer("H100", 5.0, 1.8, cloud="aws"),
            offer("T4", 0.5, 0.0, flags=("spot_zero",)),
        ],
        rows_per_s={"L4": 10.0, "A100-80GB": 40.0, "H100": 80.0, "T4": 5.0},
    )
