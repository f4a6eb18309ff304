"""What ``launch --dry-run`` prints: a plan header, each distinct task once, a worker table.

Thirty workers of one plan differ only in their worker id (the job name, two envs and one
flag of the run command), so printing thirty near-identical task YAMLs hides what matters.
The output is::

    # plan header: option, why, store, run id (or why it could not be derived), secrets
    <task YAML of the first worker of each distinct task>     (--all: every worker's)
    ---
    ...
    # worker table: worker, job name, which task document, spot

Header and table are ``#`` comments, so stdout stays multi-document YAML that
``sky jobs launch`` and ``sky.Task.from_yaml_config`` accept as it stands.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from typing import Any

from scheduler.backends.skypilot import WorkerJob
from scheduler.launch._request import describe_option
from scheduler.store import LaunchOption

__all__ = ["UNDERIVED_RUN_ID", "render_dry_run"]

#: Stands for the run id in the tasks when it cannot be derived here (never a made-up id).
UNDERIVED_RUN_ID = "RUN-ID-NOT-DERIVED"
_WORKER_FLAG = re.compile(r"--worker-id \S+")


def _task_key(job: WorkerJob) -> str:
    """The job's task with what names the worker taken out: equal keys, one task."""
    config = dict(job.config)
    config.pop("name", None)
    envs = {
        k: v
        for k, v in (config.get("envs") or {}).items()
        if k not in ("SKYBATCH_WORKER_ID", "SKYBATCH_WORKER_INDEX")
    }
    config["envs"] = envs
    config["run"] = _WORKER_FLAG.sub("--worker-id *", str(config.get("run") or ""))
    return json.dumps(config, sort_keys=True, default=str)


def _comment(lines: Sequence[str]) -> str:
    return "".join(f"# {line}".rstrip() + "\n" for line in lines)


def render_dry_run(
    jobs: Sequence[WorkerJob],
    *,
    option: LaunchOption,
    plan: Mapping[str, Any] | None,
    store_url: str,
    run_id: str | None,
    run_id_problem: str | None,
    all_documents: bool = False,
) -> str:
    """The ``--dry-run`` text (see the module docstring)."""
    groups: dict[str, int] = {}
    task_of: list[int] = []
    for job in jobs:
        task_of.append(groups.setdefault(_task_key(job), len(groups)) + 1)
    printed = (
        list(jobs) if all_documents else [jobs[task_of.index(i + 1)] for i in range(len(groups))]
    )
    header = ["skybatch launch --dry-run: nothing was launched, nothing was written", ""]
    header.append(f"plan     {describe_option(option)}")
    if plan and plan.get("reason"):
        header.append(f"why      {plan['reason']}")
    header.append(f"store    {store_url}")
    if run_id is not None:
        header.append(f"run id   {run_id}")
    else:
        header += [
            f"run id   could not be derived here: {run_id_problem}",
            f"         the tasks say {UNDERIVED_RUN_ID}: pass --run-id ID to print launchable tasks",
        ]
    secrets = sorted({n for job in jobs for n in job.secret_names})
    if secrets:
        header.append(f"secrets  {', '.join(secrets)} (values only in memory, at launch)")
    shown = "every worker's task" if all_documents else "each distinct task once"
    header.append(
        f"tasks    {len(jobs)} worker(s), {len(groups)} distinct task(s); printed: {shown}"
        + ("" if all_documents else " (--all prints every worker's)")
    )
    body = "---\n".join(job.yaml() for job in printed)
    width = max((len(job.name) for job in jobs), default=8)
    table = ["", f"{'worker':<8}{'job name':<{width + 2}}{'task':<6}spot"]
    for job, task in zip(jobs, task_of, strict=True):
        spot = "yes" if job.config.get("resources", {}).get("use_spot") else "no"
        table.append(f"{job.worker_id:<8}{job.name:<{width + 2}}{task:<6}{spot}")
    return _comment(header) + body + _comment(table)
