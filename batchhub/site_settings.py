"""What a backend's plugin knows about running its scheduler on this kind
of machine, for the demo (``batchhub demo``) and the test harness
(``batchhub.testing``): never read by a production hub.

Each plugin answers the ``batchhub_site_settings`` hook for its own
backends with a ``SiteSettings``; the demo and the harness use it to write
a hub's config, to list a scheduler's live jobs, and to say why a
scheduler cannot be used here. The core itself names no scheduler.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from traitlets.config import Config

from .backend import Backend
from .jobs import BatchhubError, Command, CommandResult, ConfigError, TaggedJob
from .plugins import get_registry

#: The environment of every scheduler command the harness runs itself,
#: before the plugin's ``env`` and the command's own.
BASE_ENV = {"PATH": "/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin", "LANG": "C.UTF-8"}


@dataclass(frozen=True)
class SiteSettings:
    """A backend's settings on this kind of machine (all optional).

    ``config``: traitlets config the demo and the harness's hubs set, by
    class name: ``{"PBSBackend": {"programs": {"qsub": "/opt/pbs/bin/qsub"}}}``.
    ``env``: the environment the scheduler's commands need (``{"PBS_EXEC":
    "/opt/pbs"}``); it becomes the backend class's ``command_env`` in those
    hubs, and the harness runs its own commands with it.
    ``hint``: how to get the scheduler running here, shown when it does not
    answer (``"start it with scripts/pbs-up"``).
    ``local``: the backend runs jobs as local processes with no scheduler to
    install; ``batchhub demo`` uses such a backend unless told otherwise.
    ``shared_dirs``: directories the harness creates sticky and
    world-writable (like /tmp) before the hub starts, e.g. a local
    scheduler's spool inside the state directory.
    ``problem``: a check replacing the default one (the backend's
    ``list_command`` must answer); returns why the scheduler cannot be used,
    or ``None``.
    ``job_details``: the commands whose output is everything any user can
    see about one job (``lambda job_id: [["qstat", "-f", job_id]]``), for
    tests that no secret leaks there.
    ``spool_dirs``: where the scheduler keeps job scripts and environments
    on this machine, for the same tests.
    """

    config: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    env: Mapping[str, str] = field(default_factory=dict)
    hint: str = ""
    local: bool = False
    shared_dirs: Sequence[Path] = ()
    problem: Callable[[], str | None] | None = None
    job_details: Callable[[str], Sequence[Sequence[str]]] | None = None
    spool_dirs: Sequence[Path] = ()


def default_bin_dir() -> Path:
    """Where this Python's scripts are (the jobs' programs by default)."""
    return Path(sys.executable).parent


def site_settings(
    backend_name: str, state_dir: Path | None = None, bin_dir: Path | None = None
) -> SiteSettings:
    """The settings the installed plugins give for ``backend_name`` (empty
    when none does). ``ConfigError`` listing the installed backends when
    there is no such backend."""
    registry = get_registry()
    registry.backend_class(backend_name)
    found = registry.hook.batchhub_site_settings(
        backend_name=backend_name,
        state_dir=Path(state_dir) if state_dir else Path(os.devnull),
        bin_dir=Path(bin_dir) if bin_dir else default_bin_dir(),
    )
    return found or SiteSettings()


def local_backends() -> list[str]:
    """The installed backends whose plugin says they run jobs locally."""
    return [name for name in get_registry().backends if site_settings(name).local]


def default_local_backend() -> str:
    """The backend the demo uses when not told: the installed one that runs
    jobs locally with no scheduler."""
    local = local_backends()
    if not local:
        installed = ", ".join(get_registry().backends) or "none"
        raise ConfigError(
            f"no installed backend runs jobs locally without a scheduler; choose one with "
            f"--backend NAME (installed: {installed})"
        )
    return local[0]


def hub_config(
    backend_name: str, settings: SiteSettings, overrides: Mapping[str, Mapping[str, Any]] = ()
) -> dict[str, dict[str, Any]]:
    """The config, by class then trait, of a hub on ``backend_name``: the
    plugin's ``config``, its ``env`` as the backend's ``command_env``, then
    ``overrides`` (a caller's own, trait by trait)."""
    config: dict[str, dict[str, Any]] = {cls: dict(traits) for cls, traits in settings.config.items()}
    if settings.env:
        cls_name = get_registry().backend_class(backend_name).__name__
        config.setdefault(cls_name, {}).setdefault("command_env", dict(settings.env))
    for cls, traits in dict(overrides).items():
        config.setdefault(cls, {}).update(traits)
    return config


def config_lines(config: Mapping[str, Mapping[str, Any]]) -> list[str]:
    """``c.Class.trait = value`` lines for a config file."""
    return [
        f"c.{cls}.{trait} = {value!r}" for cls, traits in config.items() for trait, value in traits.items()
    ]


def make_backend(
    backend_name: str,
    state_dir: Path | None = None,
    config: Mapping[str, Mapping[str, Any]] = (),
    bin_dir: Path | None = None,
) -> tuple[Backend, SiteSettings]:
    """The backend as a hub of the demo or the harness configures it."""
    settings = site_settings(backend_name, state_dir, bin_dir)
    cls = get_registry().backend_class(backend_name)
    return cls(config=Config(hub_config(backend_name, settings, config))), settings


def run_command(argv: Sequence[str], env: Mapping[str, str] = (), timeout: float = 20) -> CommandResult:
    """Run a scheduler command as the current user, as the harness does."""
    return _run(Command(tuple(argv), env=dict(env), timeout=timeout))


def _run(command: Command) -> CommandResult:
    env = {**BASE_ENV, **command.env}
    timeout = command.timeout or 20
    try:
        done = subprocess.run(
            command.argv,
            input=command.stdin,
            capture_output=True,
            text=True,
            timeout=timeout,
            env=env,
            check=False,
        )
    except subprocess.TimeoutExpired:
        return CommandResult(command, -9, timed_out=True)
    except OSError as exc:
        return CommandResult(command, 127, stderr=f"{command.argv[0]}: {exc.strerror or exc}")
    return CommandResult(command, done.returncode, done.stdout, done.stderr)


def list_jobs(backend: Backend) -> list[TaggedJob]:
    """Every live job the scheduler lists, for any user, through the
    backend's own ``list_command`` and ``parse_list``, run as the current
    user. ``ConfigError`` when the backend cannot list jobs;
    ``QueryError`` (from ``parse_list``) when the listing failed."""
    command = backend.list_command()
    if command is None:
        raise ConfigError(
            f"the {backend.name} backend has no list_command, so its jobs cannot be listed: "
            "implement Backend.list_command and parse_list"
        )
    return backend.parse_list(_run(command))


def scheduler_problem(backend_name: str, state_dir: Path | None = None) -> str | None:
    """Why ``backend_name`` cannot be used on this machine, or ``None``:
    its plugin is missing, or its scheduler does not answer (the plugin's
    ``problem`` check, else its ``list_command``), with the plugin's hint."""
    registry = get_registry()
    if backend_name not in registry.backends:
        installed = ", ".join(registry.backends) or "none"
        broken = registry.broken.get(backend_name, f"not installed; installed: {installed}")
        return f"the {backend_name!r} backend plugin ({broken})"
    backend, settings = make_backend(backend_name, state_dir)
    hint = f" ({settings.hint})" if settings.hint else ""
    if settings.problem is not None:
        problem = settings.problem()
        return f"{problem}{hint}" if problem else None
    command = backend.list_command()
    if command is None:
        return None  # nothing to ask without a listing: the first spawn will tell
    path = os.pathsep.join([command.env.get("PATH", ""), BASE_ENV["PATH"]])
    if shutil.which(command.argv[0], path=path) is None:
        return f"the {backend_name} scheduler's {command.argv[0]}{hint}"
    try:
        list_jobs(backend)
    except BatchhubError as exc:
        return f"a {backend_name} scheduler that answers `{' '.join(command.argv)}` ({exc}){hint}"
    return None
