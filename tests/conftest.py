"""Shared fixtures: every test runs against a private HOME and SKYBATCH_HOME."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture(autouse=True)
def isolated_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Keep tests off the user's ~/.skybatch and ~/.sky (a temporary HOME each)."""
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("SKYBATCH_HOME", str(home / ".skybatch"))
    return home
