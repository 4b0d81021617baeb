"""Mutation check of the conformance kit: plant one bug at a time in real
backends and see the kit, alone, fail.

    .venv/bin/python tests/property/mutate_backends.py [BACKEND ...] [--examples N] [--write-docs]

Each mutant is a subclass of a backend that changes one method or class
attribute, so one definition plants the same bug in every backend. The
kit runs against it through the backend's own conformance class (its
author's job ids and recorded samples), with only ``backend_class``
pointed at the mutant. Backends: ``sge``, ``slurm``, ``fake`` (their
classes in tests/test_conformance.py) and ``pbs`` (the example plugin's, in
docs/examples/batchhub-pbs/tests). The table printed says, for each bug,
which tests caught it; the exit status is 1 if any bug went unnoticed, or
if the kit fails an unmutated backend. ``--write-docs`` puts the table in
docs/plugins.md.
"""

from __future__ import annotations

import argparse
import ast
import importlib.util
import os
import subprocess
import sys
import tempfile
import xml.etree.ElementTree as ET
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
PBS = ROOT / "docs" / "examples" / "batchhub-pbs"

#: Where each backend's conformance class lives: (file, extra import paths).
AUTHORS: dict[str, tuple[Path, tuple[Path, ...]]] = {
    "sge": (ROOT / "tests" / "test_conformance.py", ()),
    "slurm": (ROOT / "tests" / "test_conformance.py", ()),
    "fake": (ROOT / "tests" / "test_conformance.py", ()),
    "pbs": (PBS / "tests", (PBS, PBS / "tests")),
}


@dataclass(frozen=True)
class Mutant:
    """One planted bug: ``plant(cls)`` gives the class body of a subclass
    of the backend ``cls`` that has it."""

    name: str
    bug: str
    plant: Callable[[type], dict[str, Any]]
    applies: Callable[[type], bool] = lambda cls: True

    def apply(self, cls: type) -> type:
        return type(f"{cls.__name__}_{self.name.replace('-', '_')}", (cls,), self.plant(cls))


def _jobs() -> Any:
    import batchhub.jobs

    return batchhub.jobs


def _all(job_ids: Sequence[str], state: Any) -> dict[str, Any]:
    jobs = _jobs()
    return {job_id: jobs.Observation(job_id, state, "mutant") for job_id in job_ids}


def _empty_answer_ends_jobs(cls: type) -> dict[str, Any]:
    def parse_status(self: Any, result: Any, job_ids: Sequence[str]) -> dict[str, Any]:
        if result.returncode == 0 and not result.timed_out and not result.stdout.strip():
            return _all(job_ids, _jobs().JobState.COMPLETED)  # "nothing listed: they finished"
        return cls.parse_status(self, result, job_ids)

    return {"parse_status": parse_status}


def _garbled_answer_ends_jobs(cls: type) -> dict[str, Any]:
    def parse_status(self: Any, result: Any, job_ids: Sequence[str]) -> dict[str, Any]:
        try:
            return cls.parse_status(self, result, job_ids)
        except _jobs().QueryError:
            if result.returncode == 0 and not result.timed_out:
                return _all(job_ids, _jobs().JobState.FAILED)  # "exit 0 but unreadable: they failed"
            raise

    return {"parse_status": parse_status}


def _absent_job_ends(cls: type) -> dict[str, Any]:
    def parse_status(self: Any, result: Any, job_ids: Sequence[str]) -> dict[str, Any]:
        answer = cls.parse_status(self, result, job_ids)
        missing = [job_id for job_id in job_ids if job_id not in answer]
        return {**answer, **_all(missing, _jobs().JobState.COMPLETED)}

    return {"parse_status": parse_status}


def _failed_query_ends_jobs(cls: type) -> dict[str, Any]:
    def parse_status(self: Any, result: Any, job_ids: Sequence[str]) -> dict[str, Any]:
        try:
            return cls.parse_status(self, result, job_ids)
        except _jobs().QueryError:
            return _all(job_ids, _jobs().JobState.LOST)

    return {"parse_status": parse_status}


def _status_one_id(cls: type) -> dict[str, Any]:
    def status_command(self: Any, job_ids: Sequence[str], owners: Sequence[str] = ()) -> Any:
        return cls.status_command(self, list(job_ids)[:1], list(owners)[:1])

    return {"status_command": status_command}


def _cancel_through_sudo(cls: type) -> dict[str, Any]:
    def cancel_command(self: Any, job_ids: Sequence[str], username: str) -> Any:
        command = cls.cancel_command(self, job_ids, username)
        return replace(command, argv=("sudo", "-u", "root", *command.argv))

    return {"cancel_command": cancel_command}


def _cancel_as_hub(cls: type) -> dict[str, Any]:
    def cancel_command(self: Any, job_ids: Sequence[str], username: str) -> Any:
        return replace(cls.cancel_command(self, job_ids, username), as_user=None)

    return {"cancel_command": cancel_command}


def _submit_through_shell(cls: type) -> dict[str, Any]:
    def submit_command(self: Any, spec: Any, script: str) -> Any:
        command = cls.submit_command(self, spec, script)
        return replace(command, argv=("sh", "-c", " ".join(command.argv)))

    return {"submit_command": submit_command}


def _failed_cancel_gone(cls: type) -> dict[str, Any]:
    # the core reads only the exit codes a backend declares: the bug needs
    # a backend that reads every exit (cancel_exit_codes = None)
    def parse_cancel(self: Any, result: Any, job_ids: Sequence[str]) -> dict[str, Any]:
        if result.returncode != 0 and not result.timed_out:
            return dict.fromkeys(job_ids, _jobs().CancelOutcome.ALREADY_GONE)  # "error: must be gone"
        return cls.parse_cancel(self, result, job_ids)

    return {"parse_cancel": parse_cancel, "cancel_exit_codes": None}


def _timed_out_cancel_requested(cls: type) -> dict[str, Any]:
    # the core's read_cancel fails every id on a timeout before parse_cancel
    # runs: the bug needs a backend that overrides read_cancel
    def read_cancel(self: Any, result: Any, job_ids: Sequence[str]) -> dict[str, Any]:
        if result.timed_out:
            return dict.fromkeys(job_ids, _jobs().CancelOutcome.REQUESTED)  # "it was sent, after all"
        return cls.read_cancel(self, result, job_ids)

    return {"read_cancel": read_cancel}


def _refused_submit_gives_id(cls: type) -> dict[str, Any]:
    def parse_submit(self: Any, result: Any) -> str:
        try:
            return cls.parse_submit(self, result)
        except _jobs().SubmitError:
            return "1"

    return {"parse_submit": parse_submit}


MUTANTS: tuple[Mutant, ...] = (
    Mutant("empty-answer-ends-jobs", "terminal state for exit 0 with empty output", _empty_answer_ends_jobs),
    Mutant(
        "garbled-answer-ends-jobs", "terminal state for exit 0 with garbled output", _garbled_answer_ends_jobs
    ),
    Mutant("absent-job-ends", "terminal state for a job the answer does not describe", _absent_job_ends),
    Mutant("failed-query-ends-jobs", "terminal state for a failed query", _failed_query_ends_jobs),
    Mutant("status-one-id", "status command carries only one of the ids (owners)", _status_one_id),
    Mutant("max-ids-1", "`max_ids_per_query = 1`", lambda cls: {"max_ids_per_query": 1}),
    Mutant(
        "any-exit-answers",
        "every exit code read as an answer",
        lambda cls: {"answer_exit_codes": frozenset(range(-15, 256))},
    ),
    Mutant(
        "answer-code-undeclared",
        "an exit code that answers is not declared (PBS `qstat` 153)",
        lambda cls: {"answer_exit_codes": frozenset({0})},
        applies=lambda cls: bool(cls.answer_exit_codes - {0}),
    ),
    Mutant("cancel-through-sudo", "cancel wrapped as `sudo -u root qdel` in the argv", _cancel_through_sudo),
    Mutant("cancel-as-hub", "cancel run as the hub, not the owner", _cancel_as_hub),
    Mutant("submit-through-shell", "submit wrapped in `sh -c`", _submit_through_shell),
    Mutant("failed-cancel-gone", "failed cancel mapped to ALREADY_GONE", _failed_cancel_gone),
    Mutant("timed-out-cancel-requested", "timed-out cancel mapped to REQUESTED", _timed_out_cancel_requested),
    Mutant("refused-submit-gives-id", "refused submission returns a job id", _refused_submit_gives_id),
)


def _conformance_classes(path: Path) -> dict[str, str]:
    """``{backend class name: conformance class name}`` of the
    ``BackendConformance`` subclasses defined in a test file, read without
    importing it."""
    found = {}
    for node in ast.parse(path.read_text()).body:
        if isinstance(node, ast.ClassDef) and any(
            getattr(base, "id", getattr(base, "attr", "")) == "BackendConformance" for base in node.bases
        ):
            for item in node.body:
                if isinstance(item, ast.Assign) and any(
                    getattr(t, "id", "") == "backend_class" for t in item.targets
                ):
                    found[getattr(item.value, "id", "")] = node.name
    return found


def author_class(backend: str) -> type:
    """The conformance class the backend's author wrote."""
    where, paths = AUTHORS[backend]
    for path in paths:
        if str(path) not in sys.path:
            sys.path.insert(0, str(path))
    files = sorted(where.glob("test_*.py")) if where.is_dir() else [where]
    from batchhub.plugins import PluginRegistry

    wanted = PluginRegistry().backends.get(backend)
    for file in files:
        for backend_name, class_name in _conformance_classes(file).items():
            if wanted is not None and backend_name != wanted.__name__:
                continue
            spec = importlib.util.spec_from_file_location(f"_kit_authors_{backend}_{file.stem}", file)
            assert spec and spec.loader
            module = importlib.util.module_from_spec(spec)
            spec.loader.exec_module(module)
            return getattr(module, class_name)
    raise LookupError(f"no BackendConformance class for {backend!r} in {where}")


def test_classes(backend: str) -> dict[str, type]:
    """The baseline and one class per applicable mutant, for pytest."""
    base = author_class(backend)
    classes = {"TestBaseline": type("TestBaseline", (base,), {})}
    for mutant in MUTANTS:
        if mutant.applies(base.backend_class):
            name = "TestMutant_" + mutant.name.replace("-", "_")
            classes[name] = type(name, (base,), {"backend_class": mutant.apply(base.backend_class)})
    return classes


@dataclass
class Row:
    backend: str
    mutant: str
    verdict: str  # caught, MISSED, n/a, BROKEN (the kit fails the unmutated backend)
    tests: list[str] = field(default_factory=list)


BEGIN, END = "<!-- BEGIN MUTATION TABLE -->", "<!-- END MUTATION TABLE -->"

MODULE = """\
import sys
sys.path.insert(0, {here!r})
import mutate_backends
globals().update(mutate_backends.test_classes({backend!r}))
"""


def run_backend(backend: str, examples: int) -> list[Row]:
    """Run the kit on the backend and on each of its mutants; one pytest run."""
    try:
        base = author_class(backend)
    except LookupError as exc:
        return [Row(backend, "(baseline)", "BROKEN", [str(exc)])]
    with tempfile.TemporaryDirectory() as tmp:
        test_file = Path(tmp) / f"test_kit_mutants_{backend}.py"
        test_file.write_text(MODULE.format(here=str(Path(__file__).resolve().parent), backend=backend))
        report = Path(tmp) / "report.xml"
        extra = os.pathsep.join(str(p) for p in AUTHORS[backend][1])
        env = {**os.environ, "BATCHHUB_CONFORMANCE_EXAMPLES": str(examples)}
        if extra:
            env["PYTHONPATH"] = os.pathsep.join(filter(None, [extra, env.get("PYTHONPATH", "")]))
        run = subprocess.run(
            [
                sys.executable,
                "-m",
                "pytest",
                "-q",
                "-p",
                "no:cacheprovider",
                "-p",
                "no:randomly",
                "-c",
                str(ROOT / "pyproject.toml"),
                "--rootdir",
                tmp,
                f"--junitxml={report}",
                str(test_file),
            ],
            cwd=tmp,
            env=env,
            capture_output=True,
            text=True,
        )
        if not report.exists():
            return [Row(backend, "(baseline)", "BROKEN", [run.stdout[-2000:] + run.stderr[-2000:]])]
        failed: dict[str, list[str]] = {}
        for case in ET.parse(report).iter("testcase"):
            cls = case.get("classname", "").rsplit(".", 1)[-1]
            if case.find("failure") is not None or case.find("error") is not None:
                failed.setdefault(cls, []).append(case.get("name", ""))
    rows = []
    baseline = set(failed.get("TestBaseline", []))
    if baseline:
        rows.append(Row(backend, "(baseline)", "BROKEN", sorted(baseline)))
    for mutant in MUTANTS:
        if not mutant.applies(base.backend_class):
            rows.append(Row(backend, mutant.name, "n/a"))
            continue
        caught = sorted(set(failed.get("TestMutant_" + mutant.name.replace("-", "_"), [])) - baseline)
        rows.append(Row(backend, mutant.name, "caught" if caught else "MISSED", caught))
    return rows


def available() -> list[str]:
    names = ["sge", "slurm", "fake"]
    if PBS.is_dir() and any(_conformance_classes(f) for f in (PBS / "tests").glob("test_*.py")):
        names.append("pbs")
    return names


def run(backends: Sequence[str], examples: int = 25) -> list[Row]:
    return [row for backend in backends for row in run_backend(backend, examples)]


def table(rows: Sequence[Row]) -> str:
    """The result as a markdown table: one row per bug, one column per backend."""
    backends = list(dict.fromkeys(row.backend for row in rows))
    by = {(row.backend, row.mutant): row for row in rows}
    lines = [
        "| bug planted | mutant | caught by | " + " | ".join(backends) + " |",
        "|---|---|---|" + "---|" * len(backends),
    ]
    for mutant in MUTANTS:
        cells = [by.get((b, mutant.name)) for b in backends]
        tests = sorted({t for cell in cells if cell for t in cell.tests})
        verdicts = [cell.verdict if cell else "-" for cell in cells]
        lines.append(
            f"| {mutant.bug} | `{mutant.name}` | {', '.join(f'`{t}`' for t in tests) or '-'} | "
            + " | ".join(verdicts)
            + " |"
        )
    broken = [row for row in rows if row.mutant == "(baseline)"]
    for row in broken:
        lines.append(f"\nBROKEN: the kit fails the unmutated {row.backend} backend: {', '.join(row.tests)}")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("backends", nargs="*", help="default: every backend found")
    parser.add_argument("--examples", type=int, default=25, help="hypothesis examples per property test")
    parser.add_argument("--write-docs", action="store_true", help="put the table in docs/plugins.md")
    args = parser.parse_args(argv)
    rows = run(args.backends or available(), args.examples)
    print(table(rows), flush=True)
    if args.write_docs:
        doc = ROOT / "docs" / "plugins.md"
        head, _, rest = doc.read_text().partition(BEGIN)
        _, _, tail = rest.partition(END)
        doc.write_text(f"{head}{BEGIN}\n{table(rows)}\n{END}{tail}")
    bad = [row for row in rows if row.verdict in ("MISSED", "BROKEN")]
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
