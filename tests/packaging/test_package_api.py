"""What ``import batchhub`` promises: ``from batchhub import BatchSpawner``
works as ``from kubespawner import KubeSpawner`` does, and importing the
package (as every backend plugin does, for ``hookimpl``) or loading the
plugins never imports JupyterHub. Each check runs in a fresh interpreter,
so nothing this test process already imported hides an import."""

from __future__ import annotations

import subprocess
import sys

import pytest

HEAVY = ("jupyterhub", "tornado", "sqlalchemy")


def fresh(code: str) -> str:
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


def test_importing_batchhub_and_loading_plugins_imports_no_hub() -> None:
    loaded = fresh(
        "import sys, batchhub\n"
        "from batchhub.plugins import get_registry\n"
        "assert {'fake', 'sge', 'slurm'} <= set(get_registry().backends)\n"
        f"print(' '.join(m for m in {HEAVY!r} if m in sys.modules))"
    )
    assert loaded == ""


def test_batchhub_spawner_is_the_spawner_class() -> None:
    out = fresh(
        "from batchhub import BatchSpawner\n"
        "from batchhub.spawner import BatchSpawner as Real\n"
        "from jupyterhub.spawner import Spawner\n"
        "print(BatchSpawner is Real, issubclass(BatchSpawner, Spawner))"
    )
    assert out == "True True"


def test_an_unknown_name_is_an_attribute_error() -> None:
    import batchhub

    assert "BatchSpawner" in dir(batchhub)
    with pytest.raises(AttributeError, match="NoSuchSpawner"):
        batchhub.NoSuchSpawner  # noqa: B018
