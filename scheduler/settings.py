"""Configuration, resolved in one place.

Every setting a user can change is read here and nowhere else. Precedence, highest first:

1. a command-line flag (the caller passes it in: ``--store``);
2. a ``SKYBATCH_*`` environment variable;
3. the recipe, for what a recipe can say (``store``);
4. the user config file, ``$SKYBATCH_HOME/config.yaml`` (optional);
5. the defaults below.

=============================  ===============================  =========  =========
setting                        environment variable             recipe     default
=============================  ===============================  =========  =========
home (the DuckDB file's dir)   ``SKYBATCH_HOME``                no         ``~/.skybatch``
run store                      ``SKYBATCH_STORE``               ``store``  ``./runs``
price age before a warning     ``SKYBATCH_MAX_PRICE_AGE_DAYS``  no         30 days
wait for the DuckDB file lock  ``SKYBATCH_DB_LOCK_TIMEOUT_S``   no         30 s
=============================  ===============================  =========  =========

The config file takes the keys ``store``, ``max_price_age_days`` and
``db_lock_timeout_s``; the home cannot be set there (the file lives in it). A bad value
anywhere is one line naming the variable or the file and key (exit 2).

Like :mod:`scheduler.errors`, this module is a leaf: it imports nothing of the project's
but the errors, so :mod:`pricing` reads its settings here too (the one exception to the
``tui → scheduler → pricing`` direction besides the errors). It imports nothing heavy
(yaml only when a config file exists) and reads the environment on every call, so a
test's ``monkeypatch.setenv`` is seen at once.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from scheduler.errors import UsageError

__all__ = [
    "CONFIG_FILENAME",
    "DEFAULT_STORE",
    "RecipeLike",
    "Settings",
    "load_settings",
    "normalize_store_url",
    "skybatch_home",
]

CONFIG_FILENAME = "config.yaml"
DEFAULT_STORE = "./runs"
_DEFAULT_MAX_PRICE_AGE_DAYS = 30.0
_DEFAULT_DB_LOCK_TIMEOUT_S = 30.0
_CONFIG_KEYS = ("store", "max_price_age_days", "db_lock_timeout_s")


def skybatch_home() -> Path:
    """``$SKYBATCH_HOME``, else ``~/.skybatch`` (not created here)."""
    home = os.environ.get("SKYBATCH_HOME")
    return Path(home).expanduser() if home else Path.home() / ".skybatch"


def normalize_store_url(url: str) -> str:
    """A store URL as runs record it: object stores without a trailing slash, local
    paths absolute (workers may start in another directory)."""
    if "://" in url:
        return url.rstrip("/")
    return str(Path(url).expanduser().resolve())


class RecipeLike(Protocol):
    """What settings read of a :class:`~scheduler.recipe.Recipe` (a leaf imports no recipe)."""

    @property
    def store(self) -> str: ...

    @property
    def model_fields_set(self) -> set[str]: ...


@dataclass(frozen=True)
class Settings:
    """Every setting, resolved except for what a flag or a recipe may still override."""

    home: Path
    #: ``SKYBATCH_STORE``: beats the recipe's ``store``.
    env_store: str | None
    #: The config file's ``store``: beaten by the recipe's.
    config_store: str | None
    max_price_age_days: float
    db_lock_timeout_s: float

    def store_url(self, flag: str | None = None, recipe: RecipeLike | None = None) -> str:
        """The run store: flag → ``SKYBATCH_STORE`` → the recipe's ``store`` (when it
        names one) → the config file's → ``./runs``; normalised."""
        recipe_store = recipe.store if recipe is not None and _sets_store(recipe) else None
        url = flag or self.env_store or recipe_store or self.config_store or DEFAULT_STORE
        return normalize_store_url(url)


def _sets_store(recipe: RecipeLike) -> bool:
    # The recipe model fills in "./runs" when the file says nothing; only a store the
    # file names outranks the user's config.
    return "store" in recipe.model_fields_set


def _number(value: object, where: str, unit: str) -> float:
    try:
        number = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise UsageError(f"{where}: expected a number of {unit}, got {value!r}") from None
    if not math.isfinite(number) or number < 0:
        raise UsageError(f"{where}: expected a number of {unit} ≥ 0, got {value!r}")
    return number


def _read_config(path: Path) -> dict[str, object]:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return {}
    except OSError as e:
        raise UsageError(f"{path}: cannot read the config file ({e.strerror})") from None
    import yaml  # only when there is a file: start-up stays light

    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        line = f" line {mark.line + 1}" if mark is not None else ""
        raise UsageError(f"{path}:{line} not valid YAML; fix or remove the file") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise UsageError(f"{path}: expected a mapping of settings, got {type(data).__name__}")
    for key in data:
        if key not in _CONFIG_KEYS:
            raise UsageError(f"{path}: {key}: unknown setting (known: {', '.join(_CONFIG_KEYS)})")
    return data


def load_settings() -> Settings:
    """Resolve every setting from the environment, the config file and the defaults."""
    home = skybatch_home()
    config_path = home / CONFIG_FILENAME
    config = _read_config(config_path)

    def number(key: str, env: str, default: float, unit: str) -> float:
        if env in os.environ:
            return _number(os.environ[env], env, unit)
        if key in config:
            return _number(config[key], f"{config_path}: {key}", unit)
        return default

    config_store = config.get("store")
    if config_store is not None and (not isinstance(config_store, str) or not config_store):
        raise UsageError(f"{config_path}: store: expected a path or URL, got {config_store!r}")
    return Settings(
        home=home,
        env_store=os.environ.get("SKYBATCH_STORE") or None,
        config_store=config_store,
        max_price_age_days=number(
            "max_price_age_days", "SKYBATCH_MAX_PRICE_AGE_DAYS", _DEFAULT_MAX_PRICE_AGE_DAYS, "days"
        ),
        db_lock_timeout_s=number(
            "db_lock_timeout_s", "SKYBATCH_DB_LOCK_TIMEOUT_S", _DEFAULT_DB_LOCK_TIMEOUT_S, "seconds"
        ),
    )
