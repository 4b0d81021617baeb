"""``BatchSpawner``: JupyterHub's side of batchhub.

It turns a spawn into a batch job and back: validates the user's options,
builds the ``JobSpec``, lets site plugins adjust it, renders the job
script, writes the server token to a file only the user can read, submits
through the job controller and reports progress until the job's launcher
reports its port. Everything scheduler-specific lives in the backend
chosen by ``c.BatchSpawner.backend``.
"""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
import html
import os
import pwd
import re
import secrets
from collections.abc import AsyncIterator
from typing import Any

import jupyterhub
from jupyterhub import orm
from jupyterhub.spawner import Spawner
from sqlalchemy.orm import object_session
from tornado.web import HTTPError
from traitlets import Any as AnyTrait
from traitlets import Bool, CaselessStrEnum, Float, Int, Unicode, default

from . import form as options_form
from . import readiness, resources, template
from .aio import wait_event
from .backend import Backend
from .callback import Refusal  # importing it registers the port-report route with the hub
from .controller import JobController, SpawnFailed
from .events import JobEvent
from .jobs import BatchhubError, Command, ConfigError, JobSpec, ResourceRequest, SubmitError
from .lifecycle import Phase
from .monitor import JobMonitor
from .plugins import get_registry
from .runner import AccountRefused, CommandRunner
from .sweeper import Sweeper

try:  # JupyterHub >= 6: a clean failure page with the message, no traceback
    from jupyterhub.spawner import SpawnException as _HubSpawnException
except ImportError:  # JupyterHub 5

    class _HubSpawnException(HTTPError):  # type: ignore[no-redef]
        def __init__(self, message: str, *, reason: str = "", status_code: int = 400, **_: Any) -> None:
            super().__init__(status_code, log_message=message, reason=reason or None)


class SpawnException(_HubSpawnException):
    """A spawn failure whose message the user sees exactly as written (the
    hub shows ``jupyterhub_message`` on the spawn page and in the progress
    stream, instead of the exception's repr)."""

    def __init__(self, message: str, *, reason: str, status_code: int = 500, **kw: Any) -> None:
        super().__init__(message, reason=reason, status_code=status_code, **kw)
        self.jupyterhub_message = message


_HUB_MAJOR = int(jupyterhub.__version__.split(".")[0])

#: Variables from JupyterHub's get_env() that are secrets: they reach the
#: job only through the private token file, never its environment or script.
SECRET_ENV = frozenset({"JUPYTERHUB_API_TOKEN", "JPY_API_TOKEN"})

#: Progress percentages by phase, for the spawn page's bar.
PROGRESS = {Phase.SUBMITTING: 10, Phase.QUEUED: 30, Phase.STARTING: 60, Phase.READY: 95}


#: Characters a server's directory name may hold as they are.
_PLAIN_NAME = re.compile(r"[A-Za-z0-9_.-]+")
#: Longest file name most file systems take (bytes; the names here are ASCII).
NAME_MAX = 255


def server_dir_name(name: str) -> str:
    """The ``{server}`` of ``workdir_template``: ``default`` for the default
    server, a named server's own name where it is a plain file name, else
    the name escaped plus a digest of it.

    Injective: two different server names never share a directory. A plain
    name (letters, digits, ``_ . -``; not ``default``, not starting with a
    dot) is its own directory. Any other name becomes its UTF-8 bytes with
    each byte outside that set (and a leading dot) written ``+hh``, then
    ``-+`` and 8 hex digits of its SHA-256: a plain name never holds ``+``
    and the escaping can be undone, so no two names meet ("a b" is
    ``a+20b-+c8687a08``, the default-named one ``default-+37a8eec1``), and
    no name reaches outside (".." or "a/b", which JupyterHub 5 allows)."""
    if not name:
        return "default"
    if _PLAIN_NAME.fullmatch(name) and name != "default" and not name.startswith("."):
        return name
    raw = name.encode("utf-8", "surrogatepass")
    kept = [bool(_PLAIN_NAME.fullmatch(chr(byte))) for byte in raw]
    kept[0] = kept[0] and raw[:1] != b"."  # never a hidden directory, never ".."
    body = "".join(chr(byte) if keep else f"+{byte:02x}" for byte, keep in zip(raw, kept, strict=True))
    return f"{body}-+{hashlib.sha256(raw).hexdigest()[:8]}"


def _only(request: ResourceRequest, field: str) -> ResourceRequest:
    """``request`` with only ``field`` of the names kept."""
    return dataclasses.replace(request, **{f: None for f in ("queue", "project") if f != field})


class _Shared:
    """Per-hub singletons: one runner, and one monitor and one sweeper per backend."""

    runner: CommandRunner | None = None
    monitors: dict[str, JobMonitor] = {}
    sweepers: dict[str, Sweeper] = {}


class BatchSpawner(Spawner):
    """Starts each server as a batch job through a batchhub backend."""

    backend = Unicode(
        "fake",
        help="Name of the scheduler backend: 'sge', 'slurm', 'fake' or one a plugin registers "
        "(`batchhub backends` lists them). Configure the backend on its own class, e.g. "
        "c.SGEBackend.pe = 'smp'.",
    ).tag(config=True)

    job_template = Unicode(
        "",
        help="Job-script template (jinja2) replacing the backend's default: a path to a file, "
        "or the template text itself. Values must go through the `shquote` filter.",
    ).tag(config=True)

    job_prologue = Unicode(
        "",
        help="Shell lines run in the job before the server starts, e.g. 'module load python'. "
        "Admin text: it is not quoted.",
    ).tag(config=True)

    job_epilogue = Unicode("", help="Shell lines run in the job after the server exits.").tag(config=True)

    workdir_template = Unicode(
        "{home}/.batchhub/{server}",
        help="Private per-server directory (made 0700 by the user before each submission) that holds "
        "the token file and the job's output and error files. {home} is the user's home directory, "
        "{username} the user, {server} the server's name ('default' for the default server; a named "
        "server whose name is 'default' or is not a plain file name gets it escaped, +hh for each "
        "other byte, and a digest appended, so no two servers share a directory). "
        "It must be on a file system the compute nodes share.",
    ).tag(config=True)

    launcher = Unicode(
        "batchhub-singleuser",
        help="The launcher the job runs (found on the node's PATH, or an absolute path). It reads "
        "the token file and runs the single-user server, which binds a port the kernel picks and "
        "reports it to the hub once it listens on it (batchhub's server extension); the server "
        "must run in the same Python environment as the launcher.",
    ).tag(config=True)

    host_template = Unicode(
        "{host}",
        help="How the hub reaches a node the scheduler names, e.g. '{host}.ib.cluster.example.ac.uk' "
        "for an interconnect name. See also host_resolver.",
    ).tag(config=True)

    host_resolver = AnyTrait(
        None,
        allow_none=True,
        help="Optional callable (spawner, host) -> address, used instead of host_template.",
    ).tag(config=True)

    token_delivery = CaselessStrEnum(
        ["file", "env"],
        default_value="file",
        help="How the server's API token reaches the job: 'file' (a 0600 file in the private "
        "directory, written as the user before submission, read and deleted by the launcher; "
        "always safe) or 'env' (handed to the submit command's environment, never its command "
        "line or the script, for a scheduler that copies the submitter's environment into the "
        "job and keeps it private, as Slurm does; refused for backends that do not declare "
        "private job environments, such as Grid Engine, whose job environments every user can "
        "read). With a sudo prefix, 'env' needs env_keep for JUPYTERHUB_API_TOKEN.",
    ).tag(config=True)

    monitor_interval = Float(
        30.0, help="Seconds between the shared status queries while no spawn is waiting."
    ).tag(config=True)
    monitor_fast_interval = Float(
        2.0, help="Seconds between status queries while some spawn is waiting for its job."
    ).tag(config=True)
    monitor_lost_after = Int(
        3,
        help="Consecutive successful status answers without a job before it counts as lost "
        "(failed queries never count).",
    ).tag(config=True)

    report_hold = Float(
        8.0,
        help="Seconds a port report waits for the scheduler to say the job runs before the hub "
        "answers 503 (the launcher then retries). A report is only taken from a running job.",
    ).tag(config=True)

    check_report_host = Bool(
        True,
        help="Take a port report only from an address of the host the scheduler runs the job on "
        "(after host_template / host_resolver). Turn off only where the hub sees the nodes' "
        "requests through address translation.",
    ).tag(config=True)

    confirm_ready = Bool(
        True,
        help="Before the hub routes a user to a reported port, check that a Jupyter server serving "
        "that user's URL prefix answers there (another user's server answers 404).",
    ).tag(config=True)

    uncertain_wait = Float(
        120.0,
        help="Seconds to look for the job of a submission whose answer was lost (the submit "
        "command timed out or lost its connection, so the job may exist) before the spawn "
        "fails; a job found meanwhile is adopted, one that shows up later is cancelled.",
    ).tag(config=True)

    orphan_check_interval = Float(
        300.0,
        help="Seconds between the hub's checks for orphans: live jobs carrying this hub's tag "
        "(c.Backend.job_name_prefix) that no server of the hub knows. They are logged; see "
        "cancel_orphans. `batchhub jobs --orphans` runs the same check by hand.",
    ).tag(config=True)

    cancel_orphans = Bool(
        False,
        help="Cancel orphans (seen in two checks in a row) instead of only logging them. Jobs "
        "without the hub's tag are never touched. Give each hub its own "
        "c.Backend.job_name_prefix before turning this on where two hubs share a scheduler.",
    ).tag(config=True)

    stop_timeout = Float(60.0, help="Seconds stop() waits for the scheduler to confirm the job is gone.").tag(
        config=True
    )

    @default("ip")
    def _default_ip(self) -> str:
        return "0.0.0.0"  # the server runs on a compute node, not beside the hub

    @default("start_timeout")
    def _default_start_timeout(self) -> int:
        return 300  # queues take time; the progress page keeps the user informed

    @default("notebook_dir")
    def _default_notebook_dir(self) -> str:
        # the job runs in its private directory; the user's files are at home
        try:
            return pwd.getpwnam(self.user.name).pw_dir
        except (KeyError, AttributeError):
            return ""

    @default("http_timeout")
    def _default_http_timeout(self) -> int:
        return 120

    @default("options_form")
    def _default_options_form(self) -> Any:
        return self._render_options_form

    @default("apply_user_options")
    def _default_apply_user_options(self) -> Any:
        # JupyterHub >= 5.3 calls this before start(): a bad request is
        # refused with 400 before anything runs (start() checks again for
        # older hubs).
        return lambda spawner, user_options: spawner.accepted_request()

    # --- wiring -------------------------------------------------------
    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.resource_form = resources.ResourceForm(parent=self)
        self._controller: JobController | None = None
        self._saved_state: dict[str, Any] = {}
        self._progress_log: list[dict[str, Any]] = []
        self._progress_changed = asyncio.Event()
        #: This start's own id: in its job's name and its token file's name.
        self._submission = secrets.token_hex(4)
        self._noted_running = False
        #: Word for the user about how the last server ended (a hub restart
        #: cancelled its start), shown atop the form until the next start.
        self._notice = ""

    @property
    def backend_impl(self) -> Backend:
        return self.controller.backend

    @property
    def controller(self) -> JobController:
        if self._controller is None:
            registry = get_registry()
            backend = registry.backend_class(self.backend)(config=self.config, log=self.log)
            if _Shared.runner is None:
                _Shared.runner = CommandRunner(config=self.config, log=self.log)
            monitor = _Shared.monitors.get(self.backend)
            if monitor is None:
                monitor = _Shared.monitors[self.backend] = JobMonitor(
                    backend,
                    _Shared.runner,
                    interval=self.monitor_interval,
                    fast_interval=self.monitor_fast_interval,
                    lost_after=self.monitor_lost_after,
                )
            sweeper = _Shared.sweepers.get(self.backend)
            if sweeper is None:
                sweeper = _Shared.sweepers[self.backend] = Sweeper(
                    backend,
                    _Shared.runner,
                    known=self._known_job_ids,
                    interval=self.orphan_check_interval,
                    cancel_orphans=self.cancel_orphans,
                )
            self._controller = JobController(
                backend,
                _Shared.runner,
                monitor,
                username=self.user.name,
                server_name=self.name,
                on_event=self._job_event,
                sweeper=sweeper,
                uncertain_wait=self.uncertain_wait,
            )
            if self._saved_state:
                self._controller.load_state(self._saved_state)
        self._controller.monitor.start()
        if self._controller.sweeper is not None:
            self._controller.sweeper.start()
        return self._controller

    def _known_job_ids(self) -> set[str]:
        """Ids of the jobs some server of this hub knows: tracked by a
        monitor, or saved in the hub's database (a stopped server's state
        keeps none). The orphan sweep leaves these alone."""
        ids = {job_id for monitor in _Shared.monitors.values() for job_id in monitor.jobs}
        session = object_session(self.orm_spawner) if self.orm_spawner is not None else None
        if session is not None:
            for (state,) in session.query(orm.Spawner.state):
                job_id = ((state or {}).get("batchhub") or {}).get("job_id")
                if job_id:
                    ids.add(str(job_id))
        return ids

    def _job_event(self, event: JobEvent) -> None:
        self.log.info(
            "batchhub %s job %s for %s: %s", event.kind, event.job_id, self._log_name, event.message
        )
        lc = self.controller.lifecycle
        if event.kind == "submitted":
            self._note_progress(
                Phase.QUEUED,
                f"Job {event.job_id} submitted to {self.backend}, queued: waiting for the scheduler",
            )
        elif lc.phase is Phase.STARTING and lc.port is None:
            self._note_progress(lc.phase, f"{lc.message}; waiting for the server to start")
        elif lc.phase.waiting or lc.phase is Phase.READY:
            if lc.phase is Phase.READY and not self._noted_running:
                # the port came before the scheduler's word: still say where it runs
                self._note_progress(Phase.STARTING, f"Job {lc.job_id} running on {lc.host}")
            self._note_progress(lc.phase, lc.message)
        get_registry().hook.batchhub_job_event(event=event)

    # --- the form -----------------------------------------------------
    def _render_options_form(self, spawner: Spawner) -> str:
        form = options_form.render_form(self.resource_form, self.user_options or {})
        if self._notice:
            notice = f'<div class="alert alert-warning" role="alert">{html.escape(self._notice)}</div>\n'
            form = notice + form
        return form

    def options_from_form(self, formdata: dict[str, list[str]]) -> dict[str, Any]:
        return resources.options_from_form(self.resource_form, formdata)

    def accepted_request(self) -> ResourceRequest:
        """The validated request, also checked against the backend's own
        rules (a queue or project name its scheduler cannot take), so such a
        value is refused with 400 before the spawn rather than failing it."""
        request = self.resource_request()
        problem = self._backend_refuses(request)
        if problem:
            # name the field, as the form's own refusals do
            field = next(
                (f for f in ("queue", "project") if self._backend_refuses(_only(request, f))), "options"
            )
            raise SpawnException(
                f"Your resource request was refused: {field}: {problem}",
                reason="bad_options",
                status_code=400,
            )
        return request

    def _backend_refuses(self, request: ResourceRequest) -> str:
        """Why the backend refuses ``request`` (its directives), or ""."""
        backend = self.backend_impl
        probe = JobSpec(
            username=self.user.name,
            server_name=self.name,
            job_name=backend.job_name(self.user.name, self.name, "0"),
            resources=request,
            workdir="/nonexistent/probe",
        )
        try:
            backend.directives(probe)
        except SubmitError as exc:
            return str(exc)
        except ConfigError:
            pass  # the site's configuration, not the request: start() says so to the user and the log
        return ""

    def resource_request(self) -> ResourceRequest:
        """The validated request from ``user_options`` (form, ``opt-``
        query parameters or REST body alike)."""
        options = self.user_options or {}
        if "user_options" in options and _HUB_MAJOR < 6:
            # a request written for JupyterHub 6 ({"user_options": {...}}) sent to 5
            raise SpawnException(
                f"Your resource request was refused: JupyterHub {jupyterhub.__version__} takes the "
                'options as the request body itself, not inside "user_options".',
                reason="bad_options",
                status_code=400,
            )
        try:
            return resources.parse_options(self.resource_form, options)
        except BatchhubError as exc:
            raise SpawnException(
                f"Your resource request was refused: {exc}", reason="bad_options", status_code=400
            ) from None

    # --- start --------------------------------------------------------
    def check_account(self) -> pwd.struct_passwd:
        """The user's Unix account, once the runner's rules allow commands
        as it (it exists, it is no system account, not the hub's own).
        ``start()`` checks it through ``workdir()``, before any command."""
        rules = self.controller.runner
        if not isinstance(rules, CommandRunner):  # a test double runs the commands: same rules
            rules = CommandRunner(config=self.config, log=self.log)
        try:
            return rules.check_user(self.user.name)
        except AccountRefused as exc:
            self.log.warning("batchhub refuses a server for %s: %s", self._log_name, exc)
            raise SpawnException(
                f"Your server cannot start: {exc.user_message}.", reason="account", status_code=403
            ) from None

    def run_pre_spawn_hook(self) -> Any:
        # JupyterHub calls this before start(), in the request that asked for the
        # spawn: an account that cannot run a server is refused in the hub's answer
        self.check_account()
        return super().run_pre_spawn_hook()

    def workdir(self) -> str:
        home = self.check_account().pw_dir
        directory = server_dir_name(self.name)
        if len(directory) > NAME_MAX:
            raise SpawnException(
                "This server's name is too long to name its private directory "
                f"({len(directory)} characters once escaped; the most is {NAME_MAX}). "
                "Choose a shorter name, or one of plain letters and digits.",
                reason="server_name",
                status_code=400,
            )
        return self.workdir_template.format(home=home, username=self.user.name, server=directory)

    def job_env(self) -> dict[str, str]:
        """The job's environment, secrets removed (they travel in the token file)."""
        env = {k: v for k, v in self.get_env().items() if k not in SECRET_ENV}
        env.pop("PATH", None)  # the node's own PATH, not the hub's
        return env

    def _check_token_delivery(self) -> None:
        if self.token_delivery == "env" and not getattr(self.backend_impl, "private_job_env", False):
            raise ConfigError(
                f"c.BatchSpawner.token_delivery = 'env' is refused for the {self.backend!r} backend: "
                "its job environments are not private to the job's owner. Use 'file'."
            )

    def token_path(self, workdir: str) -> str:
        """This submission's own token file: a job of an earlier submission
        (one whose answer was lost, say) can never read this one's token."""
        return f"{workdir}/token.{self._submission}"

    def launcher_argv(self, workdir: str) -> list[str]:
        """How the job script starts the launcher (the server command follows)."""
        if self.token_delivery == "env":
            return [self.launcher, "--token-env", *self._report_timeout(), "--"]
        return [self.launcher, "--token-file", self.token_path(workdir), *self._report_timeout(), "--"]

    def _report_timeout(self) -> list[str]:
        # the server keeps trying to report its port as long as the spawn may wait:
        # the hub holds reports (503) while the scheduler cannot confirm the job runs
        return ["--report-timeout", f"{max(30.0, float(self.start_timeout)):g}"]

    def build_spec(self, resources_request: ResourceRequest) -> JobSpec:
        workdir = self.workdir()
        command = [*self.launcher_argv(workdir), *self.cmd, *self.get_args()]
        spec = JobSpec(
            username=self.user.name,
            server_name=self.name,
            job_name=self.backend_impl.job_name(self.user.name, self.name, self._submission),
            resources=resources_request,
            workdir=workdir,
            command=tuple(command),
            env=self.job_env(),
            prologue=self.job_prologue,
            epilogue=self.job_epilogue,
        )
        for result in get_registry().hook.batchhub_prepare_job(spec=spec, spawner=self):
            if result is not None:
                spec = result
        return spec

    def render_script(self, spec: JobSpec) -> str:
        text = self.job_template
        if text and "\n" not in text and os.path.isfile(text):
            text = template.read_template(text)
        return template.render_job_script(self.backend_impl, spec, text or None)

    async def prepare_workdir(self, spec: JobSpec) -> None:
        """Create the private directory as the user and, in file mode, the
        token file in it; the token goes on stdin, never on a command line."""
        # the last job's output and error files go, so a failure shows this job's errors only
        # (earlier submissions' token files go as the new one is written: see the launcher)
        clean = Command(("rm", "-f", spec.output_path, spec.error_path), as_user=self.user.name, timeout=30)
        if self.token_delivery == "env":
            command = Command(("mkdir", "-p", "-m", "0700", spec.workdir), as_user=self.user.name, timeout=30)
        else:
            command = Command(
                (self.launcher, "--write-token-file", self.token_path(spec.workdir)),
                stdin=self.api_token,
                as_user=self.user.name,
                timeout=30,
            )
        result = await self.controller.runner.run(command)
        if result.ok:
            await self.controller.runner.run(clean)
        if not result.ok:
            raise SpawnException(
                "Could not prepare your job's private directory "
                f"({spec.workdir}): {result.describe()}. Ask the admins to check that your home "
                "directory is reachable from the hub.",
                reason="workdir",
            )

    def submit_env(self) -> dict[str, str]:
        """Extra environment for the submit command: the token in env mode."""
        return {"JUPYTERHUB_API_TOKEN": self.api_token} if self.token_delivery == "env" else {}

    async def start(self) -> tuple[str, int]:
        self._submission = secrets.token_hex(4)
        self._progress_log = []
        self._noted_running = False
        self._notice = ""  # told once; this start is the user's answer to it
        self._note_progress(Phase.SUBMITTING, "Checking your resource request")
        controller = self.controller
        request = self.resource_request()
        try:
            self._check_token_delivery()
            spec = self.build_spec(request)
            script = self.render_script(spec)
        except SubmitError as exc:  # a site plugin refused the job
            raise SpawnException(str(exc), reason="refused", status_code=400) from None
        except ConfigError as exc:  # the site's configuration: tell the user to tell the admins
            self.log.error("batchhub configuration error for %s: %s", self._log_name, exc)
            raise SpawnException(
                f"The hub's batch configuration is wrong, please tell the admins: {exc}", reason="config"
            ) from None
        await self.prepare_workdir(spec)
        self._note_progress(
            Phase.SUBMITTING,
            f"Submitting a job for {resources.describe_request(request)} to {self.backend}",
        )
        try:
            await controller.submit(spec, script, self.submit_env())
        except SpawnFailed as exc:
            raise SpawnException(str(exc), reason="rejected") from None
        self._save_state_now()
        try:
            host, port = await controller.wait_ready(self.start_timeout)
        except SpawnFailed as exc:
            raise SpawnException(await self._failure_message(str(exc), spec), reason="job_failed") from None
        self._save_state_now()
        await self.confirm_server(self.resolve_host(host), port)
        return self.resolve_host(host), port

    def _save_state_now(self) -> None:
        """Persist the job id at once: a hub that dies mid-spawn must find
        the job again, not orphan it."""
        if self.orm_spawner is None:
            return
        session = object_session(self.orm_spawner)
        if session is not None:
            self.orm_spawner.state = self.get_state()
            session.commit()

    def resolve_host(self, host: str) -> str:
        if self.host_resolver is not None:
            return str(self.host_resolver(self, host))
        return self.host_template.format(host=host)

    async def _failure_message(self, message: str, spec: JobSpec) -> str:
        tail = await self._error_tail(spec)
        return message + (f" Last lines of the job's error file ({spec.error_path}):\n{tail}" if tail else "")

    async def _error_tail(self, spec: JobSpec, limit: int = 1500) -> str:
        command = Command(("tail", "-c", str(limit), spec.error_path), as_user=self.user.name, timeout=10)
        result = await self.controller.runner.run(command)
        return result.stdout.strip() if result.ok else ""

    async def batchhub_port_report(self, port: int, peer: str = "") -> bool:
        """Called by the port-report endpoint; True when accepted.

        Accepted only once the scheduler says the job runs (the report is
        held a few seconds while the monitor asks; then 503, which the
        launcher retries), and only from the host it runs on."""
        controller = self._controller
        if controller is None or not controller.lifecycle.awaiting_port:
            return False
        lc = controller.lifecycle
        if not await controller.until_running(self.report_hold):
            if not lc.awaiting_port:
                return False
            self.log.warning(
                "batchhub: port report for %s held: job %s not running yet", self._log_name, lc.job_id
            )
            raise Refusal(503, f"the scheduler does not list job {lc.job_id} as running yet; retry shortly")
        assert lc.host is not None
        if self.check_report_host and not await readiness.report_from_host(peer, self.resolve_host(lc.host)):
            self.log.warning(
                "batchhub: port report for %s refused: it came from %s, but job %s runs on %s",
                self._log_name,
                peer,
                lc.job_id,
                lc.host,
            )
            raise Refusal(403, f"the report did not come from the host job {lc.job_id} runs on")
        return controller.report_port(port)

    async def confirm_server(self, host: str, port: int) -> None:
        """Fail the spawn unless what listens on ``host:port`` is a Jupyter
        server serving this server's URL prefix."""
        if not self.confirm_ready or self.server is None:
            return
        url = f"http://{host}:{port}{self.server.base_url}api"
        problem = await readiness.serves_prefix(url, min(float(self.http_timeout), 60.0))
        if problem:
            lc = self.controller.lifecycle
            raise SpawnException(
                f"The port your job {lc.job_id} reported ({host}:{port}) is not your server: {problem}. "
                "The job has been cancelled; start your server again, and tell the admins if this repeats.",
                reason="not_your_server",
            )

    # --- poll, stop, state ----------------------------------------------
    async def poll(self) -> int | None:
        controller = self.controller
        lc = controller.lifecycle
        if lc.phase.waiting and controller.adopted:
            # a spawn a previous hub process began and never finished: end it cleanly
            job_id = lc.job_id
            self.log.warning("cancelling job %s of %s, left mid-spawn by a restart", job_id, self._log_name)
            await controller.stop(self.stop_timeout)
            # the user will find a stopped server: keep word of why (in the state) for the next visit
            self._notice = (
                f"The hub restarted while your server was starting; its job {job_id} was cancelled. "
                "Start it again."
            )
            return controller.exit_status()
        return await controller.poll()

    async def stop(self, now: bool = False) -> None:
        await self.controller.stop(0 if now else self.stop_timeout)

    async def get_url(self) -> str:
        lc = self.controller.lifecycle
        if lc.host and lc.port:
            base_url = self.server.base_url if self.server else "/"
            return f"http://{self.resolve_host(lc.host)}:{lc.port}{base_url}"
        return await super().get_url()

    def get_state(self) -> dict[str, Any]:
        state = super().get_state()
        if self._controller is not None:
            state["batchhub"] = self._controller.get_state()
        elif self._saved_state:
            state["batchhub"] = self._saved_state
        if self._notice:
            state["batchhub_notice"] = self._notice
        return state

    def load_state(self, state: dict[str, Any]) -> None:
        super().load_state(state)
        self._saved_state = dict(state.get("batchhub") or {})
        self._notice = str(state.get("batchhub_notice") or "")
        if self._controller is not None:
            self._controller.load_state(self._saved_state)

    def clear_state(self) -> None:
        # the notice outlives the stop that clears the rest: it is for the next visit
        super().clear_state()
        self._saved_state = {}
        if self._controller is not None and self._controller.lifecycle.phase.finished:
            self._controller.lifecycle = type(self._controller.lifecycle)()

    # --- progress -----------------------------------------------------
    def _note_progress(self, phase: Phase, message: str) -> None:
        """Record one step of this spawn for the progress page. Recorded as
        they happen, so a page that connects late still sees each step."""
        log = self._progress_log
        percent = PROGRESS.get(phase, 95)
        if phase is Phase.STARTING and self._controller is not None and self._controller.lifecycle.port:
            percent = 80
        if log and log[-1]["message"] == message:
            return
        percent = max(percent, log[-1]["progress"] if log else 0)  # the bar only climbs
        log.append({"progress": percent, "message": message})
        self._noted_running = self._noted_running or phase is Phase.STARTING
        self._progress_changed.set()

    async def progress(self) -> AsyncIterator[dict[str, Any]]:  # type: ignore[override]
        """Events for the spawn page: submitted (job id), queued with the
        scheduler's reason, running on a host, waiting for the server, ready."""
        sent = 0
        while True:
            self._progress_changed.clear()
            while sent < len(self._progress_log):
                yield dict(self._progress_log[sent])
                sent += 1
            lc = self._controller.lifecycle if self._controller is not None else None
            if lc is None or not (lc.phase.waiting or self._spawn_pending):
                return
            await wait_event(self._progress_changed, 1.0)
