"""The ``batchhub`` command, for admins.

    batchhub backends                      installed backends, and broken plugins
    batchhub render --backend sge [opts]   print the job script for given options
    batchhub check --backend sge           is the scheduler reachable (one status query)
    batchhub demo [--backend fake]         a real local JupyterHub with BatchSpawner

``render`` and ``check`` read the site's ``jupyterhub_config.py`` when
given ``-f``, so they show exactly what the hub would do.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Sequence
from pathlib import Path

from traitlets.config import Config, ConfigFileNotFound, PyFileConfigLoader

from . import resources, template
from .jobs import BatchhubError, ConfigError, JobSpec
from .plugins import get_registry
from .runner import CommandRunner


def load_config(path: str | None) -> Config:
    """The site's config file, or a ``ConfigError`` in one line saying why not."""
    if not path:
        return Config()
    file = Path(path)
    try:
        return PyFileConfigLoader(file.name, str(file.parent)).load_config()
    except ConfigFileNotFound:
        message = f"no config file {path!r}: give the path of the hub's jupyterhub_config.py"
        raise ConfigError(message) from None
    except Exception as exc:  # the file is Python: it can fail in any way; the admin needs the gist
        detail = " ".join(str(exc).split())
        raise ConfigError(f"cannot load the config file {path!r}: {type(exc).__name__}: {detail}") from None


def parse_option_args(args: Sequence[str]) -> dict[str, str]:
    """``name=value`` words from the command line, each name once."""
    options: dict[str, str] = {}
    for arg in args:
        name, sep, value = arg.partition("=")
        if not sep:
            raise ConfigError(f"option {arg!r} needs a value, as in {name or 'cores'}=2")
        if not name:
            raise ConfigError(f"option {arg!r} needs a name, as in cores{arg}")
        if name in options:
            raise ConfigError(f"{name} is given twice ({name}={options[name]} and {arg}); give it once")
        options[name] = value
    return options


def cmd_backends(args: argparse.Namespace) -> int:
    registry = get_registry()
    for name, cls in registry.backends.items():
        doc = (cls.__doc__ or "").strip().splitlines()
        print(f"{name:10} {cls.__module__}.{cls.__qualname__}  {doc[0] if doc else ''}")
    for name, error in registry.broken.items():
        print(f"{name:10} BROKEN: {error}")
    return 1 if registry.broken and not registry.backends else 0


def cmd_render(args: argparse.Namespace) -> int:
    options = parse_option_args(args.option)
    config = load_config(args.config)
    backend = get_registry().backend_class(args.backend)(config=config)
    form = resources.ResourceForm(config=config)
    request = resources.parse_options(form, options)
    workdir = args.workdir or f"/home/{args.user}/.batchhub/default"
    spec = JobSpec(
        username=args.user,
        server_name="",
        job_name=backend.job_name(args.user, ""),
        resources=request,
        workdir=workdir,
        command=("batchhub-singleuser", "--token-file", f"{workdir}/token", "--", "jupyterhub-singleuser"),
        env={"JUPYTERHUB_USER": args.user},
    )
    text = template.read_template(args.template) if args.template else None
    sys.stdout.write(template.render_job_script(backend, spec, text))
    return 0


async def _check(backend_name: str, config: Config) -> tuple[bool, str]:
    backend = get_registry().backend_class(backend_name)(config=config)
    runner = CommandRunner(config=config)
    command = backend.status_command(["1"])
    result = await runner.run(command)
    try:
        backend.parse_status(result, ["1"])
    except BatchhubError as exc:
        return False, f"{backend_name}: `{command}` failed: {exc}"
    return True, f"{backend_name}: the scheduler answered `{command}` in {result.duration:.2f} s"


def cmd_check(args: argparse.Namespace) -> int:
    ok, message = asyncio.run(_check(args.backend, load_config(args.config)))
    print(message)
    return 0 if ok else 1


def cmd_demo(args: argparse.Namespace) -> int:
    from .demo import run_demo

    return run_demo(args.backend, args.port, Path(args.state_dir) if args.state_dir else None)


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="batchhub", description="JupyterHub servers as batch jobs.")
    sub = p.add_subparsers(dest="command", required=True)

    s = sub.add_parser("backends", help="list installed backends and plugins that failed to load")
    s.set_defaults(func=cmd_backends)

    s = sub.add_parser("render", help="print the job script for given options")
    s.add_argument("--backend", required=True)
    s.add_argument("-f", "--config", help="a jupyterhub_config.py to read options from")
    s.add_argument("--user", default="alice", help="user name for the script (default alice)")
    s.add_argument("--workdir", help="private per-server directory (default ~user/.batchhub/default)")
    s.add_argument("--template", help="a job-script template file replacing the default")
    s.add_argument("option", nargs="*", help="resource options such as cores=2 memory=4G gpus=1 runtime=2h")
    s.set_defaults(func=cmd_render)

    s = sub.add_parser("check", help="run one status query: is the scheduler reachable?")
    s.add_argument("--backend", required=True)
    s.add_argument("-f", "--config", help="a jupyterhub_config.py (runner and backend options)")
    s.set_defaults(func=cmd_check)

    s = sub.add_parser("demo", help="run a local JupyterHub with BatchSpawner on 127.0.0.1")
    s.add_argument("--backend", default="fake", help="fake (default: jobs are local processes), sge or slurm")
    s.add_argument("--port", type=int, default=8000, help="port on 127.0.0.1 (default 8000)")
    s.add_argument("--state-dir", help="where config, database and logs go (default: a new temporary dir)")
    s.set_defaults(func=cmd_demo)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        return int(args.func(args))
    except BatchhubError as exc:
        print(f"batchhub {args.command}: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
