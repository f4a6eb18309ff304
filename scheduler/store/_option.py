"""The launch option: what each worker of a launch is, how many, where, at what price.

:class:`LaunchOption` is the option a launch runs (the plan's choice, ``--plan N``,
``--gpu G --workers N``, or this machine): it travels from ``choose_option`` through the
guard, the scalers and task building to ``outcome_of``, and run.json records it under
``launch.option``. Its JSON keeps the plan's names (``accelerators_per_worker``) so runs
written before these types still read. :class:`Offering` is one place a worker may run.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

from scheduler.errors import StoreError
from scheduler.store._fields import _int, _num, _obj, _opt_num

__all__ = ["LaunchOption", "Offering"]


@dataclass(frozen=True)
class Offering:
    """One place a worker may run: cloud, region, instance type and its $/h."""

    cloud: str
    region: str
    instance_type: str
    usd_per_hour: float

    @classmethod
    def from_json(cls, doc: Any, *, where: str = "offering") -> Offering:
        d = _obj(doc, where)
        if not d.get("cloud"):
            raise StoreError(f"{where}: field 'cloud' is missing")
        return cls(
            cloud=str(d["cloud"]),
            region=str(d.get("region") or ""),
            instance_type=str(d.get("instance_type") or ""),
            usd_per_hour=_num(d, "usd_per_hour", where),
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "cloud": self.cloud,
            "region": self.region,
            "instance_type": self.instance_type,
            "usd_per_hour": self.usd_per_hour,
        }


@dataclass(frozen=True)
class LaunchOption:
    """The option a launch runs: what each worker is, how many, where, at what price.

    ``tensor_parallel_size`` defaults to the GPUs of a worker (one vLLM engine over all of
    them); ``replicas_per_worker`` engines share a worker's GPUs when the planner splits
    them (1: one engine). ``hours``/``cost_usd``/``p_on_time``/``rows_per_s`` are the plan's
    figures, None when the option was not planned (``--gpu``, local).
    """

    accelerator: str
    gpus_per_worker: int = 1
    spot: bool = False
    workers: int = 1
    offerings: tuple[Offering, ...] = ()
    rows_per_shard: int | None = None
    tensor_parallel_size: int | None = None
    replicas_per_worker: int = 1
    hours: float | None = None
    cost_usd: float | None = None
    p_on_time: float | None = None
    rows_per_s: float | None = None

    @property
    def tp_size(self) -> int:
        """GPUs one engine spans: the option's setting, else every GPU of the worker."""
        if self.tensor_parallel_size is not None:
            return self.tensor_parallel_size
        return max(1, self.gpus_per_worker // max(1, self.replicas_per_worker))

    @property
    def usd_per_hour(self) -> float:
        """$/h of one worker at the cheapest candidate (0 when none is priced)."""
        return min((o.usd_per_hour for o in self.offerings), default=0.0)

    @property
    def max_usd_per_hour(self) -> float:
        """$/h of one worker at the dearest candidate: the planned price to bill at when
        nothing says where a worker landed."""
        return max((o.usd_per_hour for o in self.offerings), default=0.0)

    def price_at(
        self, cloud: str | None, region: str | None, instance_type: str | None = None
    ) -> float | None:
        """$/h of the candidate at ``cloud/region`` (and instance type, when known)."""
        matches = [
            o
            for o in self.offerings
            if cloud is not None
            and o.cloud.lower() == cloud.lower()
            and (not region or o.region == region)
        ]
        if instance_type:
            exact = [o for o in matches if o.instance_type == instance_type]
            if exact:
                return exact[0].usd_per_hour
            if any(o.instance_type for o in matches):
                return None  # another instance type than planned: price unknown here
        return matches[0].usd_per_hour if matches else None

    def with_(self, **changes: Any) -> LaunchOption:
        """A copy with some fields changed (``spot``, ``workers``, ``offerings``...)."""
        return replace(self, **changes)

    @classmethod
    def from_json(cls, doc: Any, *, where: str = "launch option") -> LaunchOption:
        """Parse the option's plain data (``PlanOption.to_json()`` or run.json's copy)."""
        d = _obj(doc, where)
        if not d.get("accelerator"):
            raise StoreError(f"{where}: field 'accelerator' is missing")
        offerings = d.get("offerings") or []
        if not isinstance(offerings, list):
            raise StoreError(f"{where}: field 'offerings' is not a list")
        tp = d.get("tensor_parallel_size")
        rps = d.get("rows_per_shard")
        return cls(
            accelerator=str(d["accelerator"]),
            gpus_per_worker=_int(d, "accelerators_per_worker", where, 1) or 1,
            spot=bool(d.get("spot")),
            workers=_int(d, "workers", where, 1),
            offerings=tuple(
                Offering.from_json(o, where=f"{where}: offerings[{i}]")
                for i, o in enumerate(offerings)
            ),
            rows_per_shard=None if rps is None else _int(d, "rows_per_shard", where),
            tensor_parallel_size=None if tp is None else _int(d, "tensor_parallel_size", where),
            replicas_per_worker=_int(d, "replicas_per_worker", where, 1) or 1,
            hours=_opt_num(d, "hours", where),
            cost_usd=_opt_num(d, "cost_usd", where),
            p_on_time=_opt_num(d, "p_on_time", where),
            rows_per_s=_opt_num(d, "rows_per_s", where),
        )

    def to_json(self) -> dict[str, Any]:
        """Plain data with the plan's key names (run.json, ``launch --json``)."""
        return {
            "accelerator": self.accelerator,
            "accelerators_per_worker": self.gpus_per_worker,
            "spot": self.spot,
            "workers": self.workers,
            "hours": self.hours,
            "cost_usd": self.cost_usd,
            "p_on_time": self.p_on_time,
            "rows_per_s": self.rows_per_s,
            "rows_per_shard": self.rows_per_shard,
            "tensor_parallel_size": self.tp_size,
            "replicas_per_worker": self.replicas_per_worker,
            "offerings": [o.to_json() for o in self.offerings],
        }
