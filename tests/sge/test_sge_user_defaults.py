"""A user cannot change the hub's Grid Engine job from outside the form.

Two ways were found by an outside review, each checked here against the
real ``qsub`` (scripts/sge-up), as the ordinary user alice:

- a server name with newlines put ``#$`` lines into the job script
  (Grid Engine reads ``#$`` at the start of any line, even in quotes);
- qsub merges ``~/.sge_request`` (and the cwd's ``.sge_request``) into
  every option the hub leaves unset: from her Jupyter terminal a user
  turned a 1-core job into a 1000-task array of 8 slots, another queue
  and project. The job script now starts with ``#$ -clear``.

``qsub -verify`` prints the job exactly as qsub parsed it, without
submitting it; a held job is inspected with ``qstat -j`` and deleted.
"""

from __future__ import annotations

import contextlib
import pwd
import shutil
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from batchhub.jobs import Command, ConfigError, JobSpec, ResourceRequest
from batchhub.runner import CommandRunner
from batchhub.template import render_job_script
from batchhub.testing import missing, need_root_and_user
from batchhub.testing.jobs import private_workdir
from batchhub_sge.backend import SGEBackend

SGE_ENV = {"SGE_ROOT": "/var/lib/gridengine", "SGE_CELL": "default"}
REAL_BIN = Path("/usr/lib/gridengine")  # the real binaries (Debian's /usr/bin/q* are wrappers)
USER = "alice"

#: What a user wrote into her own default request file.
HOSTILE_DEFAULTS = "-t 1-1000 -l h_rt=99:00:00,h_vmem=999G,gpu=2 -pe smp 8 -P evil -q other.q -A evil\n"
#: The same kind of request, in terms this cluster accepts (so the job is
#: really submitted): a 1000-task array of 4 slots and 2 GPUs each, 99 hours.
ACCEPTED_DEFAULTS = "-t 1-1000 -l h_rt=99:00:00,gpu=2 -pe smp 4 -q all.q\n"


def sge(*argv: str) -> subprocess.CompletedProcess[str]:
    env = {"PATH": "/usr/bin:/bin:/usr/sbin:/sbin", "LANG": "C.UTF-8", **SGE_ENV}
    return subprocess.run(argv, capture_output=True, text=True, env=env, timeout=20, check=False)


def binary(name: str) -> str:
    real = REAL_BIN / name
    return str(real) if real.exists() else name


def request_of(text: str) -> dict[str, str]:
    """The fields of ``qsub -verify`` / ``qstat -j`` output, up to the script."""
    fields: dict[str, str] = {}
    for line in text.splitlines():
        if line.startswith("script_ptr:"):
            break  # the script itself follows: it may quote anything
        key, sep, value = line.partition(":")
        if sep and key and not key.startswith(" "):
            fields[key.strip()] = value.strip()
    return fields


# --- without Grid Engine -------------------------------------------------------------------------


def spec(**resources: object) -> JobSpec:
    return JobSpec("alice", "", "batchhub-alice", ResourceRequest(**resources), "/home/alice/.batchhub/x")  # type: ignore[arg-type]


def test_the_directives_start_by_clearing_every_default() -> None:
    lines = SGEBackend(extra_directives=["-l arch=lx-amd64"]).directives(spec(cores=2))
    assert lines[0] == "#$ -clear"
    assert lines.count("#$ -clear") == 1 and lines[-1] == "#$ -l arch=lx-amd64"


def test_extra_directives_cannot_clear_the_hubs_own_options() -> None:
    with pytest.raises(ConfigError, match="-clear"):
        SGEBackend(extra_directives=["-clear"]).directives(spec())


# --- against the real Grid Engine ----------------------------------------------------------------


@pytest.fixture
def real_sge() -> None:
    if shutil.which("qstat") is None or sge("qstat", "-u", "*").returncode != 0:
        missing("Son of Grid Engine (run scripts/sge-up as root)")
    need_root_and_user(USER, "to submit jobs as alice (Grid Engine tests)")


@pytest.fixture
def backend(real_sge: None) -> SGEBackend:
    return SGEBackend(programs={"qsub": binary("qsub")}, command_env=SGE_ENV, command_timeout=20)


@pytest.fixture
def runner(real_sge: None) -> CommandRunner:
    # runuser without -l: alice's qsub gets exactly the runner's environment
    return CommandRunner(as_user_prefix=["runuser", "-u", "{username}", "--"], env=SGE_ENV)


@pytest.fixture
def workdir(real_sge: None) -> Iterator[str]:
    with private_workdir(USER, "batchhub-sge-defaults-") as path:
        yield path


@contextlib.contextmanager
def user_file(path: Path, text: str) -> Iterator[None]:
    """``text`` in alice's ``path`` for the block only; what was there before
    (or nothing) afterwards. Kept short: every qsub of hers reads it."""
    before = path.read_bytes() if path.exists() else None
    try:
        path.write_text(text)
        shutil.chown(path, USER, USER)
        path.chmod(0o644)
        yield
    finally:
        if before is None:
            path.unlink(missing_ok=True)
        else:
            path.write_bytes(before)
            shutil.chown(path, USER, USER)


def hub_spec(backend: SGEBackend, workdir: str, server: str) -> JobSpec:
    """What the hub asks for: 1 core, 512 MB, one hour."""
    return JobSpec(
        USER,
        server,
        backend.job_name(USER, server),
        ResourceRequest(cores=1, memory_mb=512, runtime_s=3600),
        workdir,
        command=("sleep", "600"),
        env={"JUPYTERHUB_SERVER_NAME": server, "JUPYTERHUB_USER": USER},
    )


def assert_only_the_hubs_request(fields: dict[str, str]) -> None:
    """1 core, 512 MB, one hour, nothing else (``-verify`` writes h_rt as
    01:00:00, ``qstat -j`` in seconds; ``account`` defaults to ``sge``)."""
    resources = dict(item.partition("=")[::2] for item in fields["hard resource_list"].split(","))
    assert resources in ({"rmem": "512M", "h_rt": "01:00:00"}, {"rmem": "512M", "h_rt": "3600"}), fields
    assert fields.get("account", "sge") == "sge", fields
    for field in ("job-array tasks", "parallel environment", "project", "hard_queue_list"):
        assert field not in fields, f"{field}: {fields[field]}"


@pytest.mark.sge
async def test_a_hostile_server_name_injects_no_option(
    backend: SGEBackend, runner: CommandRunner, workdir: str
) -> None:
    server = "x\n#$ -l h_rt=99:00:00,h_vmem=999G\n#$ -q any.q\n#$ -t 1-1000\n  #$ -P evil\t"
    script = render_job_script(backend, hub_spec(backend, workdir, server))

    verify = await runner.run(
        Command((backend.program("qsub"), "-verify"), stdin=script, as_user=USER, timeout=20)
    )
    assert verify.returncode == 0, verify.describe()
    assert_only_the_hubs_request(request_of(verify.stdout))

    # qsub -w v checks the request against the cluster: the injected
    # "-q any.q" made it "job requests unknown queue"
    check = await runner.run(
        Command((backend.program("qsub"), "-w", "v"), stdin=script, as_user=USER, timeout=20)
    )
    assert check.returncode == 0 and "found suitable queue" in check.stdout, check.describe()


@pytest.mark.sge
@pytest.mark.parametrize("where", ["home", "cwd"])
async def test_the_users_own_default_requests_do_not_reach_the_job(
    backend: SGEBackend, runner: CommandRunner, workdir: str, where: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    if where == "home":
        defaults = Path(pwd.getpwnam(USER).pw_dir, ".sge_request")
    else:  # qsub also reads .sge_request in the directory it runs in
        monkeypatch.chdir(workdir)
        defaults = Path(workdir, ".sge_request")
    server = f"defaults-{uuid.uuid4().hex[:8]}"
    spec = hub_spec(backend, workdir, server)
    script = render_job_script(backend, spec)

    with user_file(defaults, HOSTILE_DEFAULTS):
        verify = await runner.run(
            Command((backend.program("qsub"), "-verify"), stdin=script, as_user=USER, timeout=20)
        )
    assert verify.returncode == 0, verify.describe()
    assert_only_the_hubs_request(request_of(verify.stdout))

    # really submitted (held, as the hub submits: qsub -terse, script on stdin)
    held = SGEBackend(
        programs=backend.programs, command_env=SGE_ENV, command_timeout=20, extra_directives=["-h"]
    )
    script = render_job_script(held, spec)
    try:
        with user_file(defaults, ACCEPTED_DEFAULTS):
            result = await runner.run(held.submit_command(spec, script))
        job_id = held.parse_submit(result)
        details = sge(binary("qstat"), "-j", job_id)
        assert details.returncode == 0, details.stderr
        fields = request_of(details.stdout)
        assert fields["job_name"] == spec.job_name
        assert_only_the_hubs_request(fields)
    finally:
        # by name (of alice's jobs): also a job whose id was never read
        sge(binary("qdel"), "-f", "-u", USER, spec.job_name)
