"""Importing pricing (and the CLI module) stays cheap: DuckDB, SkyPilot, torch load on use."""

from __future__ import annotations

import subprocess
import sys


def test_import_loads_no_heavy_dependency() -> None:
    code = (
        "import sys, pricing, scheduler.cli._pricing\n"
        "heavy = [m for m in ('duckdb', 'sky', 'torch', 'pyarrow', 'rich') if m in sys.modules]\n"
        "print(','.join(heavy))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""


def test_public_names_are_exported() -> None:
    import pricing

    for name in pricing.__all__:
        assert hasattr(pricing, name), name
    # The public contract of pricing (docs/ARCHITECTURE.md).
    assert {
        "Offering",
        "GpuSpec",
        "ModelInfo",
        "ThroughputEstimate",
        "connect",
        "normalize_accelerator",
        "list_offerings",
        "gpu_spec",
        "gpu_specs",
        "model_info",
        "memory_fit",
        "gpus_needed",
        "estimate_throughput",
        "record_throughput",
        "preemption_rate_per_hour",
        "record_run",
        "prices_age_days",
        "startup_s",
    } <= set(pricing.__all__)
