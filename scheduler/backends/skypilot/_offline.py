"""Whether SkyPilot can launch anywhere, answered without starting its API server.

Asking SkyPilot's API server which clouds are enabled cost 27-49 s on a small machine when
no server was running: the server starts a process per request queue and daemon, each
importing SkyPilot, and the answer waits for one of them. What the local server answers is
only the list that ``sky check`` cached in SkyPilot's state database; at boot it also runs
``sky check`` itself, so credentials on the machine could enable a cloud. This process can
do both without a server: read that cache, and when it is empty run SkyPilot's own compute
check (which writes the cache, as the server's boot check would). When both say no cloud,
no server could say otherwise, and ``launch`` answers in seconds.

Everything else goes the normal way (:func:`no_cloud_can_be_enabled` returns False): an
API server endpoint set in ``SKYPILOT_API_SERVER_ENDPOINT`` or SkyPilot's config (even a
local one), a server that already answers, a state database that is not SkyPilot's local
SQLite file, workspaces in SkyPilot's config, a cached enabled cloud, or a check that
enables one (the cache is then filled, so the server's answer is right at once).

SkyPilot internals this relies on (0.14), any of which failing or changing shape sends the
caller the normal way: ``sky.skylet.constants.SKY_API_SERVER_URL_ENV_VAR`` (the endpoint's
environment variable), ``sky.server.common.get_server_url``/``get_default_server_url``/
``get_api_server_status_response`` (``None`` when nothing answers),
``sky.global_user_state.initialize_and_get_db`` (a SQLAlchemy engine) and
``get_cached_enabled_clouds``, ``sky.skypilot_config.get_active_workspace``/``get_nested``,
``sky.check.check_capability`` (a mapping of workspace to enabled clouds), and
``sky.clouds.cloud.CloudCapability.COMPUTE``.

``import sky`` still costs 3-4 s here: every ``sky.*`` module runs ``sky/__init__``, which
imports SkyPilot's backends eagerly (about 3 s of it), so no narrower import avoids it.
"""

from __future__ import annotations

import os
from collections.abc import Mapping

__all__ = ["no_cloud_can_be_enabled"]


def no_cloud_can_be_enabled() -> bool:
    """True only when SkyPilot surely has no cloud to launch on; False means "ask the server".

    May run SkyPilot's compute check (a few seconds, writing its cache as ``sky check``
    does). Any error or unexpected answer from SkyPilot's internals gives False.
    """
    try:
        return _nothing_enabled()
    except (Exception, SystemExit):  # SkyPilot's check may exit; any surprise: ask the server
        return False


def _nothing_enabled() -> bool:
    from sky import check as sky_check
    from sky import global_user_state, sky_logging, skypilot_config
    from sky.clouds.cloud import CloudCapability
    from sky.server import common as server_common
    from sky.skylet import constants

    if os.environ.get(constants.SKY_API_SERVER_URL_ENV_VAR) or skypilot_config.get_nested(
        ("api_server", "endpoint"), None
    ):
        return False  # an endpoint is set (even the local one): that server decides
    endpoint = server_common.get_server_url()
    if endpoint != server_common.get_default_server_url():
        return False
    if server_common.get_api_server_status_response(endpoint) is not None:
        return False  # a server answers (the user's, or another command's): ask it
    if skypilot_config.get_nested(("workspaces",), None):
        return False  # the server picks among workspaces by user; do not second-guess it
    if global_user_state.initialize_and_get_db().dialect.name != "sqlite":
        return False  # a shared database (e.g. PostgreSQL) belongs to a server elsewhere
    workspace = skypilot_config.get_active_workspace()
    if not _empty(global_user_state.get_cached_enabled_clouds(CloudCapability.COMPUTE, workspace)):
        return False
    with sky_logging.silent():  # SkyPilot's progress lines would break stderr's one line
        checked = sky_check.check_capability(
            CloudCapability.COMPUTE, quiet=True, workspace=workspace
        )
    if not isinstance(checked, Mapping) or any(checked.values()):
        return False
    return _empty(global_user_state.get_cached_enabled_clouds(CloudCapability.COMPUTE, workspace))


def _empty(clouds: object) -> bool:
    """True only for an empty list (another shape means SkyPilot changed: not certain)."""
    return isinstance(clouds, list) and not clouds
