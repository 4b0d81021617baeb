"""Every backend we ship passes the conformance kit plugin authors use, with
output recorded from the real schedulers (tests/data/sge, tests/data/slurm);
and the kit catches every planted bug (tests/property/mutate_backends.py)."""

from __future__ import annotations

import shlex
import sys
from pathlib import Path

import pytest

from batchhub.jobs import CancelOutcome, JobState, QueryError, SubmitError, SubmitUncertain
from batchhub.testing.conformance import BackendConformance
from batchhub.testing.samples import CancelSample, StatusSample, SubmitSample, read_sample
from batchhub_fake.backend import FakeBackend
from batchhub_sge.backend import SGEBackend
from batchhub_slurm.backend import SlurmBackend

DATA = Path(__file__).resolve().parent / "data"
SGE, SLURM = DATA / "sge", DATA / "slurm"
GONE, DONE = CancelOutcome.ALREADY_GONE, CancelOutcome.REQUESTED


def slurm_ids(name: str) -> tuple[str, ...]:
    """The job ids a recorded Slurm command asked about (from NAME.cmd)."""
    argv = shlex.split((SLURM / f"{name}.cmd").read_text())
    for arg in argv:
        if arg.startswith("--jobs="):
            return tuple(arg.removeprefix("--jobs=").split(","))
    return tuple(arg for arg in argv[1:] if arg.isdigit())


def slurm_status(name: str, **expect: JobState) -> StatusSample:
    expected = {job_id.removeprefix("j"): state for job_id, state in expect.items()}
    return StatusSample.from_files(SLURM, name, job_ids=slurm_ids(name), expect=expected)


def slurm_cancel(name: str, **expect: CancelOutcome) -> CancelSample:
    expected = {job_id.removeprefix("j"): outcome for job_id, outcome in expect.items()}
    return CancelSample.from_files(SLURM, name, job_ids=slurm_ids(name), expect=expected)


class TestSGEConformance(BackendConformance):
    backend_class = SGEBackend
    job_ids = ("6", "7", "8")
    status_samples = (
        StatusSample.from_files(
            SGE,
            "qstat-r-qw-hqw",
            job_ids=("6", "7", "8", "12345"),
            expect={"6": JobState.RUNNING, "7": JobState.PENDING, "8": JobState.HELD},
        ),
        StatusSample.from_files(
            SGE,
            "qstat-eqw",
            job_ids=("9", "10", "7"),
            expect={"9": JobState.FAILED, "10": JobState.FAILED, "7": JobState.PENDING},
        ),
        StatusSample.from_files(SGE, "qstat-dr", job_ids=("6",), expect={"6": JobState.STOPPING}),
        StatusSample.from_files(SGE, "qstat-s", job_ids=("6",), expect={"6": JobState.SUSPENDED}),
        StatusSample.from_files(SGE, "qstat-qmaster-down", job_ids=("6",), expect=QueryError),
    )
    cancel_samples = (
        CancelSample.from_files(SGE, "qdel-again", job_ids=("8",), expect={"8": GONE}),
        CancelSample.from_files(
            SGE,
            "qdel-mixed",
            job_ids=("8", "11", "77"),
            expect={"8": GONE, "11": DONE, "77": CancelOutcome.FAILED},
        ),
        CancelSample.from_files(SGE, "qdel-other-user", job_ids=("11",), expect={"11": CancelOutcome.DENIED}),
        CancelSample.from_files(SGE, "qdel-running", job_ids=("6",), expect={"6": DONE}),
        CancelSample.from_files(SGE, "qdel-qmaster-down", job_ids=("6",), expect={"6": CancelOutcome.FAILED}),
    )
    submit_samples = (
        SubmitSample.from_files(SGE, "qsub-ok", expect="12"),
        SubmitSample.from_files(SGE, "qsub-unknown-queue", expect=SubmitError),
        SubmitSample.from_files(SGE, "qsub-qmaster-down", expect=SubmitError),
    )


class TestSlurmConformance(BackendConformance):
    backend_class = SlurmBackend
    job_ids = ("59", "60", "61")
    status_samples = (
        slurm_status(
            "squeue-running-pending",
            j59=JobState.RUNNING,
            j60=JobState.RUNNING,
            j61=JobState.PENDING,
            j62=JobState.PENDING,
            j63=JobState.HELD,
        ),
        slurm_status("squeue-finished", j60=JobState.CANCELLED, j65=JobState.COMPLETED, j66=JobState.FAILED),
        slurm_status("squeue-completing", j68=JobState.STOPPING),
        slurm_status("squeue-suspended", j70=JobState.SUSPENDED),
        slurm_status("squeue-timeout", j67=JobState.TIMEOUT),
        slurm_status("squeue-node-fail", j71=JobState.FAILED),
        slurm_status("squeue-mixed", j65=JobState.COMPLETED),
        slurm_status("squeue-unknown-list"),
        # squeue's quirk: ONE unknown id alone exits 1, and that means "gone"
        slurm_status("squeue-unknown-single"),
        StatusSample.from_files(SLURM, "squeue-controller-down", job_ids=("65", "66"), expect=QueryError),
    )
    cancel_samples = (
        slurm_cancel("scancel-running", j76=DONE),
        slurm_cancel("scancel-unknown", j999999=GONE),
        slurm_cancel("scancel-finished", j65=GONE),
        slurm_cancel("scancel-mixed", j65=GONE, j999999=GONE, j77=DONE),
        slurm_cancel("scancel-other-user", j76=CancelOutcome.DENIED),
        slurm_cancel("scancel-controller-down", j65=CancelOutcome.FAILED),
    )
    submit_samples = (
        SubmitSample.from_files(SLURM, "sbatch-ok", expect="59"),
        SubmitSample.from_files(SLURM, "sbatch-invalid-partition", expect=SubmitError),
        SubmitSample.from_files(SLURM, "sbatch-controller-down", expect=SubmitError),
        SubmitSample(
            "sbatch-socket-timeout",
            returncode=1,
            stderr="sbatch: error: Batch job submission failed: Socket timed out on send/recv operation\n",
            expect=SubmitUncertain,
        ),
    )


FAKE_STATUS = "JOBID|STATE|HOST|EXIT|REASON\n"


class TestFakeConformance(BackendConformance):
    backend_class = FakeBackend
    job_ids = ("1", "2", "3")
    status_samples = (
        StatusSample(
            "fake-status",
            job_ids=("1", "2", "3", "4"),
            stdout=FAKE_STATUS + "1|R|fake-node-1||\n2|PD|||waiting in the queue\n3|CD|fake-node-1|0|\n",
            expect={"1": JobState.RUNNING, "2": JobState.PENDING, "3": JobState.COMPLETED},
        ),
        StatusSample("fake-status-none", job_ids=("4",), stdout=FAKE_STATUS),
        StatusSample(
            "fake-status-down",
            job_ids=("1",),
            returncode=1,
            stderr="fake-status: error: unable to contact the fake controller\n",
            expect=QueryError,
        ),
    )
    cancel_samples = (
        CancelSample(
            "fake-cancel",
            job_ids=("1", "2", "3", "4"),
            stdout="1 cancelled\n2 finished\n3 not-found\n4 denied\n",
            expect={"1": DONE, "2": GONE, "3": GONE, "4": CancelOutcome.DENIED},
        ),
    )
    submit_samples = (
        SubmitSample("fake-submit", stdout="Submitted fake job 17\n", expect="17"),
        SubmitSample(
            "fake-submit-refused",
            returncode=1,
            stderr="fake-submit: error: Batch job submission failed: requested 9 cores\n",
            expect=SubmitError,
        ),
    )


# --- the kit's own parts ------------------------------------------------------


def test_samples_load_from_files() -> None:
    assert read_sample(SGE, "qsub-ok") == (0, "12\n", "")
    with pytest.raises(FileNotFoundError, match="no recorded sample"):
        read_sample(SGE, "nosuch")
    with pytest.raises(ValueError, match="outcome for each"):
        CancelSample("c", job_ids=("1", "2"), expect={"1": GONE})


async def test_fake_cluster_fixture_runs_a_job_on_virtual_time(fake_cluster) -> None:
    backend, spec = fake_cluster.backend, TestFakeConformance().make_spec()
    submitted = await fake_cluster.run(backend.submit_command(spec, "#!/bin/sh\n#FAKE --cores=1\n"))
    job_id = backend.parse_submit(submitted)
    fake_cluster.advance(60)
    status = await fake_cluster.run(backend.status_command([job_id], [spec.username]))
    assert backend.parse_status(status, [job_id])[job_id].state is JobState.RUNNING
    assert fake_cluster.runner.counts["status"] == 1


def test_strategies_fixture(backend_strategies) -> None:
    from hypothesis import given, settings

    @settings(max_examples=20, deadline=None)
    @given(backend_strategies.resource_requests(), backend_strategies.garbage_output(["a|b\n"]))
    def check(request, text) -> None:
        assert request.cores >= 1 and isinstance(text, str)

    check()


def test_the_plugin_loads_without_hypothesis() -> None:
    import subprocess

    code = (
        "import sys; sys.modules['hypothesis'] = None; import batchhub.testing.pytest_plugin; "
        "assert 'batchhub_fake' not in sys.modules"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_the_kit_catches_every_planted_bug() -> None:
    """The mutation run (tests/property/mutate_backends.py) on our backends:
    every planted bug is caught by the kit alone."""
    sys.path.insert(0, str(Path(__file__).resolve().parent / "property"))
    try:
        import mutate_backends
    finally:
        sys.path.pop(0)
    rows = mutate_backends.run(["sge", "slurm", "fake"], examples=10)
    missed = [row for row in rows if row.verdict == "MISSED" or row.verdict == "BROKEN"]
    assert not missed, mutate_backends.table(rows)
