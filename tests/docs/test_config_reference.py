"""The generated configuration reference (docs/_ext/batchhub_config.py)
lists every option of every configurable class, so a new option cannot be
left out of the docs. These tests call the generator directly: no Sphinx
build."""

from __future__ import annotations

import importlib
import pkgutil
import sys
from pathlib import Path

import pytest
from traitlets.config import Configurable

from batchhub.testing import missing

DOCS = Path(__file__).resolve().parents[2] / "docs"

try:
    import docutils  # the docs extra: pip install -e '.[docs]'
except ImportError:
    docutils = None


@pytest.fixture(scope="module")
def ext():
    if docutils is None:
        missing("docutils (pip install -e '.[docs]')")
    sys.path.insert(0, str(DOCS / "_ext"))
    try:
        yield importlib.import_module("batchhub_config")
    finally:
        sys.path.remove(str(DOCS / "_ext"))


@pytest.fixture(scope="module")
def classes(ext):
    return ext.discover()


def _all_subclasses(cls: type) -> set[type]:
    out = set()
    for sub in cls.__subclasses__():
        out |= {sub} | _all_subclasses(sub)
    return out


def test_every_configurable_is_found(ext, classes):
    from batchhub import monitor
    from batchhub.backend import Backend
    from batchhub.plugins import get_registry
    from batchhub.resources import ResourceForm
    from batchhub.runner import CommandRunner
    from batchhub.spawner import BatchSpawner

    must = {BatchSpawner, ResourceForm, CommandRunner, Backend, *get_registry().backends.values()}
    if issubclass(monitor.JobMonitor, Configurable):
        must.add(monitor.JobMonitor)
    assert must <= set(classes)
    # and any other Configurable with options that batchhub's modules define
    for info in pkgutil.walk_packages(importlib.import_module("batchhub").__path__, prefix="batchhub."):
        if not info.name.startswith("batchhub.testing"):
            importlib.import_module(info.name)
    defined = {
        c
        for c in _all_subclasses(Configurable)
        if c.__module__.split(".")[0] == "batchhub" and c.class_traits(config=True)
    }
    assert defined <= set(classes), (
        f"not in the reference: {sorted(c.__name__ for c in defined - set(classes))}"
    )


def test_the_reference_lists_every_config_trait(ext, classes):
    for cls in classes:
        section = ext.class_section(cls, classes)
        settings = {term.astext() for term in section.findall(ext.nodes.term)}
        expected = {f"c.{cls.__name__}.{name}" for name in cls.class_traits(config=True)}
        assert settings == expected, cls.__name__


def test_each_option_shows_type_default_and_help(ext, classes):
    from batchhub.backend import Backend

    for cls in classes:
        for doc in ext.trait_docs(cls, classes):
            trait = cls.class_traits()[doc.name]
            assert doc.type.startswith(type(trait).__name__)
            assert doc.default
            if doc.owner == ext.dotted(cls):
                assert doc.help, f"c.{doc.key} has no help string"
            if issubclass(cls, Backend) and cls is not Backend and doc.name in Backend.class_own_traits():
                assert doc.inherited_from == "Backend"


def test_a_default_is_never_this_machines_value(ext):
    from batchhub_fake.backend import FakeBackend

    docs = {d.name: d for d in ext.trait_docs(FakeBackend)}
    assert docs["python"].default == "computed: sys.executable"
    assert sys.executable not in docs["python"].default


def test_a_changed_jupyterhub_default_says_so(ext):
    from batchhub.spawner import BatchSpawner

    docs = {d.name: d for d in ext.trait_docs(BatchSpawner)}
    assert docs["ip"].foreign
    assert docs["ip"].default == "'0.0.0.0'"
    assert docs["ip"].upstream_default == "'127.0.0.1'"
    assert not docs["backend"].foreign


def test_a_new_option_appears_without_editing_the_docs(ext):
    from traitlets import Int

    from batchhub.backend import Backend

    class ToyBackend(Backend):
        """A backend made up for this test."""

        name = "toy"
        answers = Int(7, help="How many answers.").tag(config=True)

    section = ext.class_section(ToyBackend, [Backend])
    text = section.astext()
    assert "c.ToyBackend.answers" in text
    assert "How many answers." in text
    assert "c.ToyBackend.command_timeout" in text  # inherited from Backend
