"""batchhub_fake: an in-memory batch scheduler on virtual time, with fault
injection, for tests; and a local mode that really runs job scripts as
processes, for the demo. Registered as the ``fake`` backend."""

from .backend import FakeBackend
from .clock import FakeClock
from .faults import Fault, Faults
from .runner import FakeRunner
from .scheduler import FakeJob, FakeScheduler, SubmitRejected

__all__ = [
    "FakeBackend",
    "FakeClock",
    "FakeJob",
    "FakeRunner",
    "FakeScheduler",
    "Fault",
    "Faults",
    "SubmitRejected",
]
