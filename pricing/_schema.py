"""The DuckDB file's schema: numbered migrations, applied in order by :mod:`pricing._db`.

Each is recorded in ``schema_version``; a migration is never edited once shipped, a new
one is appended (and the read cache, keyed by the last version, starts afresh).
"""

from __future__ import annotations

__all__ = ["MIGRATIONS"]

MIGRATIONS: list[tuple[int, str]] = [
    (
        1,
        """
        CREATE TABLE offerings (
            cloud VARCHAR NOT NULL,
            region VARCHAR NOT NULL,
            instance_type VARCHAR NOT NULL,
            accelerator VARCHAR NOT NULL,
            accelerator_count INTEGER NOT NULL,
            vcpus DOUBLE,
            memory_gib DOUBLE,
            usd_per_hour DOUBLE,            -- trusted on-demand price, NULL when untrusted
            spot_usd_per_hour DOUBLE,       -- trusted spot price, NULL when none/untrusted
            raw_usd_per_hour DOUBLE,        -- as the source gave it (for display and audits)
            raw_spot_usd_per_hour DOUBLE,
            flags VARCHAR NOT NULL DEFAULT '',  -- comma-separated reasons a price is untrusted
            source VARCHAR NOT NULL,
            fetched_at TIMESTAMP NOT NULL,
            PRIMARY KEY (cloud, region, instance_type, accelerator, accelerator_count)
        );
        CREATE TABLE gpu_specs (
            accelerator VARCHAR PRIMARY KEY,
            memory_gib DOUBLE NOT NULL,
            mem_bandwidth_gbps DOUBLE NOT NULL,
            bf16_tflops DOUBLE NOT NULL,
            fp8_tflops DOUBLE,
            source VARCHAR NOT NULL
        );
        CREATE SEQUENCE throughput_id;
        CREATE TABLE throughput (
            id BIGINT PRIMARY KEY DEFAULT nextval('throughput_id'),
            model VARCHAR NOT NULL,
            model_key VARCHAR NOT NULL,      -- the model table's canonical name (or the raw name)
            engine VARCHAR NOT NULL,
            task VARCHAR NOT NULL,
            accelerator VARCHAR NOT NULL,
            accelerator_count INTEGER NOT NULL,
            precision VARCHAR,
            input_tokens DOUBLE,
            output_tokens DOUBLE,
            rows_per_s DOUBLE,
            tokens_per_s DOUBLE,             -- output tokens/s (generate) or input tokens/s
            kind VARCHAR NOT NULL CHECK (kind IN ('measured', 'published', 'estimated')),
            source VARCHAR NOT NULL,
            recorded_at TIMESTAMP NOT NULL
        );
        CREATE TABLE run_history (
            run_id VARCHAR NOT NULL,
            recipe VARCHAR,
            model VARCHAR,
            engine VARCHAR,
            task VARCHAR,
            cloud VARCHAR,
            region VARCHAR,
            accelerator VARCHAR,
            accelerator_count INTEGER,
            spot BOOLEAN,
            workers INTEGER,
            planned_hours DOUBLE,
            actual_hours DOUBLE,
            planned_cost_usd DOUBLE,
            actual_cost_usd DOUBLE,
            planned_rows_per_s DOUBLE,
            actual_rows_per_s DOUBLE,
            worker_hours DOUBLE,             -- summed over workers, for preemption rates
            preemptions INTEGER,
            startup_s DOUBLE,                -- measured provisioning + setup, mean per worker
            rows INTEGER,
            finished_at TIMESTAMP NOT NULL
        );
        CREATE TABLE jobs (
            run_id VARCHAR NOT NULL,
            job_id VARCHAR NOT NULL,
            worker_index INTEGER NOT NULL,
            cloud VARCHAR,
            region VARCHAR,
            created_at TIMESTAMP NOT NULL,
            PRIMARY KEY (run_id, worker_index)
        );
        CREATE TABLE meta (key VARCHAR PRIMARY KEY, value VARCHAR NOT NULL);
        """,
    ),
    (
        2,
        # Databases made before these rules: what pricing._specs and pricing._catalog now
        # do on a fresh one (L4/L40S memory in GB read as GiB; implausible spot prices).
        """
        UPDATE gpu_specs SET memory_gib = memory_gib * 1e9 / 1073741824.0
            WHERE accelerator IN ('L4', 'L40S') AND memory_gib IN (24, 48);
        UPDATE offerings SET spot_usd_per_hour = NULL,
            flags = concat_ws(',', nullif(flags, ''), 'spot_tenth_of_ondemand')
            WHERE raw_usd_per_hour > 0 AND raw_spot_usd_per_hour > 0
              AND abs(raw_spot_usd_per_hour / raw_usd_per_hour - 0.1) <= 0.0005
              AND flags NOT LIKE '%spot_tenth_of_ondemand%';
        UPDATE offerings SET spot_usd_per_hour = NULL,
            flags = concat_ws(',', nullif(flags, ''), 'spot_equals_ondemand')
            WHERE raw_usd_per_hour > 0 AND raw_spot_usd_per_hour = raw_usd_per_hour
              AND cloud IN ('aws', 'gcp', 'azure', 'runpod', 'nebius', 'oci')
              AND flags NOT LIKE '%spot_equals_ondemand%';
        """,
    ),
    (
        3,
        # Model configs fetched from the Hub (pricing._configs): one fetch per model.
        """
        CREATE TABLE model_configs (
            model VARCHAR NOT NULL,
            revision VARCHAR NOT NULL,       -- '' for the default branch
            config VARCHAR NOT NULL,         -- config.json as fetched
            fetched_at TIMESTAMP NOT NULL,
            PRIMARY KEY (model, revision)
        );
        """,
    ),
    (
        4,
        # Hub lookups that found no config (pricing._configs): remembered, so that a plan
        # of a gated or unknown model does not wait on the network every time.
        """
        CREATE TABLE model_config_misses (
            model VARCHAR NOT NULL,
            revision VARCHAR NOT NULL,       -- '' for the default branch
            reason VARCHAR NOT NULL,         -- 'HTTP 401', 'timeout: ...'
            transient BOOLEAN NOT NULL,      -- no answer (network): asked again a day later
            with_token BOOLEAN NOT NULL,     -- HF_TOKEN was set: asked again once one is
            tried_at TIMESTAMP NOT NULL,
            PRIMARY KEY (model, revision)
        );
        """,
    ),
    (
        5,
        # Which version of each shipped reference file (GPU specs, published figures) the
        # file's rows came from (pricing._shipped): an upgrade's rows replace older ones.
        """
        CREATE TABLE shipped_data (
            name VARCHAR PRIMARY KEY,        -- 'gpu_specs', 'published_throughput'
            digest VARCHAR NOT NULL,         -- sha256 of the shipped file
            loaded_at TIMESTAMP NOT NULL
        );
        """,
    ),
]
