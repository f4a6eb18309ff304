"""Where a cloud run may go, and what must travel with it.

Three checks a cloud launch makes before it plans or submits anything:

* :func:`enabled_clouds_for` — plan only over clouds SkyPilot has enabled: the recipe's
  ``schedule.clouds`` less those ``sky check`` has not set up, each one dropped named with
  the reason (none left: one error line with the fix);
* :func:`model_mount` — a model on this machine (a local ``model.name`` directory, or the
  python engine's ``file.py``) goes to the VM in ``file_mounts`` under
  ``~/.skybatch/model/<hash>/`` and the worker is told where (``SKYBATCH_MODEL_NAME``);
  a path that does not exist here is refused with the fix;
* :func:`store_credentials_warning` — an S3 store read by workers on another cloud (or a
  GCS store by workers on AWS) works only where SkyPilot uploads that cloud's credentials:
  one warning line with the fix.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from pathlib import Path

from scheduler.errors import LaunchError, RecipeError
from scheduler.recipe import Recipe, resolve_model_name
from scheduler.worker import MODEL_ENV

__all__ = [
    "MODEL_ENV",
    "enabled_clouds_for",
    "model_mount",
    "store_credentials_warning",
]


def enabled_clouds_for(
    wanted: Sequence[str] | None, enabled: Iterable[str]
) -> tuple[list[str], list[str]]:
    """The clouds to plan over and one line per recipe cloud dropped, with why."""
    on = sorted({c.lower() for c in enabled})
    if not wanted:
        return on, []
    keep = [c for c in wanted if c.lower() in on]
    dropped = [
        f"{c}: not enabled in SkyPilot (run `sky check {c.lower()}` to set it up)"
        for c in wanted
        if c.lower() not in on
    ]
    if not keep:
        raise LaunchError(
            f"none of the recipe's clouds ({', '.join(wanted)}) is enabled in SkyPilot "
            f"(enabled: {', '.join(on) or 'none'}); run `sky check`, or set schedule.clouds "
            "to an enabled cloud"
        )
    return keep, dropped


def _local_model_path(recipe: Recipe) -> tuple[Path | None, str]:
    """The model's path on this machine (if it names one) and the python function part."""
    name = resolve_model_name(recipe)
    if recipe.model.engine == "python":
        head, sep, func = name.rpartition(":")
        if not sep or not head.endswith(".py"):
            return None, ""  # an importable module: shipped code or the worker's packages
        return Path(head), f":{func}"
    looks_local = name.startswith(("/", "./", "../", "~")) or Path(name).exists()
    return (Path(name).expanduser(), "") if looks_local else (None, "")


def model_mount(recipe: Recipe) -> tuple[dict[str, str], dict[str, str]]:
    """``file_mounts`` and ``envs`` that ship a local model to the VM (empty: none)."""
    path, func = _local_model_path(recipe)
    if path is None:
        return {}, {}
    if not path.exists():
        raise RecipeError(
            f"{recipe.source or 'the recipe'}: model.name {recipe.model.name} is a path on "
            "this machine that does not exist, and cloud workers cannot read this machine; "
            "fix the path, or name a model on the Hugging Face hub"
        )
    local = path.resolve()
    digest = hashlib.sha256(str(local).encode()).hexdigest()[:12]
    remote = f"~/.skybatch/model/{digest}/{local.name}"
    return {remote: str(local)}, {MODEL_ENV: remote + func}


# A bucket's cloud, and the clouds whose VMs get its credentials without being told.
_STORE_CLOUD = {"s3": "aws", "gs": "gcp", "gcs": "gcp"}


def store_credentials_warning(store_url: str, clouds: Iterable[str]) -> str | None:
    """One warning line when workers on other clouds than the store's must reach it."""
    proto = store_url.split("://", 1)[0].lower() if "://" in store_url else ""
    home = _STORE_CLOUD.get(proto)
    if home is None:
        return None
    others = sorted({c.lower() for c in clouds} - {home})
    if not others:
        return None
    fix = (
        "pass them with --secret AWS_ACCESS_KEY_ID --secret AWS_SECRET_ACCESS_KEY, or keep "
        "the workers on aws (schedule.clouds)"
        if home == "aws"
        else "use an s3:// store with --secret AWS_ACCESS_KEY_ID --secret "
        "AWS_SECRET_ACCESS_KEY, or keep the workers on gcp (schedule.clouds)"
    )
    return (
        f"store {store_url} is on {home}, but workers may run on {', '.join(others)}, where "
        f"{home} credentials exist only if SkyPilot uploads them; {fix}"
    )
