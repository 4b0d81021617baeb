"""batchhub's pytest plugin, loaded by pytest through the ``pytest11``
entry point wherever batchhub is installed. It only defines fixtures, and
imports what they need when a test asks for them, so it costs nothing to
load (the in-memory scheduler's fixtures, ``fake_cluster`` and its
parts, come with it from ``batchhub_fake.pytest_plugin``):

``backend_strategies``
    ``batchhub.testing.strategies``: hypothesis strategies for resource
    requests and garbage scheduler output (needs hypothesis).
``recorded_sample``
    ``batchhub.testing.samples.read_sample``: ``(rc, stdout, stderr)`` of a
    sample kept as ``NAME.rc``/``.stdout``/``.stderr`` files.
"""

from __future__ import annotations

from types import ModuleType
from typing import Any

import pytest


@pytest.fixture
def backend_strategies() -> ModuleType:
    from batchhub.testing import strategies

    return strategies


@pytest.fixture
def recorded_sample() -> Any:
    from batchhub.testing.samples import read_sample

    return read_sample
