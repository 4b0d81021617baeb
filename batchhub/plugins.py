"""The one plugin manager: loads the ``batchhub`` entry points and keeps
the registry of backends they register."""

from __future__ import annotations

import logging
from collections.abc import Callable
from importlib.metadata import entry_points

import pluggy

from . import hookspecs, metrics
from .backend import Backend
from .jobs import ConfigError

log = logging.getLogger("batchhub.plugins")

ENTRY_POINT_GROUP = "batchhub"


class BackendPlugin:
    """A plugin that is one backend class: an entry point may name the class
    itself (``pbs = "batchhub_pbs.backend:PBSBackend"``) when registering it
    is all its plugin would do."""

    def __init__(self, backend_class: type[Backend]) -> None:
        self.backend_class = backend_class

    @hookspecs.hookimpl
    def batchhub_register_backends(self, register: Callable[[type], None]) -> None:
        register(self.backend_class)


class PluginRegistry:
    """Loads plugins once and answers which backends exist.

    A plugin that fails to import is recorded in ``broken`` with its error
    and does not take the others down.
    """

    def __init__(self, load_entry_points: bool = True) -> None:
        self.pm = pluggy.PluginManager(ENTRY_POINT_GROUP)
        self.pm.add_hookspecs(hookspecs)
        self.broken: dict[str, str] = {}
        self._backends: dict[str, type[Backend]] | None = None
        if load_entry_points:
            self.pm.register(metrics, name="batchhub.metrics")  # the core's own job-event observer
            self._load_entry_points()

    def _load_entry_points(self) -> None:
        for ep in entry_points(group=ENTRY_POINT_GROUP):
            if self.pm.get_plugin(ep.name) is not None:
                continue
            try:
                loaded = ep.load()
                if isinstance(loaded, type) and issubclass(loaded, Backend):
                    loaded = BackendPlugin(loaded)
                self.pm.register(loaded, name=ep.name)
            except Exception as exc:  # a broken plugin must not stop the hub
                self.broken[ep.name] = f"{type(exc).__name__}: {exc}"
                log.error("batchhub plugin %r (%s) failed to load: %s", ep.name, ep.value, exc)

    def register(self, plugin: object, name: str | None = None) -> None:
        """Register a plugin object directly (tests, site config)."""
        self.pm.register(plugin, name=name)
        self._backends = None

    @property
    def backends(self) -> dict[str, type[Backend]]:
        if self._backends is None:
            found: dict[str, type[Backend]] = {}

            def register(cls: type) -> None:
                if not (isinstance(cls, type) and issubclass(cls, Backend)) or not cls.name:
                    raise ConfigError(f"{cls!r} is not a batchhub Backend subclass with a name")
                if found.get(cls.name, cls) is not cls:
                    raise ConfigError(
                        f"two plugins register a backend named {cls.name!r}: "
                        f"{found[cls.name].__module__} and {cls.__module__}; uninstall one"
                    )
                found[cls.name] = cls

            self.pm.hook.batchhub_register_backends(register=register)
            self._backends = dict(sorted(found.items()))
        return self._backends

    def backend_class(self, name: str) -> type[Backend]:
        """The backend class registered as ``name``, or a ``ConfigError``
        that lists what is installed."""
        try:
            return self.backends[name]
        except KeyError:
            installed = ", ".join(self.backends) or "none"
            hint = ""
            if name in self.broken:
                hint = f" The plugin {name!r} is installed but failed to load: {self.broken[name]}."
            raise ConfigError(
                f"No batchhub backend named {name!r}. Installed backends: {installed}.{hint} "
                "Set c.BatchSpawner.backend to one of them, or install the plugin that provides it."
            ) from None

    @property
    def hook(self) -> pluggy.HookRelay:
        return self.pm.hook


_registry: PluginRegistry | None = None


def get_registry() -> PluginRegistry:
    """The process-wide registry, loaded on first use."""
    global _registry
    if _registry is None:
        _registry = PluginRegistry()
    return _registry
