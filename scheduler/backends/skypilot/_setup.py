"""A worker task's ``setup``: what the VM installs, and the check that the set is whole.

The VM gets the worker's requirements (the ``worker`` extra plus the engine's and the
store's, :func:`worker_extras`), then the shipped wheel with ``--no-deps`` (whose core
metadata requires exactly the ``worker`` extra's packages: see ``_wheel``), then two checks,
so a broken install fails ``setup`` with its reason instead of the first shard of ``run``:

* ``pip check``, judged by :data:`PIP_CHECK`: a broken requirement of skybatch or of a
  package this setup installed fails the setup, listed; one among the image's own packages
  (a GPU image ships many, not all of them consistent) is shown and left alone;
* importing the worker's entry point.
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Sequence

from scheduler.backends.skypilot._wheel import Wheel

__all__ = ["PIP_CHECK", "setup_script", "worker_extras"]

_ENGINE_EXTRA = {"torch": "torch", "vllm": "vllm"}
_STORE_EXTRA = {"s3": "s3", "gs": "gcs", "gcs": "gcs"}

#: Python (stdlib only: it runs before anything of skybatch may import) that runs
#: ``pip check`` and fails on a broken requirement of the packages named in ``OURS``.
PIP_CHECK = """\
import re, subprocess, sys
OURS = {ours}
def name(line):
    return re.sub(r"[-_.]+", "-", line.split(" ", 1)[0]).lower()
proc = subprocess.run([sys.executable, "-m", "pip", "check"], capture_output=True, text=True)
lines = [ln for ln in proc.stdout.splitlines() if ln.strip() and not ln.startswith("No broken")]
bad = [ln for ln in lines if name(ln) in OURS]
for ln in lines:
    if ln not in bad:
        print("skybatch: pip check, this machine's own packages (left alone): " + ln)
if bad or (proc.returncode != 0 and not lines):
    why = bad or [(proc.stderr.strip().splitlines() or ["pip check failed"])[-1]]
    print("skybatch: pip check found broken requirements among the worker's packages:",
          file=sys.stderr)
    for ln in why:
        print("  " + ln, file=sys.stderr)
    print("skybatch: fix the worker's requirements (the worker, engine and store extras in "
          "pyproject.toml) and launch again", file=sys.stderr)
    sys.exit(1)
print("skybatch: pip check: the worker's packages are consistent")
"""


def worker_extras(engine: str, store_url: str) -> list[str]:
    """The extras a worker needs: ``worker``, the engine's and the store's."""
    extras = ["worker"]
    if engine in _ENGINE_EXTRA:
        extras.append(_ENGINE_EXTRA[engine])
    proto = store_url.split("://", 1)[0] if "://" in store_url else ""
    if proto in _STORE_EXTRA:
        extras.append(_STORE_EXTRA[proto])
    return extras


def _project(requirement: str) -> str:
    """The canonical project name of a requirement string (as ``pip check`` lines start)."""
    head = re.split(r"[\s\[<>=!~;(]", requirement.strip(), maxsplit=1)[0]
    return re.sub(r"[-_.]+", "-", head).lower()


def setup_script(wheel: Wheel, extras: Sequence[str]) -> str:
    """The task's ``setup``: the worker's requirements, then the shipped wheel without its
    dependencies, then :data:`PIP_CHECK` and an import check of the worker."""
    reqs = wheel.requirements(extras)
    ours = sorted({"skybatch", *(_project(r) for r in reqs)})
    check = PIP_CHECK.format(ours="{" + ", ".join(repr(n) for n in ours) + "}")
    return (
        "set -e\n"
        f"python -m pip install --quiet {' '.join(shlex.quote(r) for r in reqs)}\n"
        f"python -m pip install --quiet --no-deps --force-reinstall {wheel.remote_path}\n"
        f"python - <<'SKYBATCH_PIP_CHECK'\n{check}SKYBATCH_PIP_CHECK\n"
        "python -c 'import scheduler.backends.skypilot, scheduler.worker'\n"
    )
