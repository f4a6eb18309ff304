"""Prices, GPU specs and throughput, in one DuckDB file: what the planner reads.

The public surface is re-exported here (the contract is the ``__all__`` below, pinned by ``tests/unit/test_pricing_imports.py``);
internals live in ``_name`` modules:

* :mod:`pricing._db` - the file, short-lived retried connections, migrations applied
  (:mod:`pricing._schema`); :mod:`pricing._readcache` - what a new process reads, without
  DuckDB;
* :mod:`pricing._offering` - offerings, sanitising (flagged prices are never returned as
  trusted), snapshot; :mod:`pricing._catalog` - the offerings table, refresh diff; :mod:`pricing._refresh` - ``vms.csv`` files;
  :mod:`pricing._fetch` - SkyPilot's public catalog over HTTP (httpx);
* :mod:`pricing._specs` - accelerator names and specs; :mod:`pricing._models` - models,
  :mod:`pricing._configs` - their ``config.json`` (local, cached, or the Hub over httpx);
* :mod:`pricing._figures` - throughput figures (published, measured);
  :mod:`pricing._roofline`, :mod:`pricing._memory` and :mod:`pricing._throughput` - memory
  fit and the estimator (:mod:`pricing._bands` its fitted constants,
  :mod:`pricing._published` its published path);
* :mod:`pricing._history` - run history, preemption rates, start-up times, launcher jobs;
  :mod:`pricing._terms` - each cloud's billing granularity, egress $/GB and spot risk.

Importing this package is cheap: DuckDB, pyarrow and SkyPilot load only when used.
"""

from __future__ import annotations

from pricing._bands import PUBLISHED_BAND, PUBLISHED_DERATE, ThroughputEstimate
from pricing._catalog import (
    CatalogDiff,
    list_offerings,
    max_price_age_days,
    prices_age_days,
    replace_offerings,
)
from pricing._db import connect, db_path, db_signature, register_seeder, session, skybatch_home
from pricing._fetch import Fetched, catalog_cache_dir, fetch_catalogs
from pricing._figures import Figure, published_figures, record_throughput
from pricing._history import (
    list_jobs,
    preemption_rate_per_hour,
    record_job,
    record_run,
    startup_s,
)
from pricing._memory import gpus_needed, memory_fit
from pricing._models import ModelInfo, model_info, model_key, name_precision, precision_of
from pricing._offering import SPOT_ONLY_FLAGS, Offering, sanitise
from pricing._refresh import from_fetched, from_vms_dir
from pricing._roofline import bytes_per_param
from pricing._specs import (
    GpuSpec,
    gpu_spec,
    gpu_specs,
    normalize_accelerator,
    sky_accelerator_name,
)
from pricing._terms import CloudTerms, SpotRisk, cloud_terms, gpu_class, spot_risk
from pricing._throughput import estimate_throughput

__all__ = [
    "PUBLISHED_BAND",
    "PUBLISHED_DERATE",
    "SPOT_ONLY_FLAGS",
    "CatalogDiff",
    "CloudTerms",
    "Fetched",
    "Figure",
    "GpuSpec",
    "ModelInfo",
    "Offering",
    "SpotRisk",
    "ThroughputEstimate",
    "bytes_per_param",
    "catalog_cache_dir",
    "cloud_terms",
    "connect",
    "db_path",
    "db_signature",
    "estimate_throughput",
    "fetch_catalogs",
    "from_fetched",
    "from_vms_dir",
    "gpu_class",
    "gpu_spec",
    "gpu_specs",
    "gpus_needed",
    "list_jobs",
    "list_offerings",
    "max_price_age_days",
    "memory_fit",
    "model_info",
    "model_key",
    "name_precision",
    "normalize_accelerator",
    "precision_of",
    "preemption_rate_per_hour",
    "prices_age_days",
    "published_figures",
    "record_job",
    "record_run",
    "record_throughput",
    "replace_offerings",
    "sanitise",
    "session",
    "sky_accelerator_name",
    "skybatch_home",
    "spot_risk",
    "startup_s",
]


def _register_seeders() -> None:
    # A fresh database gets the shipped snapshot, specs and published figures, inside
    # the same transaction as its first migration.
    from pricing._catalog import seed_offerings
    from pricing._figures import replace_published, seed_published
    from pricing._shipped import Reference, register_reference
    from pricing._specs import seed_specs

    for seed in (seed_offerings, seed_specs, seed_published):
        register_seeder(seed)
    # Specs and published figures also follow the shipped files into existing databases.
    register_reference(Reference("gpu_specs", "data/gpu_specs.csv", seed_specs))
    register_reference(
        Reference("published_throughput", "data/throughput_refs.csv", replace_published)
    )


_register_seeders()
