"""The skybatch wheel a cloud worker installs: exactly the code that is launching.

A VM starts without this machine's checkout, and no package named ``skybatch`` on an index
is ours to trust, so every launch ships a wheel of the running code in the task's
``file_mounts`` and ``setup`` installs that file. :func:`shipped_wheel` finds it:

* from a source checkout (``pyproject.toml`` beside the ``scheduler`` package, as in
  development or an editable install): the package folders are copied to a scratch folder
  and built with ``pip wheel`` there, so the checkout gets no ``build/`` litter;
* from an installed distribution (``pip install skybatch``): its installed files, as its
  ``RECORD`` lists them, are packed back into a wheel.

Either way the wheel is cached under ``$SKYBATCH_HOME/wheels/<digest>/`` by a hash of the
code it holds, so a second launch of the same code reuses it (and a changed file makes a
new one). :meth:`Wheel.requirements` reads the worker's requirements from the wheel's own
metadata: the ``worker`` extra plus the engine's and store's, never the CLI's dependencies.

The shipped wheel is a *worker* distribution of skybatch: its core metadata requires the
``worker`` extra's packages, and the CLI's own dependencies (SkyPilot, Textual, DuckDB,
click...) move to an extra named ``cli`` (:func:`worker_metadata`). Installed with
``--no-deps`` after the worker's requirements, it then leaves nothing broken for pip to
report ("skybatch requires click, which is not installed"), and ``pip check`` on the VM
can tell a really inconsistent install apart.
"""

from __future__ import annotations

import base64
import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
import zipfile
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

from scheduler.errors import LaunchError

__all__ = ["REMOTE_WHEEL_DIR", "Wheel", "shipped_wheel"]

#: Where the wheel lands on the VM (``file_mounts`` target, below the VM user's home).
REMOTE_WHEEL_DIR = "~/.skybatch/wheels"
_PACKAGES = ("scheduler", "pricing", "tui")
_PROJECT_FILES = ("pyproject.toml", "README.md")
_SKIP_PARTS = {"__pycache__", ".mypy_cache", ".pytest_cache"}
_built: dict[str, Path] = {}  # digest -> wheel built by this process (tests build once)
#: Hashed into every digest: a wheel cached before its metadata took this form is not reused.
_METADATA_FORM = b"worker-core-metadata-1"


@dataclass(frozen=True)
class Wheel:
    """A built skybatch wheel: the local file, and the digest of the code it holds."""

    path: Path
    digest: str

    @property
    def remote_path(self) -> str:
        """The wheel's path on the VM (a ``file_mounts`` destination)."""
        return f"{REMOTE_WHEEL_DIR}/{self.digest[:16]}/{self.path.name}"

    def requirements(self, extras: Sequence[str]) -> list[str]:
        """The wheel's requirements for ``extras`` only (its base CLI dependencies left out)."""
        from packaging.requirements import Requirement

        with zipfile.ZipFile(self.path) as zf:
            name = next(n for n in zf.namelist() if n.endswith(".dist-info/METADATA"))
            text = zf.read(name).decode("utf-8")
        out: list[str] = []
        for line in text.splitlines():
            if not line.startswith("Requires-Dist:"):
                continue
            req = Requirement(line.split(":", 1)[1].strip())
            if req.marker is None or "extra" not in str(req.marker):
                continue  # a core one: the worker extra's, listed under that extra too
            if any(req.marker.evaluate({"extra": e}) for e in extras):
                req.marker = None
                out.append(str(req))
        return list(dict.fromkeys(out))


def _cache_root() -> Path:
    from scheduler.settings import skybatch_home

    return skybatch_home() / "wheels"


def _source_root() -> Path | None:
    """The checkout this code runs from, or None when it runs from an installed copy."""
    import scheduler

    root = Path(scheduler.__file__).resolve().parent.parent
    pyproject = root / "pyproject.toml"
    if pyproject.is_file() and 'name = "skybatch"' in pyproject.read_text(encoding="utf-8"):
        return root
    return None


def _source_files(root: Path) -> list[Path]:
    files = [root / f for f in _PROJECT_FILES if (root / f).is_file()]
    for pkg in _PACKAGES:
        for p in sorted((root / pkg).rglob("*")):
            rel = p.relative_to(root)
            if p.is_file() and not _SKIP_PARTS & set(rel.parts) and p.suffix != ".pyc":
                files.append(p)
    return files


def _digest(root: Path, files: Iterable[Path]) -> str:
    h = hashlib.sha256(_METADATA_FORM)
    for f in files:
        h.update(f.relative_to(root).as_posix().encode() + b"\0")
        h.update(hashlib.sha256(f.read_bytes()).digest())
    return h.hexdigest()


def _cached(digest: str) -> Path | None:
    known = _built.get(digest)
    if known is not None and known.is_file():
        return known
    folder = _cache_root() / digest[:16]
    wheels = sorted(folder.glob("skybatch-*.whl")) if folder.is_dir() else []
    return wheels[0] if wheels else None


def worker_metadata(text: str) -> str:
    """A wheel's core metadata (``METADATA``) as a worker installs it: the ``worker``
    extra's requirements become the core ones, the former core ones (the CLI's) move to an
    extra ``cli``; every extra is kept, so :meth:`Wheel.requirements` reads the same."""
    from packaging.requirements import Requirement

    head, sep, body = text.partition("\n\n")  # the long description follows a blank line
    lines, core, worker = head.splitlines(), [], []
    for line in lines:
        if not line.startswith("Requires-Dist:"):
            continue
        req = Requirement(line.split(":", 1)[1].strip())
        if req.marker is None or "extra" not in str(req.marker):
            core.append(line)
        elif req.marker.evaluate({"extra": "worker"}):
            req.marker = None
            worker.append(f"Requires-Dist: {req}")
    out = [line for line in lines if line not in core]
    for line in core:
        req = Requirement(line.split(":", 1)[1].strip())
        cond = f"({req.marker}) and " if req.marker is not None else ""
        req.marker = None
        out.append(f'Requires-Dist: {req}; {cond}extra == "cli"')
    if core and "Provides-Extra: cli" not in out:
        out.append("Provides-Extra: cli")
    out.extend(w for w in dict.fromkeys(worker))
    return "\n".join(out) + (sep + body if sep else "\n")


def _with_worker_metadata(wheel: Path) -> None:
    """Rewrite a wheel's ``METADATA`` with :func:`worker_metadata` (and its RECORD line)."""
    with zipfile.ZipFile(wheel) as zf:
        entries = [(info, zf.read(info)) for info in zf.infolist()]
    name = next(i.filename for i, _ in entries if i.filename.endswith(".dist-info/METADATA"))
    record = name.rsplit("/", 1)[0] + "/RECORD"
    data = {i.filename: d for i, d in entries}
    meta = worker_metadata(data[name].decode("utf-8")).encode("utf-8")
    lines = data.get(record, b"").decode("utf-8").splitlines()
    lines = [f"{name},{_record_hash(meta)},{len(meta)}" if ln.startswith(name + ",") else ln
             for ln in lines]  # fmt: skip
    data[name], data[record] = meta, ("\n".join(lines) + "\n").encode("utf-8")
    tmp = wheel.with_suffix(".tmp")
    with zipfile.ZipFile(tmp, "w", zipfile.ZIP_DEFLATED) as zf:
        for info, _ in entries:
            zf.writestr(info, data[info.filename])
    os.replace(tmp, wheel)


def _store(digest: str, wheel: Path) -> Path:
    """Give a freshly built wheel its worker metadata and move it into the cache
    (atomically: launches may race)."""
    _with_worker_metadata(wheel)
    folder = _cache_root() / digest[:16]
    folder.mkdir(parents=True, exist_ok=True)
    final = folder / wheel.name
    os.replace(wheel, final)
    _built[digest] = final
    return final


def _build_from_source(root: Path, files: Sequence[Path], digest: str) -> Path:
    with tempfile.TemporaryDirectory(prefix="skybatch-wheel-") as tmp:
        src = Path(tmp) / "src"
        for f in files:
            dest = src / f.relative_to(root)
            dest.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(f, dest)
        out = Path(tmp) / "out"
        cmd = [sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "-w", str(out)]
        try:  # the build backend at hand avoids fetching one; without it pip isolates
            import setuptools  # noqa: F401
            import wheel  # noqa: F401

            cmd.append("--no-build-isolation")
        except ImportError:
            pass
        proc = subprocess.run([*cmd, str(src)], capture_output=True, text=True, check=False)
        built = sorted(out.glob("skybatch-*.whl")) if out.is_dir() else []
        if proc.returncode != 0 or not built:
            last = (proc.stderr or proc.stdout).strip().splitlines()[-1:] or ["no wheel made"]
            raise LaunchError(
                f"could not build the skybatch wheel that workers install from {root}: "
                f"{last[0][:300]}; fix the build (`pip wheel --no-deps {root}`) and launch again"
            )
        return _store(digest, built[0])


def _record_hash(data: bytes) -> str:
    raw = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=")
    return "sha256=" + raw.decode()


def _pack_installed(dist: metadata.Distribution) -> Path:
    """Pack an installed distribution's files (as its RECORD lists them) into a wheel."""
    base = Path(str(dist.locate_file("")))
    entries: list[tuple[str, Path]] = []
    for f in dist.files or []:
        rel = f.as_posix()
        top = rel.split("/", 1)[0]
        if rel.endswith(".pyc") or "__pycache__" in rel or ".." in rel:
            continue
        if top.endswith(".dist-info"):
            if rel.rsplit("/", 1)[-1] not in ("METADATA", "WHEEL", "entry_points.txt"):
                continue  # RECORD is rewritten; INSTALLER, direct_url.json are the host's
        elif top not in _PACKAGES:
            continue
        entries.append((rel, base / rel))
    h = hashlib.sha256(_METADATA_FORM)
    for rel, path in sorted(entries):
        h.update(rel.encode() + b"\0" + hashlib.sha256(path.read_bytes()).digest())
    digest = h.hexdigest()
    cached = _cached(digest)
    if cached is not None:
        return cached
    info = next(rel.split("/", 1)[0] for rel, _ in entries if rel.endswith("/METADATA"))
    name = f"skybatch-{dist.version}-py3-none-any.whl"
    with tempfile.TemporaryDirectory(prefix="skybatch-wheel-") as tmp:
        out = Path(tmp) / name
        record: list[str] = []
        with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as zf:
            for rel, path in sorted(entries):
                data = path.read_bytes()
                zf.writestr(rel, data)
                record.append(f"{rel},{_record_hash(data)},{len(data)}")
            record.append(f"{info}/RECORD,,")
            zf.writestr(f"{info}/RECORD", "\n".join(record) + "\n")
        return _store(digest, out)


def shipped_wheel() -> Wheel:
    """The wheel of the running skybatch, built (or packed) once per content and cached."""
    root = _source_root()
    if root is not None:
        files = _source_files(root)
        digest = _digest(root, files)
        path = _cached(digest) or _build_from_source(root, files, digest)
        _built[digest] = path
        return Wheel(path=path, digest=digest)
    try:
        dist = metadata.distribution("skybatch")
    except metadata.PackageNotFoundError as e:
        raise LaunchError(
            "skybatch runs neither from a checkout nor from an installed package, so there "
            "is no code to ship to the workers; install it (`pip install .`) and launch again"
        ) from e
    path = _pack_installed(dist)
    return Wheel(path=path, digest=path.parent.name)
