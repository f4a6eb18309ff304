"""Fetching SkyPilot's public catalog files over HTTP with httpx.

``skybatch pricing refresh`` downloads ``<base>/v8/<cloud>/vms.csv`` for each cloud from
SkyPilot's hosted catalog (the repository skypilot-org/skypilot-catalog; ``SKYBATCH_CATALOG_URL``
points elsewhere, e.g. a mirror) into ``$SKYBATCH_HOME/catalogs/v8/<cloud>/vms.csv``:

- a **conditional GET**: the ETag and Last-Modified of the last download are kept beside
  the file (``vms.csv.meta.json``) and sent back as If-None-Match / If-Modified-Since; a
  ``304 Not Modified`` keeps the file already here;
- **timeouts** (connect and read, :data:`TIMEOUT_S`) and **retries** with backoff on a
  timeout, a connection error or a 5xx; a 4xx is final (that cloud has no catalog there);
- one cloud failing does not stop the others: its error is returned by name;
- a **progress bar** on stderr (never stdout: ``--json`` prints one object there).

No SkyPilot import: ``import sky`` costs seconds and prints its own lines on stdout.
"""

from __future__ import annotations

import contextlib
import json
import os
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from pricing._db import skybatch_home

if TYPE_CHECKING:
    import httpx

__all__ = ["CATALOG_URL", "Fetched", "catalog_cache_dir", "fetch_catalogs"]

CATALOG_URL = "https://raw.githubusercontent.com/skypilot-org/skypilot-catalog/master/catalogs"
CATALOG_VERSION = "v8"
TIMEOUT_S = 20.0
RETRIES = 3
BACKOFF_S = 0.5


@dataclass(frozen=True)
class Fetched:
    """One cloud's catalog file: where it is and whether it changed since the last fetch."""

    cloud: str
    path: Path
    status: str  # "downloaded" | "not modified"


def catalog_cache_dir() -> Path:
    """``$SKYBATCH_HOME/catalogs/v8``: the fetched files and their validators."""
    return skybatch_home() / "catalogs" / CATALOG_VERSION


def _base_url() -> str:
    return os.environ.get("SKYBATCH_CATALOG_URL", CATALOG_URL).rstrip("/")


def _validators(meta_path: Path, data_path: Path) -> dict[str, str]:
    if not data_path.is_file() or not meta_path.is_file():
        return {}
    try:
        meta = json.loads(meta_path.read_text("utf-8"))
    except (OSError, ValueError):
        return {}
    headers = {}
    if meta.get("etag"):
        headers["If-None-Match"] = str(meta["etag"])
    if meta.get("last_modified"):
        headers["If-Modified-Since"] = str(meta["last_modified"])
    return headers


def _fetch_one(client: httpx.Client, cloud: str, *, retries: int, backoff_s: float) -> Fetched:
    """Download (or confirm) one cloud's ``vms.csv``; raises ``RuntimeError`` with why not."""
    import httpx

    url = f"{_base_url()}/{CATALOG_VERSION}/{cloud}/vms.csv"
    folder = catalog_cache_dir() / cloud
    data_path, meta_path = folder / "vms.csv", folder / "vms.csv.meta.json"
    headers = _validators(meta_path, data_path)
    last = ""
    for attempt in range(retries + 1):
        if attempt:
            time.sleep(backoff_s * 2 ** (attempt - 1))
        try:
            response = client.get(url, headers=headers)
        except httpx.TimeoutException:
            last = f"timed out after {client.timeout.read or TIMEOUT_S:g} s"
            continue
        except httpx.TransportError as e:
            last = f"{type(e).__name__}: {e}"
            continue
        if response.status_code == 304 and data_path.is_file():
            return Fetched(cloud, data_path, "not modified")
        if response.status_code >= 500:
            last = f"HTTP {response.status_code}"
            continue
        if response.status_code != 200:
            raise RuntimeError(f"HTTP {response.status_code} for {url}")
        folder.mkdir(parents=True, exist_ok=True)
        tmp = data_path.with_suffix(".csv.part")
        tmp.write_bytes(response.content)
        tmp.replace(data_path)  # a reader never sees half a file
        meta = {
            "url": url,
            "etag": response.headers.get("ETag"),
            "last_modified": response.headers.get("Last-Modified"),
        }
        meta_path.write_text(json.dumps(meta), "utf-8")
        return Fetched(cloud, data_path, "downloaded")
    raise RuntimeError(f"{last} for {url} ({retries + 1} tries)")


def fetch_catalogs(
    clouds: Sequence[str],
    *,
    timeout_s: float = TIMEOUT_S,
    retries: int = RETRIES,
    backoff_s: float = BACKOFF_S,
    progress: bool = True,
    transport: httpx.BaseTransport | None = None,
) -> tuple[list[Fetched], dict[str, str]]:
    """Fetch each cloud's catalog; returns (fetched, {cloud: why it was not})."""
    import httpx

    fetched: list[Fetched] = []
    errors: dict[str, str] = {}
    with (
        httpx.Client(
            timeout=httpx.Timeout(timeout_s),
            follow_redirects=True,
            transport=transport,
            headers={"User-Agent": "skybatch pricing refresh"},
        ) as client,
        _progress(len(clouds), enabled=progress) as advance,
    ):
        for cloud in clouds:
            try:
                fetched.append(_fetch_one(client, cloud, retries=retries, backoff_s=backoff_s))
            except RuntimeError as e:
                errors[cloud] = str(e)
            advance(cloud)
    return fetched, errors


@contextlib.contextmanager
def _progress(total: int, *, enabled: bool) -> Iterator[Callable[[str], None]]:
    """A rich progress bar on stderr; yields ``advance(cloud)`` (a no-op when disabled)."""
    if not enabled:
        yield lambda _cloud: None
        return
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

    with Progress(
        TextColumn("fetching catalogs"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.description}"),
        console=Console(stderr=True),
        transient=True,
    ) as bar:
        task = bar.add_task("", total=total)
        yield lambda cloud: bar.update(task, advance=1, description=cloud)
