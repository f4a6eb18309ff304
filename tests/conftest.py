"""Fixtures shared by every test: isolate the user's machine.

Each test gets its own HOME and SKYBATCH_HOME (so the pricing DuckDB file, SkyPilot's
~/.sky and any config are temporary; the DuckDB file starts as a copy of one seeded per
session) and runs offline. Worker subprocesses import this
checkout even when it is not installed.
"""

from __future__ import annotations

import os
import random
import shutil
import socket
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session")
def pricing_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One migrated and seeded pricing database for the whole session.

    Each test gets a copy (a file copy costs a millisecond; creating and seeding the
    database costs far more, in the test's process and again in each CLI subprocess).
    """
    home = tmp_path_factory.mktemp("pricing-template")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("SKYBATCH_HOME", str(home))
        import pricing

        with pricing.connect():
            pass
    return home / "skybatch.duckdb"


@pytest.fixture(scope="session")
def wheel_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One cache for the wheel a cloud launch ships, shared by the session's homes.

    Wheels are cached by the digest of their content, so sharing is safe; a CLI test
    that builds the task YAML would otherwise build the same wheel again in its fresh home.
    """
    return tmp_path_factory.mktemp("wheels")


@pytest.fixture(autouse=True)
def isolated_home(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, pricing_template: Path, wheel_cache: Path
) -> Path:
    """Keep tests off the user's ~/.skybatch and ~/.sky (a temporary HOME each), with a
    fresh copy of the seeded pricing database and the session's wheel cache in it."""
    home = tmp_path / "home"
    (home / ".skybatch").mkdir(parents=True)
    shutil.copyfile(pricing_template, home / ".skybatch" / "skybatch.duckdb")
    (home / ".skybatch" / "wheels").symlink_to(wheel_cache, target_is_directory=True)
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("SKYBATCH_HOME", str(home / ".skybatch"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("TRANSFORMERS_OFFLINE", "1")
    monkeypatch.setenv("TOKENIZERS_PARALLELISM", "false")
    monkeypatch.delenv("SKYBATCH_STORE", raising=False)
    monkeypatch.delenv("GITHUB_STEP_SUMMARY", raising=False)
    monkeypatch.setenv(
        "PYTHONPATH", os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))
    )
    # Commands that say plain `python` (a SkyPilot task's run script) get this interpreter,
    # as they would inside the virtual environment on a worker machine.
    bindir = os.path.dirname(sys.executable)
    monkeypatch.setenv("PATH", os.pathsep.join([bindir, os.environ.get("PATH", "")]))
    return home


@pytest.fixture
def repo() -> Path:
    """The repository root (recipes/ and its data live there)."""
    return REPO


def _bindable(port: int) -> bool:
    """Free to bind now (without SO_REUSEADDR: stricter than SkyPilot's own check)."""
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def _sky_queue_manager_port(api_port: int) -> int:
    """SkyPilot's queue-manager port for a local server on ``api_port`` (its own rule)."""
    from sky.server.requests.queues import mp_queue

    old = os.environ.get("SKYPILOT_API_SERVER_LOCAL_PORT")
    os.environ["SKYPILOT_API_SERVER_LOCAL_PORT"] = str(api_port)
    try:
        return mp_queue.get_queue_manager_port()
    finally:
        if old is None:
            del os.environ["SKYPILOT_API_SERVER_LOCAL_PORT"]
        else:
            os.environ["SKYPILOT_API_SERVER_LOCAL_PORT"] = old


@pytest.fixture
def sky_queue_port_of() -> Callable[[int], int]:
    """SkyPilot's rule from a local server's port to its queue manager's port."""
    return _sky_queue_manager_port


@pytest.fixture
def sky_api_port() -> int:
    """A free port for a SkyPilot API server of the test's own, below Linux's ephemeral range.

    The server binds it seconds after we pick it. A port from the ephemeral range
    (32768-60999), which is what binding port 0 hands out, can meanwhile be taken by any
    outgoing connection on the machine, and the server then exits at start-up ("port is
    not available"); below that range only a listener could take it. The server also binds
    a queue-manager port that SkyPilot derives from this one (always in 50000-59999, so in
    that range); it must be free now too. The product retries a port taken for a moment.
    """
    rng = random.Random()
    for _ in range(500):
        port = rng.randrange(20_000, 32_000)
        if _bindable(port) and _bindable(_sky_queue_manager_port(port)):
            return port
    raise RuntimeError("no free port in 20000-31999 for a SkyPilot API server")
