"""``BatchSpawner``: JupyterHub's side of batchhub.

It turns a spawn into a batch job and back: validates the user's options,
builds the ``JobSpec``, lets site plugins adjust it, renders the job
script, writes the server token to a file only the user can read, submits
through the job controller and reports progress until the job's launcher
reports its port. Everything scheduler-specific lives in the backend
chosen by ``c.BatchSpawner.backend``.
"""

from __future__ import annotations

import dataclasses
import html
import os
import pwd
import secrets
import time
from collections.abc import AsyncIterator
from typing import Any

import jupyterhub
from jupyterhub import orm
from jupyterhub.spawner import Spawner
from sqlalchemy.orm import object_session
from traitlets import Any as AnyTrait
from traitlets import Bool, CaselessStrEnum, Float, Int, Unicode, default

from . import adopt, options, readiness, resources, shared, template, workdir
from . import form as options_form
from .backend import Backend
from .callback import Refusal  # importing it registers the port-report route with the hub
from .controller import JobController, SpawnFailed
from .events import JobEvent
from .free import for_spawner as free_for_form
from .hub_compat import HUB_MAJOR, SpawnException
from .jobs import BatchhubError, Command, ConfigError, JobSpec, ResourceRequest, SubmitError
from .lifecycle import Phase
from .plugins import get_registry
from .poller import ASK
from .progress import SpawnProgress
from .runner import AccountRefused, CommandRunner
from .shared import Shared as _Shared  # noqa: F401  (the old name, used by batchhub.testing and bench)
from .startup_check import check_when_hub_starts
from .workdir import NAME_MAX, server_dir_name

#: The key of the last finished job in a server's saved state (``last_job``).
LAST_JOB_KEY = "batchhub_last_job"
#: Job events that mean the job has ended.
ENDED_KINDS = ("stopped", "failed", "cancelled")

#: Deprecated BatchSpawner options and the JobMonitor trait each one sets.
LEGACY_MONITOR_OPTIONS = {
    "monitor_interval": "interval",
    "monitor_fast_interval": "fast_interval",
    "monitor_lost_after": "lost_after",
}


def _only(request: ResourceRequest, field: str) -> ResourceRequest:
    """``request`` with only ``field`` of the names kept."""
    return dataclasses.replace(request, **{f: None for f in ("queue", "project") if f != field})


class BatchSpawner(Spawner):
    """Starts each server as a batch job through a batchhub backend."""

    backend = Unicode(
        "",
        help="Name of the scheduler backend, required: one an installed plugin registers "
        "(`batchhub backends` lists them), e.g. c.BatchSpawner.backend = 'slurm'. The hub refuses "
        "to start without one. Configure the backend on its own class, e.g. c.SGEBackend.pe = 'smp'.",
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

    monitor_interval = Float(None, allow_none=True, help="Deprecated: use c.JobMonitor.interval.").tag(
        config=True
    )
    monitor_fast_interval = Float(
        None, allow_none=True, help="Deprecated: use c.JobMonitor.fast_interval."
    ).tag(config=True)
    monitor_lost_after = Int(None, allow_none=True, help="Deprecated: use c.JobMonitor.lost_after.").tag(
        config=True
    )

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

    timeout_margin = Float(
        10.0,
        help="Seconds before JupyterHub's start_timeout (both counted from the call of start()) "
        "at which batchhub gives up a spawn whose job is still queued or starting: it cancels the "
        "job and tells the user how long it waited and why, instead of JupyterHub failing the "
        "spawn with a blank message. Half of start_timeout at most.",
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
        self._progress = SpawnProgress()
        #: This start's own id: in its job's name and its token file's name.
        self._submission = secrets.token_hex(4)
        #: Word for the user about how the last server ended (a hub restart
        #: cancelled its start), shown atop the form until the next start.
        self._notice = ""
        #: The last finished job (its id, how it ended), kept across stops
        #: and hub restarts for the jobs page; see ``last_job``.
        self._last_job: dict[str, Any] = {}
        self._ended_at: float | None = None  # when this process saw the job end

    @property
    def last_job(self) -> dict[str, Any]:
        """The server's last finished job: ``job_id``, ``backend``,
        ``failure`` ("" when it ended cleanly), ``message`` and ``ended``
        (seconds since the epoch); empty before any. Saved with the
        server's state, so it outlives the hub process that saw it end."""
        return dict(self._last_job)

    @property
    def backend_impl(self) -> Backend:
        return self.controller.backend

    def check_config(self) -> type[Backend]:
        """The configured backend's class, or a ``ConfigError`` saying what
        to set. Run when the hub starts (``batchhub.startup_check``) and
        again by the first spawn."""
        registry = get_registry()
        if not self.backend:
            installed = ", ".join(registry.backends) or "none"
            raise ConfigError(
                f"No batchhub backend is set. Installed backends: {installed}. Set one in "
                "jupyterhub_config.py: c.BatchSpawner.backend = '<name>'."
            )
        backend_class = registry.backend_class(self.backend)
        if self.token_delivery == "env" and not backend_class.private_job_env:
            raise ConfigError(
                f"c.BatchSpawner.token_delivery = 'env' is refused for the {self.backend!r} backend: "
                "it does not declare private job environments (any user may read a job's "
                "environment there). Use 'file'."
            )
        return backend_class

    @property
    def controller(self) -> JobController:
        if self._controller is None:
            try:
                backend_class = self.check_config()
            except ConfigError as exc:  # the hub checked at start-up; its config may have changed since
                raise self._config_failure(exc) from None
            backend = backend_class(config=self.config, log=self.log)
            legacy = {
                trait: (f"c.BatchSpawner.{old}", getattr(self, old))
                for old, trait in LEGACY_MONITOR_OPTIONS.items()
                if getattr(self, old) is not None
            }
            self._controller = JobController(
                backend,
                shared.runner(self.config, self.log),
                shared.monitor(backend, self.config, self.log, legacy),
                username=self.user.name,
                server_name=self.name,
                on_event=self._job_event,
                sweeper=shared.sweeper(
                    backend,
                    self.config,
                    self.log,
                    known=self._known_job_ids,
                    interval=self.orphan_check_interval,
                    cancel_orphans=self.cancel_orphans,
                ),
                uncertain_wait=self.uncertain_wait,
            )
            if self._saved_state:
                self._controller.load_state(self._saved_state)
        self._controller.monitor.start()
        if self._controller.sweeper is not None:
            self._controller.sweeper.start()
        return self._controller

    def _config_failure(self, exc: ConfigError) -> SpawnException:
        """The site's configuration is wrong: log it, and tell the user to tell the admins."""
        self.log.error("batchhub configuration error for %s: %s", self._log_name, exc)
        return SpawnException(
            f"The hub's batch configuration is wrong, please tell the admins: {exc}", reason="config"
        )

    def _known_job_ids(self) -> set[str]:
        """Ids of the jobs some server of this hub knows: tracked by a
        monitor, or saved in the hub's database (a stopped server's state
        keeps none). The orphan sweep leaves these alone."""
        ids = shared.tracked_job_ids()
        session = object_session(self.orm_spawner) if self.orm_spawner is not None else None
        if session is not None:
            for (state,) in session.query(orm.Spawner.state):
                job_id = adopt.saved_job_id(state)
                if job_id:
                    ids.add(job_id)
        return ids

    def _job_event(self, event: JobEvent) -> None:
        self.log.info(
            "batchhub %s job %s for %s: %s", event.kind, event.job_id, self._log_name, event.message
        )
        self._progress.note_event(event, self.controller.lifecycle)
        if event.kind in ENDED_KINDS:
            self._ended_at = event.time
        get_registry().hook.batchhub_job_event(event=event)

    # --- the form -----------------------------------------------------
    async def _render_options_form(self, spawner: Spawner) -> str:
        refusal = options_form.take_refusal(self.user.name)  # the values a refused request sent
        free = await free_for_form(self)  # what is free now per queue: the hub's cached answer
        values = self.user_options or {}
        form = options_form.render_form(self.resource_form, values, refusal=refusal, free=free)
        if self._notice:
            notice = f'<div class="alert alert-warning" role="alert">{html.escape(self._notice)}</div>\n'
            form = notice + form
        return form

    def options_from_form(self, formdata: dict[str, list[str]]) -> dict[str, Any]:
        # a name the backend cannot take is refused here too, so the form comes
        # back with the values kept and the field marked, as for its own refusals
        return options_form.checked_options(
            self.resource_form, formdata, self.user.name, check=self._backend_objection
        )

    async def run_auth_state_hook(self, auth_state: Any) -> Any:
        # JupyterHub runs this before it shows the form and before a start:
        # the user's mail address (c.ResourceForm.email_from_auth) comes from here
        await self.resource_form.learn_user(self.user.name, auth_state)
        return await super().run_auth_state_hook(auth_state)

    def accepted_request(self) -> ResourceRequest:
        """The validated request, also checked against the backend's own
        rules (a queue or project name its scheduler cannot take), so such a
        value is refused with 400 before the spawn rather than failing it."""
        request = self.resource_request()
        objection = self._backend_objection(request)
        if objection is not None:
            raise SpawnException(
                f"Your resource request was refused: {objection}", reason="bad_options", status_code=400
            )
        return request

    def _backend_objection(self, request: ResourceRequest) -> options.OptionsError | None:
        """The backend's refusal of ``request``, naming the field as the
        form's own refusals do; ``None`` when it takes the request."""
        problem = self._backend_refuses(request)
        if not problem:
            return None
        field = next((f for f in ("queue", "project") if self._backend_refuses(_only(request, f))), "options")
        return options.OptionsError(field, getattr(request, field, None), problem, f"{field}: {problem}")

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
            template.check_spec(backend, probe)  # the core's own rules first, as at render time
            backend.directives(probe)
        except SubmitError as exc:
            return str(exc)
        except ConfigError:
            pass  # the site's configuration, not the request: start() says so to the user and the log
        return ""

    def resource_request(self) -> ResourceRequest:
        """The validated request from ``user_options`` (form, ``opt-``
        query parameters or REST body alike)."""
        user_options = self.user_options or {}
        if "user_options" in user_options and HUB_MAJOR < 6:
            # a request written for JupyterHub 6 ({"user_options": {...}}) sent to 5
            raise SpawnException(
                f"Your resource request was refused: JupyterHub {jupyterhub.__version__} takes the "
                'options as the request body itself, not inside "user_options".',
                reason="bad_options",
                status_code=400,
            )
        try:
            return options.parse_options(self.resource_form, user_options)
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
        return workdir.job_env(self.get_env())

    def token_path(self, workdir_path: str) -> str:
        """This submission's own token file."""
        return workdir.token_path(workdir_path, self._submission)

    def _token_file(self, workdir_path: str) -> str | None:
        return None if self.token_delivery == "env" else self.token_path(workdir_path)

    def launcher_argv(self, workdir_path: str) -> list[str]:
        """How the job script starts the launcher (the server command follows)."""
        # the server reports its port for as long as the spawn may wait
        report_timeout = max(30.0, float(self.start_timeout))
        return workdir.launcher_argv(self.launcher, self._token_file(workdir_path), report_timeout)

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
        runner = self.controller.runner
        prepare = workdir.prepare_command(spec, self.launcher, self._token_file(spec.workdir), self.api_token)
        result = await runner.run(prepare)
        if result.ok:
            await runner.run(workdir.clean_command(spec))
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

    def wait_budget(self, started: float) -> tuple[float, float]:
        """Seconds left to wait for the server, and for the cancel at the
        end, so that batchhub's word reaches the user before JupyterHub's
        start_timeout (counted since ``started``, monotonic) fires."""
        timeout = float(self.start_timeout)
        margin = max(0.0, min(self.timeout_margin, timeout / 2))
        return max(0.0, timeout - margin - (time.monotonic() - started)), margin / 2

    async def start(self) -> tuple[str, int]:
        started = time.monotonic()
        self._submission = secrets.token_hex(4)
        self._progress.reset()
        self._notice = ""  # told once; this start is the user's answer to it
        self._progress.note(Phase.SUBMITTING, "Checking your resource request")
        controller = self.controller
        request = self.resource_request()
        try:
            spec = self.build_spec(request)
            script = self.render_script(spec)
        except SubmitError as exc:  # a site plugin refused the job
            raise SpawnException(str(exc), reason="refused", status_code=400) from None
        except ConfigError as exc:
            raise self._config_failure(exc) from None
        await self.prepare_workdir(spec)
        self._progress.note(
            Phase.SUBMITTING, f"Submitting a job for {options.describe_request(request)} to {self.backend}"
        )
        try:
            await controller.submit(spec, script, self.submit_env())
        except SpawnFailed as exc:
            raise SpawnException(str(exc), reason="rejected") from None
        self._save_state_now()
        try:
            wait, cancel_wait = self.wait_budget(started)
            host, port = await controller.wait_ready(wait, cancel_wait=cancel_wait)
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

    def poll_now(self) -> int | object | None:
        """``poll()`` without awaiting, for the hub's poller: ``ASK`` when
        only ``poll()`` can answer (it has more to do than read the cache)."""
        controller = self.controller
        if controller.lifecycle.phase.waiting and controller.adopted:
            return ASK
        return controller.poll_now()

    def start_polling(self) -> None:
        """JupyterHub's periodic polling, through the hub's one poller for
        this interval instead of a timer per spawner (see batchhub/poller.py)."""
        if self.poll_interval <= 0:
            super().start_polling()  # logs that it does not poll
            return
        self.stop_polling()
        shared.poller(float(self.poll_interval)).join(self)

    def stop_polling(self) -> None:
        super().stop_polling()
        for hub_poller in shared.Shared.pollers.values():
            hub_poller.leave(self)

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
        if self._last_job:
            state[LAST_JOB_KEY] = self._last_job
        return state

    def load_state(self, state: dict[str, Any]) -> None:
        super().load_state(state)
        self._saved_state = dict(state.get("batchhub") or {}) or self._adopted_state(state)
        self._notice = str(state.get("batchhub_notice") or "")
        last = state.get(LAST_JOB_KEY)
        self._last_job = dict(last) if isinstance(last, dict) else self._last_job
        if self._controller is not None:
            self._controller.load_state(self._saved_state)

    def _adopted_state(self, state: dict[str, Any]) -> dict[str, Any]:
        """batchhub's state for a running job that another spawner
        (batchspawner, sgespawner) started and saved, on the configured
        backend: tracked from now on, never submitted again (``batchhub.adopt``)."""
        try:
            adopted = adopt.from_foreign_state(state, self.backend)
        except ValueError as exc:
            self.log.error(
                "batchhub cannot adopt the server of %s: %s; cancel that job by hand", self._log_name, exc
            )
            return {}
        if adopted:
            self.log.info(
                "batchhub: %s for %s, on the %s backend", adopted["message"], self._log_name, self.backend
            )
        return adopted or {}

    def clear_state(self) -> None:
        # the notice outlives the stop that clears the rest: it is for the next visit
        super().clear_state()
        self._saved_state = {}
        if self._controller is not None and self._controller.lifecycle.phase.finished:
            ended = self._controller.lifecycle
            if ended.job_id is not None and ended.job_id != self._last_job.get("job_id"):
                self._last_job = {
                    "job_id": ended.job_id,
                    "backend": self.backend,
                    "failure": ended.failure if ended.phase is Phase.FAILED else "",
                    "message": ended.message,
                    "ended": self._ended_at or time.time(),
                }
            self._ended_at = None
            self._controller.lifecycle = type(ended)()

    # --- progress -----------------------------------------------------
    async def progress(self) -> AsyncIterator[dict[str, Any]]:  # type: ignore[override]
        """Events for the spawn page: submitted (job id), queued with the
        scheduler's reason, running on a host, waiting for the server, ready."""

        def waiting() -> bool:
            lc = self._controller.lifecycle if self._controller is not None else None
            return lc is not None and (lc.phase.waiting or self._spawn_pending)

        def live() -> str:
            return self._controller.queue_status() if self._controller is not None else ""

        async for step in self._progress.stream(waiting, live):
            yield step


# a hub that cannot spawn stops as it starts, not at its users' first spawn
check_when_hub_starts(BatchSpawner)
