"""Sphinx extension: the configuration reference, generated from the traits.

```{batchhub-config}
```

renders every configurable class (see :func:`discover`), and

```{batchhub-config} batchhub.runner.CommandRunner
```

one class. Each class gets a section labelled ``config-<class>`` (lower
case, e.g. ``config-sgebackend``), and each option an entry that the role
``{configtrait}`SGEBackend.pe``` links to, with its type, default and help.

The pure part (:func:`discover`, :func:`trait_docs`) needs no Sphinx; the
tests in ``tests/docs`` call it and :func:`class_section` directly.
"""

from __future__ import annotations

import ast
import importlib
import inspect
import pkgutil
import re
import textwrap
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from docutils import nodes
from traitlets import Enum, TraitType
from traitlets.config import Configurable

#: Packages of batchhub itself whose modules are searched for configurables;
#: the packages of every registered backend are searched too.
CORE_PACKAGES = ("batchhub",)
#: Subpackages not searched: the conformance kit imports pytest and holds
#: no configurable.
SKIP_PACKAGES = ("batchhub.testing",)

#: Where the options a class inherits from JupyterHub are documented.
FOREIGN_DOCS = {
    "jupyterhub.spawner.Spawner": "https://jupyterhub.readthedocs.io/en/stable/reference/api/spawner.html",
}

OBJECT_TYPE = "configtrait"


@dataclass(frozen=True)
class TraitDoc:
    """One configurable option as the reference shows it."""

    cls: str  # the class it is set on: "SGEBackend"
    name: str  # "pe"
    type: str  # "Unicode", "Enum ('', 'e', 'w')"
    default: str  # "'smp'", or a description of a computed default
    help: str  # the help text, dedented
    owner: str  # dotted path of the class that declares the trait
    inherited_from: str | None  # documented parent class name that declares it, if not cls
    foreign: bool  # declared outside the documented classes (JupyterHub's Spawner)
    upstream_default: str | None = None  # the declaring class's default, where cls changes it

    @property
    def setting(self) -> str:
        return f"c.{self.cls}.{self.name}"

    @property
    def key(self) -> str:
        return f"{self.cls}.{self.name}"


# -- discovery ------------------------------------------------------------


def _modules(package: str) -> Iterable[str]:
    root = importlib.import_module(package)
    yield package
    path = getattr(root, "__path__", None)
    if path is None:
        return
    for info in pkgutil.walk_packages(path, prefix=package + "."):
        if any(info.name == s or info.name.startswith(s + ".") for s in SKIP_PACKAGES):
            continue
        yield info.name


def _configurables_in(module_name: str) -> list[type[Configurable]]:
    module = importlib.import_module(module_name)
    found = []
    for _, obj in inspect.getmembers(module, inspect.isclass):
        if obj.__module__ == module_name and issubclass(obj, Configurable) and obj.class_traits(config=True):
            found.append(obj)
    return found


def backend_classes() -> dict[str, type[Configurable]]:
    """Every backend the installed plugins register, by name."""
    from batchhub.plugins import get_registry

    return dict(get_registry().backends)


def discover() -> list[type[Configurable]]:
    """Every configurable class a site can set options on: each traitlets
    ``Configurable`` with a config trait in the batchhub package and in the
    package of each registered backend (plugins included), in reading
    order: the spawner, the other core classes, the backend base, then
    each backend by name."""
    from jupyterhub.spawner import Spawner

    from batchhub.backend import Backend

    backends = backend_classes()
    packages = list(CORE_PACKAGES)
    for cls in backends.values():
        top = cls.__module__.split(".")[0]
        if top not in packages:
            packages.append(top)
    classes: dict[type, None] = {}
    for package in packages:
        for module in _modules(package):
            for cls in _configurables_in(module):
                classes[cls] = None
    for cls in backends.values():
        classes[cls] = None
    by_backend_name = {cls: name for name, cls in backends.items()}

    def order(cls: type) -> tuple:
        if issubclass(cls, Spawner):
            group = 0
        elif cls is Backend:
            group = 2
        elif issubclass(cls, Backend):
            group = 3
        else:
            group = 1
        return (group, by_backend_name.get(cls, "~"), cls.__name__)

    return sorted(classes, key=order)


# -- what each trait says ---------------------------------------------------


def dotted(cls: type) -> str:
    return f"{cls.__module__}.{cls.__qualname__}"


def _returned(func: Any) -> ast.expr | None:
    """The expression a one-statement ``return X`` function returns."""
    try:
        tree = ast.parse(textwrap.dedent(inspect.getsource(func)))
    except (OSError, TypeError, SyntaxError):
        return None
    body = tree.body[0].body if tree.body and isinstance(tree.body[0], ast.FunctionDef) else []
    if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant):
        body = body[1:]  # the docstring
    if len(body) == 1 and isinstance(body[0], ast.Return) and body[0].value is not None:
        return body[0].value
    return None


def default_text(cls: type[Configurable], name: str, trait: TraitType) -> str:
    """The default as the class has it. A dynamic default (``@default``)
    that returns a constant shows the constant; one that returns an
    expression shows it (never its value on the machine that builds the
    docs); anything else is said to be computed."""
    generator = next(
        (
            k.__dict__["_trait_default_generators"][name]
            for k in cls.__mro__
            if name in k.__dict__.get("_trait_default_generators", {})
        ),
        None,
    )
    func = getattr(generator, "func", None)
    if func is None:
        shown = trait.default_value_repr()
        return "unset" if shown == "traitlets.Undefined" else shown
    expr = _returned(func)
    uses_self = expr is not None and any(isinstance(n, ast.Name) and n.id == "self" for n in ast.walk(expr))
    if expr is not None and not uses_self:
        try:
            return repr(ast.literal_eval(expr))
        except ValueError:
            if not isinstance(expr, ast.Lambda):
                return f"computed: {ast.unparse(expr)}"
    doc = inspect.getdoc(func)
    return "computed at run time" + (f": {doc.splitlines()[0]}" if doc else "")


def type_text(trait: TraitType) -> str:
    kind = type(trait).__name__
    if isinstance(trait, Enum) and trait.values is not None:
        kind += " of " + ", ".join(repr(v) for v in trait.values)
    return kind


def trait_docs(cls: type[Configurable], documented: Iterable[type] = ()) -> list[TraitDoc]:
    """Every config trait of ``cls`` (its own and inherited), by name."""
    documented = set(documented)
    out = []
    for name, trait in sorted(cls.class_traits(config=True).items()):
        owner = next(k for k in cls.__mro__ if name in vars(k))
        inherited_from = owner.__name__ if owner is not cls and owner in documented else None
        foreign = owner is not cls and owner not in documented and not dotted(owner).startswith("batchhub")
        default = default_text(cls, name, trait)
        upstream = default_text(owner, name, trait) if owner is not cls else None
        out.append(
            TraitDoc(
                cls=cls.__name__,
                name=name,
                type=type_text(trait),
                default=default,
                help=inspect.cleandoc(trait.help or ""),
                owner=dotted(owner),
                inherited_from=inherited_from,
                foreign=foreign,
                upstream_default=upstream if upstream != default else None,
            )
        )
    return out


# -- rendering --------------------------------------------------------------

# ``literal``, `literal`, and an RST role's `target` (:attr:`x`)
_INLINE = re.compile(r"(?::[\w:.-]+:)?``(.+?)``|(?::[\w:.-]+:)?`([^`]+)`")


def inline(text: str) -> list[nodes.Node]:
    """Text with its backquoted parts as literals; nothing else is markup."""
    out: list[nodes.Node] = []
    pos = 0
    for m in _INLINE.finditer(text):
        if m.start() > pos:
            out.append(nodes.Text(text[pos : m.start()]))
        out.append(nodes.literal(text=m.group(1) or m.group(2)))
        pos = m.end()
    if pos < len(text):
        out.append(nodes.Text(text[pos:]))
    return out


def paragraphs(help_text: str, first_only: bool = False) -> list[nodes.paragraph]:
    blocks = [b for b in re.split(r"\n\s*\n", help_text) if b.strip()]
    if first_only:
        blocks = blocks[:1]
    return [nodes.paragraph("", "", *inline(" ".join(textwrap.dedent(b).split()))) for b in blocks]


def node_id(key: str) -> str:
    return "c-" + nodes.make_id(key)


def section_label(cls: type) -> str:
    return f"config-{cls.__name__.lower()}"


def _entry(doc: TraitDoc, with_help: bool = True) -> nodes.definition_list_item:
    term = nodes.term("", "", nodes.literal(text=doc.setting))
    term["ids"].append(node_id(doc.key))
    meta = nodes.paragraph("", "", nodes.emphasis(text=doc.type), nodes.Text(", default "))
    if doc.default.startswith("computed"):
        meta += nodes.Text(doc.default)
    else:
        meta += nodes.literal(text=doc.default)
    if doc.upstream_default is not None:
        meta += nodes.Text(f" (changed by {doc.cls}; {doc.owner.rsplit('.', 1)[-1]}'s is ")
        meta += nodes.literal(text=doc.upstream_default)
        meta += nodes.Text(")")
    body = nodes.definition("", meta)
    if doc.inherited_from:
        body += nodes.paragraph(
            "",
            "",
            nodes.Text("Declared on "),
            nodes.literal(text=f"c.{doc.inherited_from}"),
            nodes.Text(f": setting c.{doc.inherited_from}.{doc.name} sets it for every subclass."),
        )
    if with_help:
        body.extend(paragraphs(doc.help, first_only=doc.foreign) or [nodes.paragraph(text="(no help)")])
    return nodes.definition_list_item("", term, body)


def _summary(cls: type) -> str:
    doc = inspect.getdoc(cls) or ""
    return " ".join(doc.split("\n\n")[0].split())


def class_section(cls: type[Configurable], documented: Iterable[type] = ()) -> nodes.section:
    """The section of one class: its own options and inherited batchhub
    ones in full, JupyterHub's options it inherits (first paragraph of
    their help) in a subsection of their own."""
    from batchhub.backend import Backend

    docs = trait_docs(cls, documented)
    label = section_label(cls)
    section = nodes.section(ids=[label], names=[label])
    section += nodes.title("", "", nodes.literal(text=f"c.{cls.__name__}"))
    intro = nodes.paragraph("", "", nodes.literal(text=dotted(cls)))
    name = getattr(cls, "name", "") if issubclass(cls, Backend) else ""
    if name:
        intro += nodes.Text(" (backend ")
        intro += nodes.literal(text=name)
        intro += nodes.Text(")")
    summary = _summary(cls)
    if summary:
        intro += nodes.Text(": ")
        intro.extend(inline(summary))
    section += intro
    own = [d for d in docs if not d.foreign]
    foreign = [d for d in docs if d.foreign]
    if own:
        section += nodes.definition_list("", *(_entry(d) for d in own))
    by_owner: dict[str, list[TraitDoc]] = {}
    for d in foreign:
        by_owner.setdefault(d.owner, []).append(d)
    for owner, group in by_owner.items():
        sub_label = f"{label}-{owner.rsplit('.', 1)[-1].lower()}"
        sub = nodes.section(ids=[sub_label], names=[sub_label])
        sub += nodes.title("", f"Inherited from {owner}")
        lead = nodes.paragraph(
            "", f"{cls.__name__} takes these options of {owner} too; the first paragraph of each help is "
        )
        url = FOREIGN_DOCS.get(owner)
        if url:
            lead += nodes.Text("shown, the rest is in ")
            lead += nodes.reference("", "its own reference", refuri=url)
            lead += nodes.Text(".")
        else:
            lead += nodes.Text("shown.")
        sub += lead
        sub += nodes.definition_list("", *(_entry(d) for d in group))
        section += sub
    return section


# -- Sphinx glue ------------------------------------------------------------


def _resolve(path: str) -> type:
    module, _, name = path.rpartition(".")
    return getattr(importlib.import_module(module), name)


def setup(app: Any) -> dict[str, Any]:
    from sphinx.util.docutils import SphinxDirective

    class BatchhubConfig(SphinxDirective):
        """``{batchhub-config} [dotted.Class ...]``: the reference of the
        classes named, or of every discovered class."""

        optional_arguments = 20
        has_content = False

        def run(self) -> list[nodes.Node]:
            everything = discover()
            classes = [_resolve(p) for p in self.arguments] or everything
            std = self.env.domains["std"] if hasattr(self.env, "domains") else self.env.get_domain("std")
            out = []
            for cls in classes:
                section = class_section(cls, everything)
                self.state.document.note_explicit_target(section)
                for sub in section.findall(nodes.section):
                    if sub is not section:
                        self.state.document.note_explicit_target(sub)
                for term in section.findall(nodes.term):
                    setting = term.astext()  # "c.SGEBackend.pe": the role takes "SGEBackend.pe"
                    std.note_object(OBJECT_TYPE, setting[2:], term["ids"][0], location=self.get_location())
                out.append(section)
            return out

    app.add_object_type(OBJECT_TYPE, OBJECT_TYPE, objname="configuration option")
    app.add_directive("batchhub-config", BatchhubConfig)
    return {"version": "1", "parallel_read_safe": True, "parallel_write_safe": True}
