"""The price catalog: offerings in DuckDB, listed, seeded from the snapshot and replaced.

The rows are :class:`~pricing._offering.Offering` values, every one sanitised on its way
in (:mod:`pricing._offering`), so a flagged price is ``None`` in the table as on the
object and no planner can choose it. :func:`list_offerings` reads through the read cache
(:func:`pricing._db.cached`); :func:`replace_offerings` swaps the rows of the refreshed
clouds in one transaction and says what changed.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

from pricing._offering import Offering, load_snapshot
from pricing._specs import normalize_accelerator

if TYPE_CHECKING:
    import duckdb

__all__ = [
    "CatalogDiff",
    "insert_offerings",
    "list_offerings",
    "max_price_age_days",
    "prices_age_days",
    "replace_offerings",
    "seed_offerings",
]


_COLUMNS = (
    "cloud, region, instance_type, accelerator, accelerator_count, vcpus, memory_gib, "
    "usd_per_hour, spot_usd_per_hour, source, fetched_at, flags, raw_usd_per_hour, "
    "raw_spot_usd_per_hour"
)


def _to_row(o: Offering) -> list[Any]:
    return [
        o.cloud,
        o.region,
        o.instance_type,
        o.accelerator,
        o.accelerator_count,
        o.vcpus,
        o.memory_gib,
        o.usd_per_hour,
        o.spot_usd_per_hour,
        o.source,
        o.fetched_at.astimezone(timezone.utc).replace(tzinfo=None),
        ",".join(o.flags),
        o.raw_usd_per_hour,
        o.raw_spot_usd_per_hour,
    ]


def _from_row(r: tuple[Any, ...]) -> Offering:
    fetched = r[10]
    if isinstance(fetched, datetime) and fetched.tzinfo is None:
        fetched = fetched.replace(tzinfo=timezone.utc)
    return Offering(
        cloud=r[0],
        region=r[1],
        instance_type=r[2],
        accelerator=r[3],
        accelerator_count=int(r[4]),
        vcpus=r[5],
        memory_gib=r[6],
        usd_per_hour=r[7],
        spot_usd_per_hour=r[8],
        source=r[9],
        fetched_at=fetched,
        flags=tuple(f for f in (r[11] or "").split(",") if f),
        raw_usd_per_hour=r[12],
        raw_spot_usd_per_hour=r[13],
    )


def insert_offerings(con: duckdb.DuckDBPyConnection, offerings: Sequence[Offering]) -> None:
    """Insert rows in one statement (fast even for thousands of rows)."""
    from pricing._db import bulk_insert

    names = [c.strip() for c in _COLUMNS.split(",")]
    bulk_insert(con, "offerings", names, [_to_row(o) for o in offerings])


def seed_offerings(con: duckdb.DuckDBPyConnection) -> None:
    """Fill a fresh database with the shipped snapshot."""
    insert_offerings(con, load_snapshot())


def _query(
    con: duckdb.DuckDBPyConnection,
    *,
    accelerators: Sequence[str] | None,
    clouds: Sequence[str] | None,
    regions: Sequence[str] | None,
    include_flagged: bool,
) -> list[Offering]:
    where, params = [], []
    if accelerators:
        where.append("accelerator IN (SELECT unnest(?))")
        params.append([normalize_accelerator(a) for a in accelerators])
    if clouds:
        where.append("cloud IN (SELECT unnest(?))")
        params.append([c.lower() for c in clouds])
    if regions:
        where.append("region IN (SELECT unnest(?))")
        params.append(list(regions))
    if not include_flagged:
        # Rows with at least one trusted price; the untrusted one is None on the object.
        where.append("(usd_per_hour IS NOT NULL OR spot_usd_per_hour IS NOT NULL)")
    sql = f"SELECT {_COLUMNS} FROM offerings"
    if where:
        sql += " WHERE " + " AND ".join(where)
    sql += " ORDER BY cloud, region, instance_type, accelerator, accelerator_count"
    return [_from_row(r) for r in con.execute(sql, params).fetchall()]


def list_offerings(
    *,
    accelerators: Sequence[str] | None = None,
    clouds: Sequence[str] | None = None,
    regions: Sequence[str] | None = None,
    include_flagged: bool = False,
) -> list[Offering]:
    """Offerings from the database, filtered (names in any spelling).

    By default only rows with at least one trusted price come back (a vast.ai row with a
    spot price of 0 still offers a trusted on-demand price); with ``include_flagged``
    every row does. Either way a flagged price is ``None`` on the object, so
    :meth:`Offering.price` never returns it.
    """
    from pricing._db import cached

    rows = cached(
        "offerings",
        lambda con: _query(con, accelerators=None, clouds=None, regions=None, include_flagged=True),
    )
    accs = {normalize_accelerator(a) for a in accelerators} if accelerators else None
    cloud_set = {c.lower() for c in clouds} if clouds else None
    region_set = set(regions) if regions else None
    return [
        o
        for o in rows
        if (accs is None or o.accelerator in accs)
        and (cloud_set is None or o.cloud in cloud_set)
        and (region_set is None or o.region in region_set)
        and (include_flagged or o.usd_per_hour is not None or o.spot_usd_per_hour is not None)
    ]


def max_price_age_days() -> float:
    """Prices older than this many days earn a warning (:mod:`scheduler.settings`:
    ``SKYBATCH_MAX_PRICE_AGE_DAYS``, the config file, default 30)."""
    from scheduler.settings import load_settings

    return load_settings().max_price_age_days


def prices_age_days(*, now: datetime | None = None) -> float | None:
    """Age in days of the oldest trusted price row, or None when there is none."""
    times = [
        o.fetched_at
        for o in list_offerings(include_flagged=True)
        if o.usd_per_hour is not None or o.spot_usd_per_hour is not None
    ]
    if not times:
        return None
    oldest = min(times)
    now = now or datetime.now(timezone.utc)
    return max(0.0, (now - oldest).total_seconds() / 86400.0)


@dataclass(frozen=True)
class CatalogDiff:
    """What a refresh changed, per offering key."""

    clouds: tuple[str, ...]
    added: tuple[Offering, ...]
    removed: tuple[Offering, ...]
    changed: tuple[tuple[Offering, Offering], ...]  # (old, new)
    unchanged: int

    def to_json(self) -> dict[str, Any]:
        """The diff as plain data (``--json``)."""

        def brief(o: Offering) -> dict[str, Any]:
            return {
                "cloud": o.cloud,
                "region": o.region,
                "instance_type": o.instance_type,
                "accelerator": o.accelerator,
                "accelerator_count": o.accelerator_count,
                "usd_per_hour": o.raw_usd_per_hour,
                "spot_usd_per_hour": o.raw_spot_usd_per_hour,
                "flags": list(o.flags),
            }

        return {
            "clouds": list(self.clouds),
            "added": [brief(o) for o in self.added],
            "removed": [brief(o) for o in self.removed],
            "changed": [{"old": brief(a), "new": brief(b)} for a, b in self.changed],
            "unchanged": self.unchanged,
        }


def replace_offerings(new: Sequence[Offering]) -> CatalogDiff:
    """Replace every row of the clouds present in ``new`` (others stay) and diff them."""
    from pricing._db import connect

    clouds = sorted({o.cloud for o in new})
    with connect() as con:
        con.execute("BEGIN TRANSACTION")
        try:
            old = _query(con, accelerators=None, clouds=clouds, regions=None, include_flagged=True)
            con.execute("DELETE FROM offerings WHERE cloud IN (SELECT unnest(?))", [clouds])
            insert_offerings(con, new)
            con.execute("COMMIT")
        except Exception:
            con.execute("ROLLBACK")
            raise
    old_by_key = {o.key: o for o in old}
    new_by_key = {o.key: o for o in new}
    added = tuple(o for k, o in new_by_key.items() if k not in old_by_key)
    removed = tuple(o for k, o in old_by_key.items() if k not in new_by_key)
    changed, same = [], 0
    for k, o in new_by_key.items():
        before = old_by_key.get(k)
        if before is None:
            continue
        if (before.raw_usd_per_hour, before.raw_spot_usd_per_hour, before.flags) != (
            o.raw_usd_per_hour,
            o.raw_spot_usd_per_hour,
            o.flags,
        ):
            changed.append((before, o))
        else:
            same += 1
    return CatalogDiff(tuple(clouds), added, removed, tuple(changed), same)
