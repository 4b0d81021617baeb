"""Each server's private directory name: distinct per server, inside ~/.batchhub."""

from __future__ import annotations

import re

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from batchhub.workdir import server_dir_name


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


def test_a_name_shaped_like_another_servers_directory_gets_its_own() -> None:
    # "a b" once became "a_b-c8687a08": exactly the plain name a user may pick
    assert server_dir_name("a b") != server_dir_name("a_b-c8687a08")
    for name in ("a b", "default", ".x", "é", "a/b", "a+b"):
        directory = server_dir_name(name)
        assert server_dir_name(directory) != directory, name


def test_plain_names_stay_as_they_are() -> None:
    for name in ("gpu", "gpu-run-1", "GPU_2", "a.b", "x-y-z", "run-20240501", "a_b-c8687a08"):
        assert server_dir_name(name) == name


def decode(directory: str) -> str:
    """The server name a directory belongs to: the left inverse that makes
    ``server_dir_name`` injective."""
    if directory == "default":
        return ""
    if "+" not in directory:
        return directory  # a plain name is its own directory
    assert re.search(r"-\+[0-9a-f]{8}$", directory), directory
    body, out, i = directory[:-10], bytearray(), 0
    while i < len(body):
        if body[i] == "+":
            out.append(int(body[i + 1 : i + 3], 16))
            i += 3
        else:
            out += body[i].encode()
            i += 1
    return out.decode("utf-8", "surrogatepass")


#: Names a user may type, biased toward the awkward ones: escapes, dots,
#: slashes, the digest's shape, and directory names used as server names.
awkward = st.text(alphabet=st.sampled_from(list("ab_-./ +é0123456789cdef\n")), max_size=24)
names = st.one_of(st.text(), awkward, awkward.map(server_dir_name), st.just("default"))


@given(names, names)
@settings(max_examples=500)
def test_two_server_names_never_share_a_directory(first: str, second: str) -> None:
    assume(first != second)
    assert server_dir_name(first) != server_dir_name(second)


@given(names)
@settings(max_examples=500)
def test_a_directory_name_as_a_server_name_is_another_directory(name: str) -> None:
    directory = server_dir_name(name)
    if directory != name:
        assert server_dir_name(directory) != directory


@given(names)
@settings(max_examples=500)
def test_each_directory_names_exactly_one_server(name: str) -> None:
    directory = server_dir_name(name)
    assert decode(directory) == name
    assert "/" not in directory and not directory.startswith(".")
    assert directory.isascii() and directory.isprintable()
