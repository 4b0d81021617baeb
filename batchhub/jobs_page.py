"""The jobs page in the hub: ``/hub/batchhub/jobs``.

For each of the user's servers: the job's id, backend, queue and node;
the cores, memory and GPUs it was granted; its start, the end of its wall
time and the time left; its state, with the scheduler's reason while it
waits; the last lines of its error and output files; a Stop button.
Admins also see every user's jobs and the orphan report, and each user's
page at ``/hub/batchhub/jobs/<user>``.

Enable it in ``jupyterhub_config.py``::

    from batchhub import jobs_page
    jobs_page.enable(c)

which registers the page with the hub's routes and puts batchhub's
templates first on ``c.JupyterHub.template_paths``: they extend
JupyterHub's own home, spawn-pending and not-running pages to link here.

What it reads, and as whom:

- the hub's own knowledge, in the hub process: each BatchSpawner's job
  controller (lifecycle and the shared monitor's last observation), the
  user's options, the orphan sweepers' last report, and the job events of
  this hub process (``batchhub_job_event``, kept for the last job of each
  server so a failed job stays on the page after JupyterHub clears it);
- the job's files, read AS THE USER through the hub's command runner
  (``tail -c`` of the error and output files, and of ``job.times``, where
  the launcher writes the job's start and wall-time end), never as the
  hub's account, and only for the viewer's own servers or for an admin.

The page is a JupyterHub page: its login (``@web.authenticated``; no
login, no page), its look (``page.html``) and its XSRF handling (the Stop
button uses JupyterHub's own JavaScript API client). Every value is
escaped by the hub's jinja environment (autoescape).
"""

from __future__ import annotations

import asyncio
import logging
import os
import re
import sys
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from . import shared
from .events import JobEvent
from .hookspecs import hookimpl
from .jobs import Command, JobState
from .lifecycle import Lifecycle, Phase
from .units import format_memory, format_runtime

log = logging.getLogger("batchhub.jobs_page")

#: Routes under the hub's prefix: ``/hub/batchhub/jobs`` and ``/hub/batchhub/jobs/<user>``.
ROUTE = r"/batchhub/jobs"
USER_ROUTE = r"/batchhub/jobs/([^/]+)"
#: batchhub's overrides of JupyterHub's pages, and the jobs page itself.
TEMPLATES = os.path.join(os.path.dirname(os.path.abspath(__file__)), "templates", "hub")
#: Bytes of each file's end read, and lines of it shown.
TAIL_BYTES = 4000
TAIL_LINES = 25
#: The launcher's line in ``job.times`` (``batchhub.singleuser.times_line``).
TIMES = re.compile(r"\[batchhub-times start=(\d{1,11}) end=(\d{1,11}|-)(?: nodes=([A-Za-z0-9._,+-]+))?\]")
#: Seconds before the end at which the page warns.
WARN_SECONDS = 600
#: Seconds each read of a job's file may take (a slow home file system).
READ_TIMEOUT = 10

PHASE_WORDS = {
    Phase.IDLE: "not started",
    Phase.SUBMITTING: "submitting",
    Phase.QUEUED: "waiting in the queue",
    Phase.STARTING: "starting",
    Phase.READY: "running",
    Phase.STOPPING: "stopping",
    Phase.STOPPED: "ended",
    Phase.FAILED: "failed",
}


# --- what the hub process saw of each server's last job ------------------------
@dataclass
class LastJob:
    """The last job of one server, from this hub process's job events."""

    job_id: str
    backend: str
    submitted: float
    started: float | None = None
    failed: str = ""
    ended: float = 0.0


#: (user, server) -> its last job, fed by ``batchhub_job_event``.
LAST_JOBS: dict[tuple[str, str], LastJob] = {}


@hookimpl
def batchhub_job_event(event: JobEvent) -> None:
    key = (event.username, event.server_name)
    last = LAST_JOBS.get(key)
    if event.job_id is None:
        return
    if last is None or last.job_id != event.job_id:
        last = LAST_JOBS[key] = LastJob(event.job_id, event.backend, event.time)
    if last.started is None and (event.state == JobState.RUNNING.name or event.kind == "ready"):
        last.started = event.time
    if event.kind == "failed":
        last.failed = event.message
    if event.kind in ("failed", "stopped", "cancelled"):
        last.ended = event.time


# --- one server as the page shows it ----------------------------------------------
@dataclass
class ServerView:
    user: str
    server: str
    backend: str
    job_id: str | None
    phase: str
    state: str
    native_state: str = ""
    reason: str = ""
    nodes: list[str] = field(default_factory=list)
    queue: str = ""
    project: str = ""
    cores: str = ""
    memory: str = ""
    gpus: str = ""
    walltime: str = ""
    walltime_s: int = 0
    submitted: str = ""
    started: str = ""
    ended: str = ""
    ends: str = ""
    left: str = ""
    ends_at: int | None = None
    warn: bool = False
    failure: str = ""
    active: bool = False
    ready: bool = False
    url: str = ""
    error_path: str = ""
    output_path: str = ""
    error_tail: str | None = None
    output_tail: str | None = None
    problem: str = ""

    @property
    def label(self) -> str:
        return self.server or "default"

    @property
    def anchor(self) -> str:
        """The id of this server's section (``not_running.html`` links to it)."""
        return f"server-{self.user}--{self.label}"


def utc(epoch: float | None) -> str:
    """The time in words, or "" for none (or one no clock could show)."""
    if not epoch or not 0 < epoch < 1e11:  # NaN too: a saved state is not to be trusted
        return ""
    return time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(epoch))


def shown_nodes(nodes: list[str]) -> list[str]:
    """The nodes as the page lists them: ``+N`` (left out of a long list) in words."""
    if nodes and nodes[-1].startswith("+"):
        return [*nodes[:-1], f"and {nodes[-1][1:]} more"]
    return nodes


def time_left(end: float, now: float) -> str:
    """``2 h 5 min``, ``9 min``, ``under a minute``, or ``ended``."""
    left = int(end - now)
    if left <= 0:
        return "ended"
    if left < 60:
        return "under a minute"
    minutes = left // 60
    return f"{minutes // 60} h {minutes % 60} min" if minutes >= 60 else f"{minutes} min"


class LaunchedJob(NamedTuple):
    """What the launcher's line says of the job."""

    start: int
    end: int | None  # the wall time's end; None where no limit is known
    nodes: list[str]  # every node of the job; empty from an older launcher


def parse_times(text: str) -> LaunchedJob | None:
    """The job's start, wall-time end and nodes from the launcher's line."""
    found = TIMES.search(text)
    if found is None:
        return None
    end = None if found.group(2) == "-" else int(found.group(2))
    return LaunchedJob(int(found.group(1)), end, found.group(3).split(",") if found.group(3) else [])


def last_lines(text: str, lines: int = TAIL_LINES) -> str:
    kept = text.splitlines()[-lines:]
    return "\n".join(kept)


def is_batch_spawner(spawner: Any) -> bool:
    return callable(getattr(spawner, "resource_request", None)) and hasattr(spawner, "_controller")


def lifecycle_of(spawner: Any) -> Lifecycle:
    """The server's lifecycle: its controller's, else the saved state's."""
    controller = getattr(spawner, "_controller", None)
    if controller is not None:
        return controller.lifecycle
    saved = getattr(spawner, "_saved_state", None) or {}
    return Lifecycle.from_dict(saved) if saved else Lifecycle()


def spawn_failure(spawner: Any) -> str:
    """JupyterHub's message for the last spawn, when it failed."""
    future = getattr(spawner, "_spawn_future", None)
    if not getattr(spawner, "_failed", False) or future is None or not future.done():
        return ""
    exc = future.exception()
    if exc is None:
        return ""
    return str(getattr(exc, "jupyterhub_message", None) or exc)


def describe(spawner: Any, now: float) -> ServerView | None:
    """What the hub knows of one server's job (no command runs), or
    ``None`` for a server that never had a job in this hub's memory."""
    lc = lifecycle_of(spawner)
    user, server = spawner.user.name, spawner.name
    last = LAST_JOBS.get((user, server))
    if lc.job_id is None and last is None:
        last = remembered_job(spawner)  # ended before this hub process started
        if last is None:
            return None
    if lc.job_id is not None and last is not None and last.job_id != lc.job_id:
        last = None  # a job of an earlier hub process: its events are not ours
    phase = lc.phase
    if lc.job_id is None and last is not None:  # JupyterHub cleared the state after the job ended
        phase = Phase.FAILED if last.failed else Phase.STOPPED
    view = ServerView(
        user=user,
        server=server,
        backend=str(getattr(spawner, "backend", "") or (last.backend if last else "")),
        job_id=lc.job_id or (last.job_id if last else None),
        phase=phase.value,
        state=PHASE_WORDS[phase],
        native_state=lc.native_state,
        active=bool(spawner.active),
        ready=bool(spawner.ready),
    )
    if lc.host:
        view.nodes = [lc.host]
    view.failure = lc.failure or spawn_failure(spawner) or (last.failed if last else "")
    if phase is Phase.QUEUED:
        view.reason = _reason(spawner, lc) or lc.message
    _resources(spawner, view)
    if last is not None:
        view.submitted = utc(last.submitted)
        view.started = utc(last.started)
        view.ended = utc(last.ended) if phase.finished else ""
        if last.started and view.walltime_s:
            view.ends_at = int(last.started + view.walltime_s)
    if view.ready and spawner.server is not None:
        view.url = spawner.user.server_url(server)
    _update_left(view, now)
    return view


def remembered_job(spawner: Any) -> LastJob | None:
    """The server's last job as its saved state remembers it
    (``BatchSpawner.last_job``), or ``None``."""
    saved = getattr(spawner, "last_job", None) or {}
    if not isinstance(saved, dict) or not saved.get("job_id"):
        return None
    ended = saved.get("ended")
    ended = float(ended) if isinstance(ended, (int, float)) and not isinstance(ended, bool) else 0.0
    failure = str(saved.get("failure") or "")
    return LastJob(
        job_id=str(saved["job_id"]),
        backend=str(saved.get("backend") or ""),
        submitted=0.0,  # not known: the page leaves it out
        failed=failure,
        ended=ended,
    )


def _reason(spawner: Any, lc: Lifecycle) -> str:
    """The scheduler's reason from the monitor's last observation."""
    controller = getattr(spawner, "_controller", None)
    tracked = controller.monitor.jobs.get(lc.job_id) if controller is not None and lc.job_id else None
    observation = getattr(tracked, "observation", None)
    return getattr(observation, "reason", "") or ""


def _resources(spawner: Any, view: ServerView) -> None:
    try:
        request = spawner.resource_request()
    except Exception:  # options the form no longer accepts: show none rather than fail the page
        return
    view.cores = str(request.cores)
    view.memory = format_memory(request.memory_mb) if request.memory_mb else "the queue's default"
    view.gpus = str(request.gpus)
    view.queue = request.queue or "the scheduler's default"
    view.project = request.project or ""
    view.walltime = format_runtime(request.runtime_s) if request.runtime_s else "the queue's default"
    view.walltime_s = request.runtime_s or 0


def _update_left(view: ServerView, now: float) -> None:
    if view.ends_at is None:
        return
    view.ends = utc(view.ends_at)
    if view.phase in (Phase.READY.value, Phase.STARTING.value):
        view.left = time_left(view.ends_at, now)
        view.warn = view.ends_at - now <= WARN_SECONDS


# --- the job's files, read as the user ----------------------------------------------
async def read_files(spawner: Any, view: ServerView, now: float) -> None:
    """Fill in the error and output tails and the launcher's times, each
    read as the user through the hub's runner. A file that cannot be read
    (not yet written, an unreachable home) is left out, never an error."""
    if view.phase in (Phase.SUBMITTING.value, Phase.QUEUED.value):
        return  # the job has not run: its files are an earlier job's, or none
    try:
        workdir = spawner.workdir()
    except Exception as exc:  # an account the runner refuses: nothing is read
        view.problem = str(getattr(exc, "jupyterhub_message", None) or exc)
        return
    view.error_path, view.output_path = f"{workdir}/job.err", f"{workdir}/job.out"
    runner = shared.runner(spawner.config, spawner.log)  # the hub's one runner
    user = spawner.user.name
    commands = [
        ("tail", "-c", str(TAIL_BYTES), view.error_path),
        ("tail", "-c", str(TAIL_BYTES), view.output_path),
        ("tail", "-c", "4096", f"{workdir}/job.times"),
    ]
    results = await asyncio.gather(
        *(runner.run(Command(argv, as_user=user, timeout=READ_TIMEOUT)) for argv in commands),
        return_exceptions=True,
    )
    texts = [r.stdout if not isinstance(r, BaseException) and r.ok else None for r in results]
    error, output, times = texts
    view.error_tail = last_lines(error) if error is not None else None
    view.output_tail = last_lines(output) if output is not None else None
    found = parse_times(times or "")
    last = LAST_JOBS.get((view.user, view.server))
    if found is not None and (
        last is None or last.job_id != view.job_id or found.start >= last.submitted - 60
    ):
        # (an earlier job's times, left by a job that died before its launcher, are not)
        view.started = utc(found.start)
        view.ends_at = found.end
        if len(found.nodes) > 1 or not view.nodes:  # one node: the scheduler's name for it stands
            view.nodes = shown_nodes(found.nodes)
        _update_left(view, now)


# --- which servers a viewer sees --------------------------------------------------------
def batch_spawners(users: Iterable[Any], *, remembered: bool = True) -> list[Any]:
    """Every loaded BatchSpawner of ``users``, and those whose last job this
    hub process saw (JupyterHub unloads a server's spawner once it stops
    cleanly; its last job stays on the page), in name order. With
    ``remembered``, also those whose saved state remembers a job that
    ended before this hub process started: loading those costs a spawner
    each, so the every-user table leaves them out."""
    from .spawner import LAST_JOB_KEY

    found = []
    for user in users:
        saved = user.orm_user.orm_spawners
        ended = {server for who, server in LAST_JOBS if who == user.name}
        if remembered:
            ended |= {name for name, orm in saved.items() if LAST_JOB_KEY in (orm.state or {})}
        for name in sorted(set(user.spawners) | (ended & set(saved))):
            spawner = user.spawners[name]
            if is_batch_spawner(spawner):
                found.append(spawner)
    return found


async def server_views(spawners: Iterable[Any], *, read: bool) -> list[ServerView]:
    now = time.time()
    pairs = [(s, v) for s in spawners if (v := _described(s, now)) is not None]
    if read:
        await asyncio.gather(*(_read(s, v, now) for s, v in pairs))
    return [view for _, view in pairs]


def _described(spawner: Any, now: float) -> ServerView | None:
    """``describe``, or ``None`` (logged) for a server it cannot describe:
    one odd server never takes the page down for every other."""
    try:
        return describe(spawner, now)
    except Exception:
        log.exception("the jobs page cannot describe the server of %r", spawner)
        return None


async def _read(spawner: Any, view: ServerView, now: float) -> None:
    try:
        await read_files(spawner, view, now)
    except Exception:
        log.exception("the jobs page cannot read the files of %s's server %r", view.user, view.server)


@dataclass
class OrphanView:
    backend: str
    checked: bool
    interval: float
    orphans: list[Any]
    cancelling: bool


def orphan_report() -> list[OrphanView]:
    """The last orphan pass of each backend's sweeper (no command runs)."""
    from .shared import Shared

    return [
        OrphanView(
            backend=name,
            checked=sweeper.last_report is not None,
            interval=sweeper.interval,
            orphans=list(sweeper.last_report.orphans) if sweeper.last_report else [],
            cancelling=sweeper.cancel_orphans,
        )
        for name, sweeper in sorted(Shared.sweepers.items())
    ]


# --- the handler ---------------------------------------------------------------------------
def _handler_class() -> type:
    from jupyterhub import orm
    from jupyterhub.handlers.base import BaseHandler
    from tornado import web

    class JobsPageHandler(BaseHandler):
        """``GET /hub/batchhub/jobs[/<user>]``: see the module docstring."""

        @web.authenticated
        async def get(self, for_user: str | None = None) -> None:
            viewer = self.current_user
            is_admin = bool(getattr(viewer, "admin", False))
            if for_user is not None and for_user != viewer.name:
                if not is_admin:
                    raise web.HTTPError(403, "Only admins see other users' jobs.")
                subject = self.find_user(for_user)
                if subject is None:
                    raise web.HTTPError(404, f"No such user: {for_user}")
            else:
                subject = viewer
            mine = await server_views(batch_spawners([subject]), read=True)
            everyone: list[ServerView] = []
            orphans: list[OrphanView] = []
            if is_admin and for_user is None:
                users = [self.users[orm_user] for orm_user in self.db.query(orm.User)]
                everyone = await server_views(batch_spawners(users, remembered=False), read=False)
                orphans = orphan_report()
            html = await self.render_template(
                "batchhub-jobs.html",
                subject=subject,
                servers=mine,
                everyone=everyone,
                orphans=orphans,
                is_admin=is_admin,
                for_other=subject is not viewer,
                now=utc(time.time()),
                warn_minutes=WARN_SECONDS // 60,
            )
            self.finish(html)

    return JobsPageHandler


def register() -> None:
    """Add the page to JupyterHub's routes (idempotent). The hub reads
    them when it builds its web application, after loading its config."""
    from jupyterhub import handlers

    if not any(route[0] == ROUTE for route in handlers.default_handlers):
        handler = _handler_class()
        handlers.default_handlers.extend([(ROUTE, handler), (USER_ROUTE, handler)])
    from .plugins import get_registry

    registry = get_registry()
    if registry.pm.get_plugin("batchhub.jobs_page") is None:
        registry.register(sys.modules[__name__], name="batchhub.jobs_page")


def enable(c: Any) -> None:
    """Enable the jobs page in a ``jupyterhub_config.py``: ``enable(c)``,
    after any ``c.JupyterHub.template_paths`` of the site's own.

    Registers the page and adds batchhub's page templates after the
    site's own on ``c.JupyterHub.template_paths``: a site's own
    ``home.html``, ``spawn_pending.html`` or ``not_running.html`` wins,
    and can link to ``{{ base_url }}batchhub/jobs`` itself."""
    register()
    hub = c.JupyterHub
    paths = hub.template_paths if "template_paths" in hub else []
    paths = [path for path in (paths if isinstance(paths, list) else []) if path != TEMPLATES]
    hub.template_paths = [*paths, TEMPLATES]
