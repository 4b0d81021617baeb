"""Stops a hub at start-up when its BatchSpawner's configuration cannot
work (no backend set, a backend that is not installed, a token delivery the
backend cannot keep private), instead of failing each user's first spawn.

JupyterHub (5 and 6) has no start-up hook for spawners. It creates a
spawner only when a user needs one (``User._new_spawner``); the spawner's
module is imported earlier, but too early to check anything: while the
``JupyterHub`` application is being constructed (its ``classes`` default
loads every ``jupyterhub.spawners`` entry point), before any config file is
read and before the application instance is registered. The one point
that sees the loaded config, the resolved ``spawner_class`` and nothing yet
served is ``JupyterHub.init_spawners``, which ``initialize()`` awaits after
the database and handlers are set up and before ``start()`` starts the
proxy and the hub's server. So, when the spawner's module is imported by a
hub, ``check_when_hub_starts`` wraps that one method, once: the wrapper
checks the spawner class (if it is a BatchSpawner) and then runs
JupyterHub's own method unchanged. A JupyterHub without that method, or a
process that imported batchhub before JupyterHub's application, keeps the
same check at the first spawn.
"""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable, Coroutine
from typing import Any

from .jobs import ConfigError

_MARK = "_batchhub_checks_spawner"


def check_when_hub_starts(spawner_base: type[Any]) -> None:
    """Make a starting hub check its spawner class first (idempotent)."""
    app_module = sys.modules.get("jupyterhub.app")  # never import the hub where none runs
    hub_class = getattr(app_module, "JupyterHub", None)
    original: Callable[..., Coroutine[Any, Any, Any]] | None = getattr(hub_class, "init_spawners", None)
    if original is None or getattr(original, _MARK, False):
        return

    @functools.wraps(original)
    async def init_spawners(app: Any, *args: Any, **kwargs: Any) -> Any:
        check_hub(app, spawner_base)
        return await original(app, *args, **kwargs)

    setattr(init_spawners, _MARK, True)
    hub_class.init_spawners = init_spawners  # type: ignore[union-attr]


def check_hub(app: Any, spawner_base: type[Any]) -> None:
    """Exit the hub (status 1, the reason logged) if its spawner is a
    ``spawner_base`` whose configuration cannot spawn."""
    spawner_class = app.spawner_class
    if not (isinstance(spawner_class, type) and issubclass(spawner_class, spawner_base)):
        return  # the hub uses another spawner; batchhub is only installed
    try:
        # a spawner with no user reads the config the way each user's will
        spawner_class(config=app.config, log=app.log).check_config()
    except ConfigError as exc:
        app.log.critical("The hub cannot start: %s", exc)
        app.exit(1)  # as JupyterHub itself ends a start on bad config
    except Exception:  # a subclass that needs a user to exist: its first spawn checks instead
        app.log.warning("batchhub could not check %s at start-up", spawner_class.__name__, exc_info=True)
