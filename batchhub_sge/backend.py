"""The Grid Engine backend: builds ``qsub``/``qstat``/``qdel`` commands and
reads their answers (see ``parse``). It runs nothing itself.

Status costs the scheduler ONE ``qstat -xml -u OWNER,...`` per monitor
tick, whatever the number of jobs: only the tracked jobs' owners, never a
busy cluster's every job; reasons (``qstat -j ID,ID -xml``) are asked
only for jobs someone waits on. A secret never travels through Grid
Engine: every user can read any job's environment (``qstat -j``) and the
execd spool, so the job script holds no token and no ``-v``/``-V`` is used.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence

from traitlets import Bool, Enum, Unicode

from batchhub.backend import Backend, deprecated_program, wall_clock
from batchhub.free import Free
from batchhub.jobs import (
    CancelOutcome,
    Command,
    CommandResult,
    ConfigError,
    JobSpec,
    JobState,
    Observation,
    SubmitError,
    TaggedJob,
)

from . import parse
from .free import parse_free
from .reasons import plain_reason

#: Values that go into a directive line unquoted: no whitespace, no shell or
#: Grid Engine syntax that could turn one option into two.
_NAME_RE = re.compile(r"^[A-Za-z0-9_.-]+$")
# Paths: no whitespace or control characters, and no ':' (``-o host:path``).
_PATH_RE = re.compile(r"^/[^\s:\x00-\x1f\x7f]*$")


class SGEBackend(Backend):
    """Son of Grid Engine (and its relatives: Univa/Altair GE, OGS)."""

    name = "sge"
    # `qstat -u a,b,...` lists every job of the owners in one call; the cap
    # keeps that owner list under the kernel's 128 KiB limit on one argument
    max_ids_per_query = 3000
    directive_prefix = "#$"
    # Debian's /usr/bin wrappers start a shell per call: point ``programs`` at
    # the real binaries (e.g. /usr/lib/gridengine/qsub, with SGE_ROOT and
    # SGE_CELL in ``command_env``) to make every call faster.
    program_names = ("qsub", "qstat", "qdel", "qacct")
    status_by_owner = True
    unsafe_path_chars = Backend.unsafe_path_chars + ":"  # -o host:path
    cancel_exit_codes = None  # qdel says per job what it did, whatever its exit
    refused_directives = {
        "-clear": "it would drop the hub's own options before it; the job script already starts with -clear",
        **dict.fromkeys(
            ("-V", "-v"),
            "every Grid Engine user can read a job's environment with qstat -j; "
            "set variables in the job template instead",
        ),
    }

    pe = Unicode(
        "smp",
        help="Parallel environment for jobs with more than one core (``-pe smp 4``); "
        "it needs ``allocation_rule $pe_slots`` so all slots are on one node.",
    ).tag(config=True)

    pe_for_one_core = Bool(
        False,
        help="Also request the parallel environment for single-core jobs (``-pe smp 1``). "
        "Off: a one-core job is a plain serial job, which every queue accepts.",
    ).tag(config=True)

    memory_complex = Unicode(
        "rmem",
        help="Complex that carries the memory request: ``rmem`` (booked, as on Sheffield's "
        "ShARC), ``h_vmem`` (enforced), ``mem_free``... Empty: do not request memory.",
    ).tag(config=True)

    memory_per_slot = Bool(
        True,
        help="Grid Engine counts memory complexes per slot: request the job's total "
        "divided by its cores (rounded up to a whole MB). Turn off where the "
        "complex is consumable per JOB.",
    ).tag(config=True)

    gpu_complex = Unicode(
        "gpu",
        help="Consumable complex for GPUs (``-l gpu=2``). Declare it consumable JOB, or "
        "``-pe smp 2 -l gpu=1`` books two GPUs. Empty: refuse jobs asking for GPUs.",
    ).tag(config=True)

    runtime_complex = Unicode(
        "h_rt",
        help="Complex for the wall-clock limit, as HH:MM:SS (``-l h_rt=8:00:00``).",
    ).tag(config=True)

    shell = Unicode(
        "/bin/bash",
        help="Shell Grid Engine runs the job script with (``-S``); the default job "
        "template is written for bash, and values with line breaks (``$'...'``) need "
        "bash, zsh or ksh93.",
    ).tag(config=True)

    verify = Enum(
        ["", "e", "w", "n", "v", "p"],
        default_value="",
        help="qsub's ``-w`` check of a job against the cluster: ``e`` refuses at once a "
        "job no queue can ever run (more GPUs than any node has) instead of leaving "
        "it pending; empty leaves the site's default.",
    ).tag(config=True)

    # old names of ``programs`` entries, still read
    qsub = deprecated_program("qsub")
    qstat = deprecated_program("qstat")
    qdel = deprecated_program("qdel")
    qacct = deprecated_program("qacct")

    # --- job script ------------------------------------------------------
    @property
    def script_shell(self) -> str:
        """The shell Grid Engine runs the job script with (``-S``), whatever
        its ``#!`` line says: the template checks it can read ``$'...'``."""
        return self.shell

    def directives(self, spec: JobSpec) -> list[str]:
        res = spec.resources
        options: list[str] = [
            # qsub merges the site's sge_request, the user's ~/.sge_request and
            # the cwd's .sge_request into every option the hub leaves unset
            # (a 1000-task array, 64 slots, another queue...). -clear drops
            # everything read before it; the script's own options follow.
            "-clear",
            f"-N {spec.job_name}",  # the core checked it (JOB_NAME_RE)
            f"-S {self._admin_path(self.shell, 'c.SGEBackend.shell')}",
            f"-wd {spec.workdir}",  # paths and names: checked by the core (template.check_spec)
            f"-o {spec.output_path}",
            f"-e {spec.error_path}",
        ]
        if res.cores < 1:
            raise SubmitError(f"A job needs at least one core, not {res.cores}.")
        if res.nodes != 1 or res.tasks_per_node != 1:
            raise ConfigError(
                "Grid Engine spreads a job's cores over nodes through its parallel environment, not "
                "nodes and tasks per node: offer pe (c.ResourceForm.pe_choices, e.g. smp and mpi) "
                "instead of nodes and tasks_per_node"
            )
        if res.pe:  # the user's choice among the admin's (c.ResourceForm.pe_choices)
            options.append(f"-pe {self._checked(res.pe, _NAME_RE, 'parallel environment')} {res.cores}")
        elif res.cores > 1 or self.pe_for_one_core:
            options.append(
                f"-pe {self._checked(self.pe, _NAME_RE, 'c.SGEBackend.pe', admin=True)} {res.cores}"
            )
        if res.memory_mb is not None and self.memory_complex:
            if res.memory_mb < 1:
                raise SubmitError(f"Memory must be at least 1 MB, not {res.memory_mb} MB.")
            per = math.ceil(res.memory_mb / res.cores) if self.memory_per_slot else res.memory_mb
            options.append(f"-l {self._complex(self.memory_complex)}={per}M")
        if res.gpus:
            if not self.gpu_complex:
                raise SubmitError("This cluster offers no GPUs through batchhub; ask for 0 GPUs.")
            if res.gpus < 0:
                raise SubmitError(f"GPUs cannot be negative ({res.gpus}).")
            options.append(f"-l {self._complex(self.gpu_complex)}={res.gpus}")
        if res.runtime_s is not None:
            if res.runtime_s < 1:
                raise SubmitError(f"The run time must be positive, not {res.runtime_s} s.")
            options.append(f"-l {self._complex(self.runtime_complex)}={wall_clock(res.runtime_s)}")
        if res.queue:
            options.append(f"-q {res.queue}")
        if res.project:
            options.append(f"-P {self._checked(res.project, _NAME_RE, 'project')}")  # a plain name here
        if res.email:  # checked by the core (template.check_spec): one plain address
            options += [f"-M {res.email}", "-m ea"]  # mail at the end and on abort
        if self.verify:
            options.append(f"-w {self.verify}")
        return self.option_lines(options)

    def _checked(self, value: str, pattern: re.Pattern[str], what: str, admin: bool = False) -> str:
        if pattern.fullmatch(value):
            return value
        if admin:
            raise ConfigError(f"{what} = {value!r} is not a valid Grid Engine name")
        raise SubmitError(f"The {what} {value!r} is not valid: use letters, digits, '.', '_' and '-' only.")

    def _complex(self, name: str) -> str:
        return self._checked(name, _NAME_RE, "Grid Engine complex name", admin=True)

    def _admin_path(self, path: str, what: str) -> str:
        if not _PATH_RE.fullmatch(path):
            raise ConfigError(f"{what} = {path!r} must be an absolute path without spaces or ':'")
        return path

    # --- commands --------------------------------------------------------
    def submit_command(self, spec: JobSpec, script: str) -> Command:
        return self.command("qsub", "-terse", stdin=script, as_user=spec.username)

    def parse_submit(self, result: CommandResult) -> str:
        return parse.submitted_job_id(result.returncode, result.stdout, result.stderr)

    # --- status ----------------------------------------------------------
    def status_command(self, job_ids: Sequence[str], owners: Sequence[str] = ()) -> Command:
        # qstat lists by user, not by id: one listing of the owners' jobs
        # (everyone's when the owners are unknown) rather than a busy
        # cluster's every job.
        users = sorted(set(owners))
        named = bool(users) and all(_NAME_RE.fullmatch(user) for user in users)
        return self.command("qstat", "-xml", "-u", ",".join(users) if named else "*")

    def parse_status(self, result: CommandResult, job_ids: Sequence[str]) -> dict[str, Observation]:
        self.require_answer(result)
        wanted = set(job_ids)
        found: dict[str, Observation] = {}
        for job in parse.parse_listing(result.stdout):
            if job.job_id not in wanted or job.job_id in found:
                continue  # array tasks repeat a number: the first entry stands
            state = parse.state_of(job.letters)
            reason = parse.default_reason(job.letters)
            if state is None:
                state, reason = JobState.PENDING, f"unrecognised Grid Engine state {job.letters!r}"
            elif state is JobState.COMPLETED:
                state = JobState.STOPPING  # a live listing never shows `z`; be safe if it does
            found[job.job_id] = Observation(job.job_id, state, job.letters, reason, job.host)
        return found

    def list_command(self) -> Command | None:
        return self.command("qstat", "-xml", "-u", "*")

    def parse_list(self, result: CommandResult) -> list[TaggedJob]:
        self.require_answer(result)
        return [
            TaggedJob(job.job_id, job.name, job.owner, parse.state_of(job.letters) or JobState.PENDING)
            for job in parse.parse_listing(result.stdout)
        ]

    def free_command(self) -> Command | None:
        # every queue instance's slots and state, and what is left of the GPU complex
        gpus = ("-F", self._complex(self.gpu_complex)) if self.gpu_complex else ()
        return self.command("qstat", "-f", *gpus, "-xml")

    def parse_free(self, result: CommandResult) -> dict[str, Free]:
        self.require_answer(result)
        return parse_free(result.stdout, self.gpu_complex)

    def reason_command(self, job_ids: Sequence[str]) -> Command | None:
        return self.command("qstat", "-j", ",".join(job_ids), "-xml")

    def parse_reasons(self, result: CommandResult, job_ids: Sequence[str]) -> dict[str, str]:
        self.require_answer(result)
        return parse.parse_details(result.stdout, job_ids)

    def explain_reason(self, reason: str) -> str:
        return plain_reason(reason)

    def history_command(self, job_ids: Sequence[str]) -> Command | None:
        # qmaster keeps recently finished jobs (`finished_jobs`, default 100);
        # qacct would know exit codes but may read a huge file.
        return self.command("qstat", "-s", "z", "-xml", "-u", "*")

    def parse_history(self, result: CommandResult, job_ids: Sequence[str]) -> dict[str, Observation]:
        self.require_answer(result)
        wanted = set(job_ids)
        return {
            job.job_id: Observation(
                job.job_id,
                JobState.COMPLETED,
                job.letters,
                f"the job has finished (its exit status: {self.program('qacct')} -j {job.job_id})",
            )
            for job in parse.parse_listing(result.stdout)
            if job.job_id in wanted and "z" in job.letters
        }

    # --- cancel ----------------------------------------------------------
    def cancel_command(self, job_ids: Sequence[str], username: str) -> Command:
        return self.command("qdel", ",".join(job_ids), as_user=username)

    def parse_cancel(self, result: CommandResult, job_ids: Sequence[str]) -> dict[str, CancelOutcome]:
        return parse.cancel_outcomes((result.stdout + "\n" + result.stderr).splitlines(), job_ids)
