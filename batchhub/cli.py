"""The ``batchhub`` command, for admins.

    batchhub backends                      installed backends, and broken plugins
    batchhub render --backend sge [opts]   print the job script for given options
    batchhub check --backend sge           is the scheduler reachable (one status query)
    batchhub jobs -f CONFIG [--orphans]    the hub's jobs by tag; --orphans: those no server knows
    batchhub demo [--backend NAME] [--config FILE] [--set Class.trait=value ...]
                                           a real local JupyterHub with BatchSpawner

``render`` and ``check`` read the site's ``jupyterhub_config.py`` when
given ``-f``, so they show exactly what the hub would do.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from collections.abc import Sequence
from pathlib import Path

from traitlets.config import Config, ConfigFileNotFound, PyFileConfigLoader

from . import adopt, resources, template
from .jobs import BatchhubError, ConfigError, JobSpec
from .plugins import get_registry
from .runner import CommandRunner
from .site_settings import hub_config, site_settings
from .sweeper import Sweeper


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


def print_table(rows: Sequence[Sequence[str]]) -> None:
    """Rows in columns as wide as their widest cell; the last column as it is."""
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]) - 1)]
    for row in rows:
        cells = [cell.ljust(width) for cell, width in zip(row, widths, strict=False)]
        print("  ".join([*cells, row[-1]]).rstrip())


def cmd_backends(args: argparse.Namespace) -> int:
    registry = get_registry()
    rows = [("NAME", "CLASS", "DESCRIPTION")]
    for name, cls in registry.backends.items():
        doc = (cls.__doc__ or "").strip().splitlines()
        rows.append((name, f"{cls.__module__}.{cls.__qualname__}", doc[0] if doc else ""))
    for name, error in registry.broken.items():
        rows.append((name, "BROKEN", error))
    print_table(rows)
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
    cls = get_registry().backend_class(backend_name)
    local = site_settings(backend_name).local
    if local:  # no scheduler: check the backend as the demo runs it, under the site's own config
        merged = Config(hub_config(backend_name, site_settings(backend_name)))
        merged.merge(config)
        config = merged
    backend = cls(config=config)
    runner = CommandRunner(config=config)
    command = backend.status_command(["1"])
    result = await runner.run(command)
    if result.returncode == 127 and not result.timed_out:
        program = command.argv[0]
        names = [name for name in backend.program_names if backend.program(name) == program]
        where = f"c.{cls.__name__}.programs = {{{names[0]!r}: '/path/to/{names[0]}'}}" if names else ""
        return False, (
            f"{backend_name}: cannot run {program}: it is not installed on this host (or not on PATH); "
            "install the scheduler's client programs here"
            + (f", or give their paths, as in {where}" if where else "")
        )
    try:
        backend.parse_status(result, ["1"])
    except BatchhubError as exc:
        return False, f"{backend_name}: `{command}` failed: {exc}"
    if local:
        return True, (
            f"{backend_name}: runs jobs as local processes, with no scheduler to reach; "
            f"its status query answered in {result.duration:.2f} s"
        )
    return True, f"{backend_name}: the scheduler answered `{command}` in {result.duration:.2f} s"


def cmd_check(args: argparse.Namespace) -> int:
    ok, message = asyncio.run(_check(args.backend, load_config(args.config)))
    print(message)
    return 0 if ok else 1


def known_job_ids(db_url: str) -> set[str]:
    """Job ids recorded in the hub's database (each server's saved state,
    batchhub's or a previous spawner's)."""
    import sqlalchemy

    engine = sqlalchemy.create_engine(db_url)
    try:
        with engine.connect() as db:
            rows = db.execute(sqlalchemy.text("SELECT state FROM spawners")).fetchall()
    except sqlalchemy.exc.SQLAlchemyError as exc:
        raise ConfigError(f"cannot read the hub's database {db_url!r}: {exc.__class__.__name__}") from None
    finally:
        engine.dispose()
    ids = set()
    for (raw,) in rows:
        state = json.loads(raw) if isinstance(raw, (str, bytes)) else raw
        job_id = adopt.saved_job_id(state)  # also a job another spawner started, not yet adopted
        if job_id:
            ids.add(job_id)
    return ids


async def _jobs(args: argparse.Namespace, config: Config) -> int:
    name = args.backend or config.BatchSpawner.get("backend", "")
    if not name:
        raise ConfigError("say which backend: --backend NAME, or c.BatchSpawner.backend in the config file")
    db_url = args.db_url or config.JupyterHub.get("db_url", "sqlite:///jupyterhub.sqlite")
    backend = get_registry().backend_class(name)(config=config)
    runner = CommandRunner(config=config)
    sweeper = Sweeper(backend, runner)
    if not sweeper.can_list:
        raise ConfigError(f"the {name} backend cannot list jobs by name")
    jobs = await sweeper.listing()
    if jobs is None:
        print(f"{name}: the scheduler did not answer the listing; try again", file=sys.stderr)
        return 1
    known = known_job_ids(db_url)
    shown = [job for job in jobs if not (args.orphans and job.job_id in known)]
    rows = [("JOB", "OWNER", "STATE", "KNOWN", "NAME")]
    rows += [(j.job_id, j.owner, j.state.name, "yes" if j.job_id in known else "no", j.name) for j in shown]
    print_table(rows)
    what = (
        "orphans (jobs with this hub's tag that no server knows)"
        if args.orphans
        else "jobs with this hub's tag"
    )
    print(f"{len(shown)} {what}; tag {backend.job_name_prefix}-*")
    if args.cancel:
        cancelled = await sweeper.cancel(shown)
        print(f"cancelled {len(cancelled)}: {' '.join(cancelled)}" if cancelled else "cancelled none")
        return 0 if len(cancelled) == len(shown) else 1
    return 0


def cmd_jobs(args: argparse.Namespace) -> int:
    if args.cancel and not args.orphans:
        raise ConfigError("--cancel cancels orphans only: give --orphans too")
    return asyncio.run(_jobs(args, load_config(args.config)))


def cmd_demo(args: argparse.Namespace) -> int:
    from .demo import parse_set, run_demo

    if args.backend:
        get_registry().backend_class(args.backend)  # an unknown name lists the installed ones
    for path in args.config:
        load_config(path)  # a file that cannot load is reported now, not by the hub
    return run_demo(
        args.backend,
        args.port,
        Path(args.state_dir) if args.state_dir else None,
        backend_config=parse_set(args.set),
        config_files=[Path(path) for path in args.config],
    )


def demo_backend_help() -> str:
    """``--backend``'s help: the installed backends and the demo's default."""
    from .site_settings import default_local_backend

    installed = ", ".join(get_registry().backends) or "none installed"
    try:
        default = f"default {default_local_backend()}, which runs jobs as local processes"
    except BatchhubError:
        default = "no installed backend runs jobs locally: give one"
    return f"the backend: one of {installed} ({default})"


#: What ``batchhub render --help`` shows; it works on a default config.
RENDER_EXAMPLE = "batchhub render --backend slurm cores=2 memory=4G runtime=2h"


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="batchhub", description="JupyterHub servers as batch jobs.")
    sub = p.add_subparsers(dest="command", required=True)

    s = sub.add_parser("backends", help="list installed backends and plugins that failed to load")
    s.set_defaults(func=cmd_backends)

    s = sub.add_parser(
        "render",
        help="print the job script for given options",
        description="Print the job script a user's options would give, as the hub would submit it.",
        epilog=f"example (with the default c.ResourceForm: cores, memory and runtime):\n  {RENDER_EXAMPLE}",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    s.add_argument("--backend", required=True)
    s.add_argument("-f", "--config", help="a jupyterhub_config.py to read options from")
    s.add_argument("--user", default="alice", help="user name for the script (default alice)")
    s.add_argument("--workdir", help="private per-server directory (default ~user/.batchhub/default)")
    s.add_argument("--template", help="a job-script template file replacing the default")
    s.add_argument(
        "option",
        nargs="*",
        help="resource options as name=value: cores=2 memory=4G runtime=2h, and gpus=1 queue=NAME "
        "project=NAME where c.ResourceForm.fields offers them",
    )
    s.set_defaults(func=cmd_render)

    s = sub.add_parser("check", help="run one status query: is the scheduler reachable?")
    s.add_argument("--backend", required=True)
    s.add_argument("-f", "--config", help="a jupyterhub_config.py (runner and backend options)")
    s.set_defaults(func=cmd_check)

    s = sub.add_parser("jobs", help="list the hub's jobs by their tag, or only the orphans")
    s.add_argument("-f", "--config", help="the hub's jupyterhub_config.py (backend, runner, database)")
    s.add_argument("--backend", help="the backend (default: c.BatchSpawner.backend in the config)")
    s.add_argument("--db-url", help="the hub's database (default: c.JupyterHub.db_url, as the hub uses it)")
    s.add_argument("--orphans", action="store_true", help="only jobs that no server of the hub knows")
    s.add_argument("--cancel", action="store_true", help="with --orphans: cancel them, as their owners")
    s.set_defaults(func=cmd_jobs)

    s = sub.add_parser("demo", help="run a local JupyterHub with BatchSpawner on 127.0.0.1")
    s.add_argument("--backend", help=demo_backend_help())
    s.add_argument(
        "--config",
        action="append",
        default=[],
        metavar="FILE",
        help="a Python config file (as jupyterhub_config.py) merged into the demo hub's config; repeatable",
    )
    s.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="Class.trait=value",
        help="one config value, after --config files, e.g. Backend.command_timeout=60; the value "
        "is a Python literal if it parses as one, else a string; repeatable",
    )
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
