"""Accelerator names and specs: one normalised name per GPU, and what each can do.

Sources spell the same GPU many ways (SkyPilot ``A100`` is the 40 GB part, vast.ai says
``A100_SXM4``, torch reports ``NVIDIA A100-SXM4-80GB``, datasheets say ``H100 SXM5``).
:func:`normalize_accelerator` maps all of them, once, to the names the rest of skybatch
uses (``H100``, ``A100-40GB``, ``A100-80GB``, ``L4``, ...). :func:`sky_accelerator_name`
maps back to SkyPilot's spelling for task YAML.

Specs (memory, memory bandwidth, dense BF16/FP8 TFLOP/s) come from the shipped
``data/gpu_specs.csv`` (vendor datasheets, named per row) through the database.
"""

from __future__ import annotations

import csv
import functools
import re
from dataclasses import dataclass
from importlib import resources
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import duckdb

__all__ = [
    "GpuSpec",
    "gpu_spec",
    "gpu_specs",
    "normalize_accelerator",
    "sky_accelerator_name",
]


@dataclass(frozen=True)
class GpuSpec:
    """What one accelerator offers; throughputs are dense (no sparsity)."""

    accelerator: str
    memory_gib: float
    mem_bandwidth_gbps: float
    bf16_tflops: float
    fp8_tflops: float | None
    source: str


# Exact aliases after upper-casing and turning spaces/underscores into dashes.
_ALIASES: dict[str, str] = {
    "H100": "H100",
    "H100-SXM": "H100",
    "H100-SXM5": "H100",
    "H100-80GB": "H100",
    "H100-80GB-HBM3": "H100",
    "H100-SXM5-80GB": "H100",
    "H100-MEGA": "H100",
    "H100-PCIE": "H100-PCIe",
    "H100-80GB-PCIE": "H100-PCIe",
    "H100-NVL": "H100-NVL",
    "H200": "H200",
    "H200-SXM": "H200",
    "H200-141GB": "H200",
    "H200-NVL": "H200-NVL",
    "GH200": "GH200",
    "B200": "B200",
    "B300": "B300",
    "GB200": "GB200",
    "A100": "A100-40GB",
    "A100-40GB": "A100-40GB",
    "A100-SXM4": "A100-40GB",
    "A100-SXM4-40GB": "A100-40GB",
    "A100-PCIE-40GB": "A100-40GB",
    "A100-80GB": "A100-80GB",
    "A100-SXM4-80GB": "A100-80GB",
    "A100-PCIE-80GB": "A100-80GB",
    "A100-80GB-PCIE": "A100-80GB",
    "A100-80GB-SXM": "A100-80GB",
    "L4": "L4",
    "L40": "L40",
    "L40S": "L40S",
    "A10": "A10",
    "A10G": "A10G",
    "T4": "T4",
    "V100": "V100",
    "V100-SXM2-16GB": "V100",
    "V100-16GB": "V100",
    "V100-32GB": "V100-32GB",
    "V100-SXM2-32GB": "V100-32GB",
    "A40": "A40",
    "A6000": "A6000",
    "RTX-A6000": "A6000",
    "RTX6000": "RTX6000",
    "QUADRO-RTX-6000": "RTX6000",
    "RTX-6000-ADA": "RTX6000-Ada",
    "RTX6000-ADA": "RTX6000-Ada",
    "RTX-6000ADA": "RTX6000-Ada",
    "RTX-6000-ADA-GENERATION": "RTX6000-Ada",
    "RTXPRO6000": "RTX-PRO-6000",
    "RTX-PRO-6000": "RTX-PRO-6000",
    "RTX-PRO-6000-BLACKWELL": "RTX-PRO-6000",
    "RTX4090": "RTX4090",
    "RTX-4090": "RTX4090",
    "RTX5090": "RTX5090",
    "RTX-5090": "RTX5090",
    "MI300X": "MI300X",
    "MI325X": "MI325X",
    "MI355X": "MI355X",
    "CPU": "cpu",
}

# SkyPilot spells a few of our names differently.
_SKY_NAMES = {"A100-40GB": "A100", "RTX-PRO-6000": "RTXPRO6000"}

_PREFIXES = ("NVIDIA-", "TESLA-", "GEFORCE-", "AMD-INSTINCT-", "AMD-", "QUADRO-")


@functools.lru_cache(maxsize=4096)  # pure, and asked for every row and every plan question
def normalize_accelerator(name: str) -> str:
    """The one name skybatch uses for an accelerator, from any spelling.

    >>> normalize_accelerator("NVIDIA A100-SXM4-80GB"), normalize_accelerator("a100")
    ('A100-80GB', 'A100-40GB')

    Unknown names come back cleaned (upper case, dashes) so that equal spellings still
    compare equal.
    """
    key = re.sub(r"[\s_]+", "-", name.strip()).upper()
    key = re.sub(r"-+", "-", key).strip("-")
    for prefix in _PREFIXES:
        if key.startswith(prefix) and key[len(prefix) :] in _ALIASES:
            key = key[len(prefix) :]
            break
        if key.startswith(prefix):
            key = key[len(prefix) :]
    if key in _ALIASES:
        return _ALIASES[key]
    # Drop a trailing memory size the table does not know ("L4-24GB" -> "L4").
    stripped = re.sub(r"-\d+GB$", "", key)
    if stripped in _ALIASES and _ALIASES[stripped] not in ("A100-40GB", "H100"):
        return _ALIASES[stripped]
    return key


def sky_accelerator_name(accelerator: str) -> str:
    """SkyPilot's spelling of a normalised name (``A100-40GB`` -> ``A100``)."""
    norm = normalize_accelerator(accelerator)
    return _SKY_NAMES.get(norm, norm)


def _float_or_none(text: str) -> float | None:
    text = text.strip()
    return float(text) if text else None


# Datasheets that state memory in GB (10^9 bytes), entered as such in the GiB column:
# 24 GB is 22.35 GiB, not 24 (torch reports 22.5 GiB on an L4, 45.0 on an L40S).
_MEMORY_IN_GB = frozenset({"L4", "L40S"})
GB_PER_GIB = 1024**3 / 1e9


def load_spec_rows() -> list[GpuSpec]:
    """The shipped spec table, names normalised; gaps filled only with a stated reason."""
    raw = resources.files("pricing").joinpath("data/gpu_specs.csv").read_text("utf-8")
    rows = list(csv.DictReader(raw.splitlines()))
    by_name = {normalize_accelerator(r["accelerator"]): r for r in rows}
    specs = []
    for name, r in by_name.items():
        bf16 = _float_or_none(r["bf16_tflops_dense"])
        source = r["source"]
        if bf16 is None and name == "A10G":
            # AWS and NVIDIA publish no tensor figure for the A10G; it is an A10 variant,
            # so the A10's datasheet figure serves as an upper bound.
            bf16 = float(by_name["A10"]["bf16_tflops_dense"])
            source += "; bf16_tflops taken from the A10 datasheet (upper bound)"
        if bf16 is None:
            continue
        memory_gib = float(r["memory_gib"])
        if name in _MEMORY_IN_GB:
            memory_gib /= GB_PER_GIB
            source += f"; {r['memory_gib']} GB read as {memory_gib:.2f} GiB"
        specs.append(
            GpuSpec(
                accelerator=name,
                memory_gib=memory_gib,
                mem_bandwidth_gbps=float(r["mem_bandwidth_gbps"]),
                bf16_tflops=bf16,
                fp8_tflops=_float_or_none(r["fp8_tflops_dense"]),
                source=source,
            )
        )
    return specs


def seed_specs(con: duckdb.DuckDBPyConnection) -> None:
    """Replace the spec table with the shipped one."""
    from pricing._db import bulk_insert

    con.execute("DELETE FROM gpu_specs")
    columns = (
        "accelerator",
        "memory_gib",
        "mem_bandwidth_gbps",
        "bf16_tflops",
        "fp8_tflops",
        "source",
    )
    rows = [
        [s.accelerator, s.memory_gib, s.mem_bandwidth_gbps, s.bf16_tflops, s.fp8_tflops, s.source]
        for s in load_spec_rows()
    ]
    bulk_insert(con, "gpu_specs", columns, rows)


def gpu_specs() -> dict[str, GpuSpec]:
    """Every known accelerator's spec, by normalised name."""
    from pricing._db import cached

    def load(con: duckdb.DuckDBPyConnection) -> dict[str, GpuSpec]:
        rows = con.execute(
            "SELECT accelerator, memory_gib, mem_bandwidth_gbps, bf16_tflops, "
            "fp8_tflops, source FROM gpu_specs"
        ).fetchall()
        return {r[0]: GpuSpec(*r) for r in rows}

    return dict(cached("gpu_specs", load))


def gpu_spec(accelerator: str) -> GpuSpec | None:
    """The spec of one accelerator (any spelling), or None when unknown."""
    return gpu_specs().get(normalize_accelerator(accelerator))
