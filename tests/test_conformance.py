"""Every backend we ship passes the conformance suite plugin authors use."""

from batchhub.testing.conformance import BackendConformance
from batchhub_fake.backend import FakeBackend


class TestFakeConformance(BackendConformance):
    backend_class = FakeBackend
