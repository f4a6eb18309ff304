"""The SkyPilot backend: one managed job per worker, spot with recovery across regions.

Modules: ``_backend`` is the :class:`~scheduler.backends.base.Backend` (launch, count, add,
cancel, bill a run's jobs through a session); ``_task`` builds each worker's task YAML as
plain data; ``_wheel`` builds the wheel of the running code that the VM installs, and
``_setup`` the script that installs it and checks the result (nothing is installed by name
from an index, and the VM gets only the worker's requirements: no SkyPilot, Textual or
DuckDB); ``_session`` talks to SkyPilot's API server (the default
session); ``_jobs`` reads the managed-job queue (states, spend, cancel); ``_placement`` decides where
a run may go and what must travel with it (enabled clouds, a local model, store credentials);
``_entry`` (run as ``python -m scheduler.backends.skypilot worker``) is what the VM runs.

Each worker of a run becomes one SkyPilot managed job whose task is built (by
:mod:`scheduler.backends.skypilot._task`) as plain task-YAML data, so
``launch --dry-run`` can print exactly what would be launched, and turned into a
``sky.Task`` only at launch time, when the secret values are filled in::

    resources:
      use_spot: true                      # as planned
      job_recovery:                       # same on every candidate (SkyPilot requires it)
        strategy: EAGER_NEXT_REGION       # lost VM: torn down, relaunched over any_of (README)
        max_restarts_on_errors: 0         # SkyPilot's counter would restart exit 2 too
        recover_on_exit_codes: [3, 75]    # 3 spot notice; 75 an error within the budget
      any_of: [{infra: aws/us-east-1, instance_type: p5.4xlarge, accelerators: H100:1}, ...]
    envs: {SKYBATCH_STORE: s3://..., SKYBATCH_RUN_ID: ..., SKYBATCH_WORKER_INDEX: "0", ...}
    secrets: {HF_TOKEN: <redacted: ...>}  # real values only in memory, at launch
    file_mounts: {~/.skybatch/wheels/<digest>/skybatch-0.1.0-py3-none-any.whl: <the local wheel>}
    setup: |                              # the worker's requirements only, then that wheel
      python -m pip install 'pyyaml>=6.0' 'pyarrow>=15' ... 'vllm>=0.6' 's3fs>=2024.2'
      python -m pip install --no-deps --force-reinstall ~/.skybatch/wheels/<digest>/skybatch-...whl
      python - <<'SKYBATCH_PIP_CHECK' ...   # pip check: a broken requirement of ours fails setup
    run: python -m scheduler.backends.skypilot worker --store '...' --run-id '...' ...

A preemption (the cluster vanishes) is always recovered by SkyPilot; a worker that gets the
spot notice exits 3 after releasing its shard, which ``recover_on_exit_codes`` recovers too.
A crash is restarted only while the recipe's ``limits.retries`` budget lasts, counted in the
store by the VM entry point (``_entry``), and a worker that cannot start (exit 2: bad input,
model will not load) is never restarted on a new GPU.

``import sky`` takes about 3 s, so it happens only inside the functions that talk to
SkyPilot; building and printing tasks needs only PyYAML. :class:`SkyPilotSession` wraps
SkyPilot's client: it shows a spinner while SkyPilot starts its local API server, turns
"no cloud enabled" into one :class:`LaunchError` line, and stops an API server it started.
For a launch it first asks ``_offline`` whether SkyPilot surely has no cloud (its cache and
its own check, in this process), and then answers without starting a server.
"""

from __future__ import annotations

from scheduler.backends.skypilot._backend import (
    SkyPilotBackend,
    ondemand_offerings,
    record_jobs,
)
from scheduler.backends.skypilot._jobs import (
    JobState,
    cancel_jobs,
    describe_job,
    job_spend,
    job_statuses,
)
from scheduler.backends.skypilot._placement import (
    MODEL_ENV,
    enabled_clouds_for,
    model_mount,
    store_credentials_warning,
)
from scheduler.backends.skypilot._session import NO_CLOUD_MESSAGE, QUEUE_FIELDS, SkyPilotSession
from scheduler.backends.skypilot._setup import worker_extras
from scheduler.backends.skypilot._task import (
    DEFAULT_SECRET_NAMES,
    EXIT_RETRY,
    MAX_CANDIDATES,
    RECOVER_EXIT_CODES,
    WorkerJob,
    build_worker_job,
    candidates,
    job_name,
    render_yaml,
    require_object_store,
    secret_names_from_env,
    secret_values,
    to_task,
    validate_task_config,
    worker_argv,
)
from scheduler.backends.skypilot._wheel import Wheel, shipped_wheel

__all__ = [
    "DEFAULT_SECRET_NAMES",
    "EXIT_RETRY",
    "MAX_CANDIDATES",
    "MODEL_ENV",
    "NO_CLOUD_MESSAGE",
    "QUEUE_FIELDS",
    "RECOVER_EXIT_CODES",
    "JobState",
    "SkyPilotBackend",
    "SkyPilotSession",
    "Wheel",
    "WorkerJob",
    "build_worker_job",
    "cancel_jobs",
    "candidates",
    "describe_job",
    "enabled_clouds_for",
    "job_name",
    "job_spend",
    "job_statuses",
    "model_mount",
    "ondemand_offerings",
    "record_jobs",
    "render_yaml",
    "require_object_store",
    "secret_names_from_env",
    "secret_values",
    "shipped_wheel",
    "store_credentials_warning",
    "to_task",
    "validate_task_config",
    "worker_argv",
    "worker_extras",
]
