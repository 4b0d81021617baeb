"""Each server's private directory name: distinct per server, inside ~/.batchhub."""

from __future__ import annotations

import pytest

from batchhub.spawner import server_dir_name


def test_default_and_plain_names() -> None:
    assert server_dir_name("") == "default"
    assert server_dir_name("gpu-run-1") == "gpu-run-1"
    assert server_dir_name("gpu-run.1") == "gpu-run.1"


@pytest.mark.parametrize(
    "names",
    [("", "default"), ("a b", "a_b"), ("a/b", "a_b"), ("x", ".x"), ("é", "_")],
)
def test_servers_never_share_a_directory(names: tuple[str, str]) -> None:
    first, second = (server_dir_name(n) for n in names)
    assert first != second


@pytest.mark.parametrize("name", ["..", ".", "../..", "a/../b", "/etc", ".hidden", "a b\nc"])
def test_no_name_leaves_the_parent_or_hides(name: str) -> None:
    result = server_dir_name(name)
    assert "/" not in result and "\n" not in result
    assert not result.startswith(".")
    assert result not in ("", "default")
