"""The Slurm backend: ``sbatch``, ``squeue``, ``scancel`` and ``sacct``
commands and parsers of their output. No I/O here: the core runs the
commands (see ``batchhub.runner``).

Facts this relies on (Slurm 22.05, verified on a real cluster; recorded
outputs live in tests/data/slurm):

- ``squeue -h -t all -j 1,2 -O 'JobID:|,...'`` lists the known jobs of a
  list and exits 0, but a list of ONE unknown id exits 1 with "Invalid job
  id specified": that means the job is gone, not that the query failed.
- "Unable to contact slurm controller" (or any other failure) says nothing
  about the jobs: ``QueryError``, never a terminal state.
- ``scancel`` exits 0 for unknown ids; only ``-v`` tells per job whether it
  was signalled, already finished, or not ours.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import replace
from datetime import datetime
from typing import ClassVar

from traitlets import Bool, Enum, Unicode

from batchhub.backend import Backend, deprecated_program
from batchhub.free import Free
from batchhub.jobs import (
    CancelOutcome,
    Command,
    CommandResult,
    ConfigError,
    HistoryUnavailable,
    JobSpec,
    JobState,
    Observation,
    QueryError,
    SubmitError,
    SubmitUncertain,
    TaggedJob,
)

from .free import SINFO_FREE_FORMAT, parse_free
from .refusals import SUBMIT_ERRORS, UNCERTAIN_ERRORS
from .states import HOLD_REASONS, STATE_REASONS, STATES, human_reason

#: squeue fields, each ended by the delimiter (``:|`` = no padding, then
#: ``|``). None of them can contain a ``|``: ids, state words, host names,
#: integers and reason codes.
SQUEUE_FORMAT = "JobID:|,State:|,BatchHost:|,NodeList:|,exit_code:|,Reason:|"
SQUEUE_FIELDS = 6
SACCT_FORMAT = "JobID,State,ExitCode,NodeList,Reason"

#: Names Slurm accepts for a QOS; anything else is refused before it
#: reaches a directive.
NAME_RE = re.compile(r"^[A-Za-z0-9_.+@-]{1,128}$")
#: Job ids as sbatch prints them (an array task would be ``12_3``).
JOB_ID_RE = re.compile(r"^\d+(_\d+)?$")


def first_node(nodelist: str) -> str | None:
    """The first host of a Slurm host list: ``gpu[03-05,9],cpu1`` -> ``gpu03``."""
    nodelist = nodelist.strip()
    if nodelist in ("", "n/a", "(null)", "None"):
        return None
    depth, end = 0, len(nodelist)
    for i, char in enumerate(nodelist):
        depth += char == "["
        depth -= char == "]"
        if char == "," and depth == 0:
            end = i
            break
    first = nodelist[:end]
    # Each bracket group stands for a set of numbers: take its first one.
    first = re.sub(r"\[([^\],-]+)[^\]]*\]", r"\1", first)
    return first or None


def slurm_time(seconds: int) -> str:
    """A time limit in Slurm's ``D-HH:MM:SS`` form."""
    seconds = max(1, int(seconds))
    days, rest = divmod(seconds, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{days}-{hours:02d}:{minutes:02d}:{secs:02d}"


def exit_code_from_status(raw: str) -> int | None:
    """squeue's ``exit_code`` is a wait status: exit code in the high byte,
    signal in the low bits; a signal is reported as 128 + signal."""
    try:
        status = int(raw)
    except ValueError:
        return None
    if status < 0:
        return None
    signal = status & 0x7F
    return 128 + signal if signal else (status >> 8) & 0xFF


def exit_code_from_sacct(raw: str) -> int | None:
    """sacct's ``ExitCode`` is ``code:signal``."""
    code, _, signal = raw.partition(":")
    try:
        sig = int(signal or 0)
        return 128 + sig if sig else int(code)
    except ValueError:
        return None


class SlurmBackend(Backend):
    """Runs each server as a Slurm batch job."""

    name: ClassVar[str] = "slurm"
    max_ids_per_query: ClassVar[int | None] = 500  # keeps argv well under any limit
    directive_prefix: ClassVar[str] = "#SBATCH"
    # slurmctld keeps a job's script and environment from other users
    # (another user's ``scontrol write batch_script`` fails with "Invalid
    # user id"; ``show job -dd`` shows neither), so ``token_delivery = "env"``
    # is allowed
    private_job_env: ClassVar[bool] = True
    unsafe_path_chars: ClassVar[str] = Backend.unsafe_path_chars + "%\\\"'"  # %j patterns, \ escapes
    cancel_exit_codes: ClassVar[frozenset[int] | None] = frozenset({0, 1, 210})

    program_names = ("sbatch", "squeue", "scancel", "sacct", "sinfo")
    # old names of ``programs`` entries, still read
    sbatch_path = deprecated_program("sbatch")
    squeue_path = deprecated_program("squeue")
    scancel_path = deprecated_program("scancel")
    sacct_path = deprecated_program("sacct")
    use_accounting = Bool(
        True,
        help="Ask sacct how a job ended once squeue no longer lists it. Without accounting "
        "(accounting_storage/none) the first sacct says so and the hub stops asking by "
        "itself; a failing sacct never ends a job.",
    ).tag(config=True)

    gpu_request = Enum(
        ["gres", "gpus"],
        default_value="gres",
        help='How GPUs are requested: "gres" writes --gres=gpu:N (works everywhere), '
        '"gpus" writes --gpus=N (needs select/cons_tres).',
    ).tag(config=True)
    gpu_gres = Unicode(
        "gpu",
        help='The GRES name (optionally with a type) GPUs are asked for, e.g. "gpu" or '
        '"gpu:a100": --gres=gpu:a100:N. With gpu_request="gpus" a type becomes --gpus=a100:N.',
    ).tag(config=True)
    qos = Unicode("", help="Quality of service for every job (--qos); empty leaves Slurm's default.").tag(
        config=True
    )
    export = Unicode(
        "NONE",
        help="Value of sbatch --export. NONE (the default) passes nothing of the submitting "
        "environment: the job gets the user's own login environment plus the variables the "
        "job script exports, and nothing of the hub's. ALL would pass the runner's environment.",
    ).tag(config=True)

    # --- job script -----------------------------------------------------
    def directives(self, spec: JobSpec) -> list[str]:
        res = spec.resources
        options = [
            f"--job-name={spec.job_name}",  # the core checked it (JOB_NAME_RE)
            f"--output={spec.output_path}",
            f"--error={spec.error_path}",
            f"--nodes={int(res.nodes)}",
            f"--ntasks={int(res.nodes) * int(res.tasks_per_node)}",
            f"--cpus-per-task={int(res.cores)}",
        ]
        if res.pe:
            raise ConfigError(
                "a parallel environment is Grid Engine's; on Slurm offer nodes and tasks_per_node "
                "(c.ResourceForm.fields) instead of pe"
            )
        if res.nodes < 1 or res.tasks_per_node < 1:
            raise SubmitError("A job needs at least one node and one task per node.")
        if res.nodes > 1 or res.tasks_per_node > 1:
            options.append(f"--ntasks-per-node={int(res.tasks_per_node)}")
        if res.memory_mb is not None:
            # --mem is per node: the job's total shared out over its nodes
            options.append(f"--mem={-(-int(res.memory_mb) // int(res.nodes))}M")
        if res.gpus:
            options.append(self._gpu_option(int(res.gpus), int(res.nodes)))
        if res.runtime_s is not None:
            options.append(f"--time={slurm_time(res.runtime_s)}")
        if res.queue:
            options.append(f"--partition={res.queue}")  # names and paths: checked by the core
        if res.project:
            options.append(f"--account={res.project}")
        if self.qos:
            options.append(f"--qos={self._name(self.qos, 'QOS')}")
        if res.email:  # checked by the core (template.check_spec): one plain address
            options += [f"--mail-user={res.email}", "--mail-type=END,FAIL"]
        options.append(f"--export={self._export()}")
        return self.option_lines(options)

    def _gpu_option(self, count: int, nodes: int = 1) -> str:
        if self.gpu_request == "gres" and count % nodes:  # --gres counts per node
            raise SubmitError(
                f"gpus: {count} GPUs cannot be shared evenly over {nodes} nodes; "
                f"ask for a multiple of {nodes}."
            )
        if not re.fullmatch(r"[A-Za-z0-9_.-]+(:[A-Za-z0-9_.-]+)?", self.gpu_gres):
            raise ConfigError(
                f"c.SlurmBackend.gpu_gres {self.gpu_gres!r} is not a GRES name like gpu or gpu:a100"
            )
        if self.gpu_request == "gpus":
            kind = self.gpu_gres.partition(":")[2]
            return f"--gpus={kind}:{count}" if kind else f"--gpus={count}"
        return f"--gres={self.gpu_gres}:{count // nodes}"

    def _export(self) -> str:
        if not re.fullmatch(r"[A-Za-z0-9_,]+", self.export):
            raise ConfigError(
                f"c.SlurmBackend.export {self.export!r} must be NONE, ALL or NONE,NAME,...: "
                "values belong in the job script, not on sbatch's command line"
            )
        return self.export

    @staticmethod
    def _name(value: str, what: str) -> str:
        if not NAME_RE.match(value):
            raise SubmitError(f"{value!r} is not a valid Slurm {what} name.")
        return value

    # --- submit ---------------------------------------------------------
    def submit_command(self, spec: JobSpec, script: str) -> Command:
        # The script comes on stdin; sbatch reads it there when given no file.
        return self.command("sbatch", "--parsable", stdin=script, as_user=spec.username)

    def parse_submit(self, result: CommandResult) -> str:
        if result.ok:
            # --parsable prints "id" or "id;cluster".
            line = next((ln.strip() for ln in result.stdout.splitlines() if ln.strip()), "")
            job_id = line.split(";", 1)[0]
            if JOB_ID_RE.match(job_id):
                return job_id
            raise SubmitError(f"Slurm accepted the job but printed no job id ({result.describe()}).")
        text = f"{result.stderr}\n{result.stdout}"
        if any(needle.lower() in text.lower() for needle in UNCERTAIN_ERRORS):
            # the request may have reached slurmctld: the job may exist
            raise SubmitUncertain(f"Slurm lost the answer to the submission ({result.describe()}).")
        for needle, message in SUBMIT_ERRORS:
            if needle.lower() in text.lower():
                return self._raise_submit(message, result)
        return self._raise_submit("Slurm refused the job.", result)

    @staticmethod
    def _raise_submit(message: str, result: CommandResult) -> str:
        detail = " ".join(
            line.removeprefix("sbatch: error: ").strip()
            for line in (result.stderr or result.stdout).splitlines()
            if "error" in line.lower()
        )
        raise SubmitError(f"{message} (Slurm said: {detail[:300]})" if detail else message)

    # --- status ---------------------------------------------------------
    def status_command(self, job_ids: Sequence[str], owners: Sequence[str] = ()) -> Command:
        return self.command(
            "squeue", "--noheader", "--states=all", f"--jobs={','.join(job_ids)}", "-O", SQUEUE_FORMAT
        )

    def list_command(self) -> Command | None:
        # every user's live jobs (squeue's default states), the name last:
        # other users' job names may hold the delimiter
        return self.command("squeue", "--noheader", "--all", "-o", "%i|%u|%T|%j")

    def parse_list(self, result: CommandResult) -> list[TaggedJob]:
        self.require_answer(result)
        jobs = []
        for line in result.stdout.splitlines():
            if not line.strip():
                continue
            fields = line.strip().split("|", 3)
            if len(fields) != 4 or not fields[0]:
                raise QueryError(f"squeue printed a line batchhub cannot read: {line[:200]!r}")
            job_id, owner, native, name = fields
            jobs.append(TaggedJob(job_id, name, owner, self._observe(job_id, native, "", "", "").state))
        return jobs

    def free_command(self) -> Command | None:
        # one line per node and partition: state, CPUs (alloc/idle/other/total), GRES and GRES in use
        return self.command("sinfo", "--noheader", "--Node", "-O", SINFO_FREE_FORMAT)

    def parse_free(self, result: CommandResult) -> dict[str, Free]:
        self.require_answer(result)
        return parse_free(result.stdout, self.gpu_gres)

    def parse_status(self, result: CommandResult, job_ids: Sequence[str]) -> dict[str, Observation]:
        # squeue's quirk: ONE unknown id alone fails; in a list it is just absent.
        if not result.timed_out and len(job_ids) == 1 and "Invalid job id specified" in result.stderr:
            return {}
        self.require_answer(result)
        wanted = set(job_ids)
        answer: dict[str, Observation] = {}
        for line in result.stdout.splitlines():
            if not line.strip():
                continue
            fields = line.strip().split("|")
            if fields and fields[-1] == "":
                fields.pop()  # every field ends with the delimiter
            if len(fields) != SQUEUE_FIELDS:
                raise QueryError(f"squeue printed a line batchhub cannot read: {line[:200]!r}")
            job_id, native, batch_host, nodelist, status, reason_code = (f.strip() for f in fields)
            if job_id not in wanted:
                continue
            obs = self._observe(job_id, native, reason_code, batch_host, nodelist)
            if obs.state.terminal:
                obs = self._with_exit(obs, exit_code_from_status(status))
            answer[job_id] = obs
        return answer

    def _observe(
        self, job_id: str, native: str, reason_code: str, batch_host: str, nodelist: str
    ) -> Observation:
        word = native.split()[0] if native.split() else ""
        state = STATES.get(word)
        if state is None:
            # one job's new state must not fail the whole batch
            state = self.unknown_state(job_id, native)
            return Observation(job_id, state, native, f"Slurm reports the state {word or '?'}")
        if state is JobState.PENDING and reason_code in HOLD_REASONS:
            state = JobState.HELD
        # a waiting job keeps Slurm's code, which explain_reason puts in plain
        # words (the hub logs both); an ended job's reason is a sentence now
        code = reason_code.strip()
        reason = code if state.queued and human_reason(code) else human_reason(code)
        if state.terminal and word in STATE_REASONS and reason_code in ("", "None", word.title()):
            reason = STATE_REASONS[word]
        host = None if state.queued else (first_node(batch_host) or first_node(nodelist))
        return Observation(job_id, state, native, reason, host)

    def explain_reason(self, reason: str) -> str:
        return human_reason(reason)

    def start_command(self, job_ids: Sequence[str]) -> Command | None:
        # pending jobs only; "N/A" until the backfill pass has placed the job
        return self.command("squeue", "--noheader", "--start", f"--jobs={','.join(job_ids)}", "-o", "%i|%S")

    def parse_starts(self, result: CommandResult, job_ids: Sequence[str]) -> dict[str, datetime]:
        if not result.timed_out and len(job_ids) == 1 and "Invalid job id specified" in result.stderr:
            return {}
        self.require_answer(result)
        wanted = set(job_ids)
        starts: dict[str, datetime] = {}
        for line in result.stdout.splitlines():
            job_id, bar, when = line.strip().partition("|")
            if not bar or job_id not in wanted:
                continue
            try:
                # Slurm prints the controller's local time; the hub shares its zone
                starts[job_id] = datetime.fromisoformat(when.strip()).astimezone()
            except ValueError:
                continue  # N/A, Unknown: no estimate yet
        return starts

    @staticmethod
    def _with_exit(obs: Observation, code: int | None) -> Observation:
        reason = obs.reason
        if obs.state is JobState.FAILED and code and reason in ("", human_reason("NonZeroExitCode")):
            reason = f"the job exited with code {code}"
        return replace(obs, exit_code=code, reason=reason)

    # --- accounting -----------------------------------------------------
    def history_command(self, job_ids: Sequence[str]) -> Command | None:
        if not self.use_accounting:
            return None
        return self.command(
            "sacct",
            "--noheader",
            "--parsable2",
            "--allocations",
            "--allusers",
            f"--jobs={','.join(job_ids)}",
            f"--format={SACCT_FORMAT}",
        )

    def parse_history(self, result: CommandResult, job_ids: Sequence[str]) -> dict[str, Observation]:
        # Without accounting sacct fails ("Slurm accounting storage is
        # disabled"): that is "unknown", never an end, and not worth asking again.
        if not result.ok and "accounting storage is disabled" in result.stderr:
            raise HistoryUnavailable(result.describe())
        self.require_answer(result)
        wanted = set(job_ids)
        answer: dict[str, Observation] = {}
        for line in result.stdout.splitlines():
            fields = line.strip().split("|")
            if len(fields) != 5:
                continue  # sacct mixes in warnings on some sites: skip what is not a record
            job_id, native, exit_raw, nodelist, reason_code = (f.strip() for f in fields)
            if job_id not in wanted:
                continue
            word = native.split()[0] if native.split() else ""  # "CANCELLED by 2001"
            if word not in STATES:
                continue
            obs = self._observe(job_id, word, reason_code, "", nodelist)
            if obs.state.terminal:
                obs = self._with_exit(obs, exit_code_from_sacct(exit_raw))
            answer[job_id] = obs  # sacct lists requeued runs oldest first: the last one wins
        return answer

    # --- cancel ---------------------------------------------------------
    def cancel_command(self, job_ids: Sequence[str], username: str) -> Command:
        # -v makes scancel say per job what happened; without it an
        # unknown id and a signalled job both print nothing and exit 0.
        return self.command("scancel", "-v", *job_ids, as_user=username)

    def parse_cancel(self, result: CommandResult, job_ids: Sequence[str]) -> dict[str, CancelOutcome]:
        text = f"{result.stdout}\n{result.stderr}"
        if "Unable to contact slurm controller" in text:
            return dict.fromkeys(job_ids, CancelOutcome.FAILED)
        errors: dict[str, str] = {}
        for match in re.finditer(r"error on job id (\S+?):\s*(.*)", text):
            errors[match.group(1)] = match.group(2)
        outcomes: dict[str, CancelOutcome] = {}
        for job_id in job_ids:
            error = errors.get(job_id)
            if error is None:
                # No complaint about this id: signalled if scancel says so,
                # or (rc 0, no -v output, e.g. a wrapper) accepted.
                signalled = re.search(rf"Terminating job {re.escape(job_id)}\b", text)
                outcomes[job_id] = (
                    CancelOutcome.REQUESTED if signalled or result.returncode == 0 else CancelOutcome.FAILED
                )
            elif "Invalid job id" in error or "already completing or completed" in error:
                outcomes[job_id] = CancelOutcome.ALREADY_GONE
            elif "permission denied" in error.lower():
                outcomes[job_id] = CancelOutcome.DENIED
            else:
                outcomes[job_id] = CancelOutcome.FAILED
        return outcomes
