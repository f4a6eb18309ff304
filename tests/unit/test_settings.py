"""Configuration resolves in one place: flag → SKYBATCH_* → recipe → config file → default."""

from __future__ import annotations

from pathlib import Path

import pytest

import pricing
from scheduler.errors import UsageError
from scheduler.recipe import recipe_from_dict
from scheduler.settings import load_settings

RECIPE = {
    "name": "s",
    "task": "embed",
    "model": {"name": "m:f", "engine": "python"},
    "input": {"path": "in.jsonl", "format": "jsonl"},
}


def _config(isolated_home: Path, text: str) -> Path:
    path = isolated_home / ".skybatch" / "config.yaml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def test_store_precedence_flag_env_recipe_config_default(
    isolated_home: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.chdir(tmp_path)
    silent = recipe_from_dict(RECIPE)  # says nothing about the store
    named = recipe_from_dict({**RECIPE, "store": "s3://recipe/runs/"})

    assert load_settings().store_url(None, silent) == str(tmp_path / "runs")
    _config(isolated_home, "store: gs://config/runs\n")
    # The recipe model's default "./runs" must not hide the user's config.
    assert load_settings().store_url(None, silent) == "gs://config/runs"
    assert load_settings().store_url(None, named) == "s3://recipe/runs"
    monkeypatch.setenv("SKYBATCH_STORE", "s3://env/runs")
    assert load_settings().store_url(None, named) == "s3://env/runs"
    assert load_settings().store_url("local-runs", named) == str(tmp_path / "local-runs")
    assert load_settings().store_url() == "s3://env/runs"


def test_price_age_env_beats_config_and_pricing_reads_the_same(
    isolated_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert load_settings().max_price_age_days == 30.0
    _config(isolated_home, "max_price_age_days: 7\ndb_lock_timeout_s: 2.5\n")
    assert pricing.max_price_age_days() == 7.0
    assert load_settings().db_lock_timeout_s == 2.5
    monkeypatch.setenv("SKYBATCH_MAX_PRICE_AGE_DAYS", "90")
    assert pricing.max_price_age_days() == load_settings().max_price_age_days == 90.0


def test_home_comes_from_skybatch_home(isolated_home: Path) -> None:
    assert load_settings().home == isolated_home / ".skybatch"
    assert pricing.db_path().parent == load_settings().home


def test_a_bad_environment_value_is_one_line_naming_the_variable(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("SKYBATCH_MAX_PRICE_AGE_DAYS", "a month")
    with pytest.raises(
        UsageError, match=r"^SKYBATCH_MAX_PRICE_AGE_DAYS: expected a number of days, got 'a month'$"
    ):
        load_settings()
    monkeypatch.setenv("SKYBATCH_MAX_PRICE_AGE_DAYS", "-1")
    with pytest.raises(UsageError, match=r"expected a number of days ≥ 0, got '-1'"):
        load_settings()


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("stor: s3://x\n", r"config\.yaml: stor: unknown setting \(known: store, "),
        ("db_lock_timeout_s: soon\n", r"config\.yaml: db_lock_timeout_s: expected a number of "),
        ("store: [a, b]\n", r"config\.yaml: store: expected a path or URL"),
        ("- store\n", r"config\.yaml: expected a mapping of settings, got list"),
        ("store: [\n", r"config\.yaml: line 2 not valid YAML; fix or remove the file"),
    ],
)
def test_a_bad_config_file_is_one_line_naming_file_and_key(
    isolated_home: Path, text: str, message: str
) -> None:
    _config(isolated_home, text)
    with pytest.raises(UsageError, match=message):
        load_settings()


def test_an_empty_config_file_is_the_defaults(isolated_home: Path) -> None:
    _config(isolated_home, "# nothing yet\n")
    assert load_settings().max_price_age_days == 30.0
