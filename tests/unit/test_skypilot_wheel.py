"""The wheel a cloud worker installs: the running code, cached by content, slim requirements."""

from __future__ import annotations

import zipfile
from importlib import metadata
from pathlib import Path

import pytest

from scheduler.backends import skypilot as sp
from scheduler.backends.skypilot import _wheel
from scheduler.recipe import recipe_from_dict
from scheduler.store import LaunchOption

REPO = Path(__file__).resolve().parents[2]
CLI_ONLY = ("skypilot", "textual", "duckdb", "fastapi", "uvicorn", "plotext", "rich", "click")


def test_the_wheel_holds_exactly_the_running_code_and_is_reused() -> None:
    wheel = sp.shipped_wheel()
    with zipfile.ZipFile(wheel.path) as zf:
        shipped = zf.read("scheduler/worker/_worker.py")
        names = set(zf.namelist())
    assert shipped == (REPO / "scheduler" / "worker" / "_worker.py").read_bytes()
    assert "pricing/data/offerings.csv" in names or any(n.startswith("pricing/") for n in names)
    assert sp.shipped_wheel() == wheel  # same content: the cached wheel, not a rebuild
    assert wheel.remote_path.startswith("~/.skybatch/wheels/" + wheel.digest[:16] + "/")


def test_a_changed_file_changes_the_digest(tmp_path: Path) -> None:
    for name in ("pyproject.toml", "scheduler/a.py"):
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text("x = 1\n")
    before = _wheel._digest(tmp_path, _wheel._source_files(tmp_path))
    (tmp_path / "scheduler" / "a.py").write_text("x = 2\n")
    assert _wheel._digest(tmp_path, _wheel._source_files(tmp_path)) != before


def test_the_worker_installs_none_of_the_cli_stack() -> None:
    reqs = sp.shipped_wheel().requirements(["worker", "vllm", "s3"])
    names = {r.split(">")[0].split("=")[0].split("[")[0].lower() for r in reqs}
    assert {"pyarrow", "pyyaml", "fsspec", "pydantic", "vllm", "s3fs"} <= names
    assert not names & set(CLI_ONLY)


def test_setup_installs_the_shipped_file_with_the_engine_and_store_extras() -> None:
    recipe = recipe_from_dict(
        {
            "name": "t",
            "input": {"path": "s3://b/in.jsonl", "id_column": "id"},
            "task": "embed",
            "model": {"engine": "torch", "name": "sentence-transformers/all-MiniLM-L6-v2"},
        }
    )
    option = LaunchOption("L4", spot=False)
    job = sp.build_worker_job(
        recipe=recipe, run_id="t-1", store_url="gs://b/runs", worker_index=0, option=option
    )
    setup = job.config["setup"]
    [(remote, local)] = job.config["file_mounts"].items()
    assert Path(local).is_file() and local.endswith(".whl")
    assert f"--no-deps --force-reinstall {remote}\n" in setup
    assert "'sentence-transformers>=3.0'" in setup and "'gcsfs>=2024.2'" in setup
    assert "s3fs" not in setup and "skypilot>" not in setup and "textual" not in setup


def test_an_installed_copy_is_packed_back_into_a_wheel(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    site = tmp_path / "site"
    (site / "scheduler").mkdir(parents=True)
    (site / "scheduler" / "__init__.py").write_text("X = 1\n")
    info = site / "skybatch-9.9.9.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(
        "Metadata-Version: 2.1\nName: skybatch\nVersion: 9.9.9\n"
        'Requires-Dist: duckdb>=1.0\nRequires-Dist: pyarrow>=15; extra == "worker"\n'
    )
    (info / "WHEEL").write_text("Wheel-Version: 1.0\nRoot-Is-Purelib: true\nTag: py3-none-any\n")
    (info / "INSTALLER").write_text("pip\n")
    (info / "RECORD").write_text(
        "scheduler/__init__.py,,\nskybatch-9.9.9.dist-info/METADATA,,\n"
        "skybatch-9.9.9.dist-info/WHEEL,,\nskybatch-9.9.9.dist-info/INSTALLER,,\n"
        "skybatch-9.9.9.dist-info/RECORD,,\n"
    )
    monkeypatch.setattr(_wheel, "_source_root", lambda: None)
    monkeypatch.setattr(metadata, "distribution", lambda name: metadata.PathDistribution(info))
    wheel = sp.shipped_wheel()
    assert wheel.path.name == "skybatch-9.9.9-py3-none-any.whl"
    with zipfile.ZipFile(wheel.path) as zf:
        names = set(zf.namelist())
        record = zf.read("skybatch-9.9.9.dist-info/RECORD").decode()
    assert "scheduler/__init__.py" in names and "skybatch-9.9.9.dist-info/INSTALLER" not in names
    assert "scheduler/__init__.py,sha256=" in record
    assert wheel.requirements(["worker"]) == ["pyarrow>=15"]
    # packed with worker metadata too: pyarrow core, the CLI's duckdb under `cli`
    assert _core_requirements(wheel.path) == {"pyarrow": "pyarrow>=15"}
    assert wheel.requirements(["cli"]) == ["duckdb>=1.0"]


def _core_requirements(wheel: Path) -> dict[str, str]:
    """The shipped wheel's core (no extra) requirements, by project name, and each one's
    extras markers, as pip reads them after ``--no-deps``."""
    from packaging.requirements import Requirement

    with zipfile.ZipFile(wheel) as zf:
        name = next(n for n in zf.namelist() if n.endswith(".dist-info/METADATA"))
        text = zf.read(name).decode("utf-8")
    core: dict[str, str] = {}
    for line in text.partition("\n\n")[0].splitlines():
        if line.startswith("Requires-Dist:"):
            req = Requirement(line.split(":", 1)[1].strip())
            if req.marker is None or req.marker.evaluate({"extra": ""}):
                core[req.name.lower()] = str(req)
    return core


def test_the_shipped_wheel_requires_only_what_the_worker_installs() -> None:
    # setup installs the worker extra's requirements, then the wheel --no-deps: a core
    # requirement outside them is what pip reported ("skybatch requires click, which is not
    # installed") and what the setup's pip check fails on
    wheel = sp.shipped_wheel()
    core = _core_requirements(wheel.path)
    worker = {r.split(">")[0].split("=")[0].split("[")[0].lower() for r in
              wheel.requirements(["worker"])}  # fmt: skip
    assert set(core) == worker
    # the CLI's dependencies are still on record, as the extra `cli`
    cli = {r.split(">")[0].split("=")[0].split("<")[0].lower() for r in
           wheel.requirements(["cli"])}  # fmt: skip
    assert {"skypilot", "textual", "duckdb", "click"} <= cli


_FAKE_PIP = """\
import os, sys
print(os.environ["FAKE_PIP_CHECK"])
sys.exit(int(os.environ["FAKE_PIP_EXIT"]))
"""


@pytest.mark.parametrize(
    ("report", "code", "says"),
    [
        ("No broken requirements found.", 0, "the worker's packages are consistent"),
        # the image's own packages: shown, left alone
        ("jupyter-core 5.1 requires platformdirs, which is not installed.", 0,
         "this machine's own packages (left alone): jupyter-core 5.1 requires platformdirs"),
        # skybatch's own, or a package this setup installed: the setup fails, listed
        ("skybatch 0.1.0 requires click, which is not installed.", 1,
         "broken requirements among the worker's packages:\n  skybatch 0.1.0 requires click"),
        ("Sentence_Transformers 3.0 has requirement torch>=2.9, but you have torch 2.2.", 1,
         "  Sentence_Transformers 3.0 has requirement torch>=2.9"),
    ],
)  # fmt: skip
def test_setup_fails_on_a_broken_requirement_of_the_worker_only(
    tmp_path: Path, report: str, code: int, says: str
) -> None:
    import os
    import subprocess
    import sys

    wheel = sp.shipped_wheel()
    setup = sp.build_worker_job(
        recipe=recipe_from_dict({"name": "t", "input": {"path": "s3://b/in.jsonl"}, "task": "embed",
                                 "model": {"engine": "torch", "name": "m"}}),
        run_id="t-1", store_url="s3://b/runs", worker_index=0, option=LaunchOption("L4", spot=False),
        wheel=wheel,
    ).config["setup"]  # fmt: skip
    step = setup.split("<<'SKYBATCH_PIP_CHECK'\n", 1)[1].split("SKYBATCH_PIP_CHECK\n", 1)[0]
    shim = tmp_path / "shim" / "pip"  # `python -m pip` finds this pip first
    shim.mkdir(parents=True)
    (shim / "__init__.py").write_text("")
    (shim / "__main__.py").write_text(_FAKE_PIP)
    env = {**os.environ, "PYTHONPATH": str(shim.parent), "FAKE_PIP_CHECK": report,
           "FAKE_PIP_EXIT": "0" if report.startswith("No broken") else "1"}  # fmt: skip
    proc = subprocess.run([sys.executable, "-"], input=step, env=env, capture_output=True,
                          text=True, timeout=60)  # fmt: skip
    assert proc.returncode == code, proc.stderr
    assert says in proc.stdout + proc.stderr
