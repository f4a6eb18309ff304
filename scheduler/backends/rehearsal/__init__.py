"""Rehearsal: a cloud launch played on this machine, before any GPU is paid for.

``skybatch launch RECIPE --rehearse`` runs the whole launch flow (plan, store, scaler,
guard, watch, spend) with a :class:`RehearsalSession` in place of SkyPilot's: each worker's
exact task runs here on a sandboxed "VM" (``_sandbox``): its ``file_mounts`` copied in,
``setup`` in a fresh virtual environment with nothing of this checkout on its path, ``run``
with the environment SkyPilot sets, against the run's real store. A worker that dies from a
signal stands for a lost VM and is recovered on a new one in the next candidate region; an
exit code is judged by the task's ``job_recovery`` as SkyPilot 0.14 judges it (``_session``).
A packaging, credential or model-path problem shows up here, in the setup or run log.

Stand-ins (printed when used): the framework a GPU image ships (torch) is linked from this
environment, model weights and store credentials come from this machine.
"""

from __future__ import annotations

from scheduler.backends.rehearsal._sandbox import Sandbox, framework_closure
from scheduler.backends.rehearsal._session import RehearsalSession

__all__ = ["RehearsalSession", "Sandbox", "framework_closure"]
