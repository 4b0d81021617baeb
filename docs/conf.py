"""Sphinx configuration of the batchhub documentation.

Build: ``.venv/bin/pip install -e '.[docs]'`` then
``.venv/bin/sphinx-build -W --keep-going -b html docs build/docs/html``.
The configuration reference (docs/reference/config.md) is generated at
build time from the traits of every configurable class, by the extension
in docs/_ext/batchhub_config.py.
"""

from __future__ import annotations

import sys
from importlib.metadata import version as _version
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent / "_ext"))

project = "batchhub"
author = "batchhub contributors"
copyright = "batchhub contributors"
release = _version("batchhub")
version = ".".join(release.split(".")[:2])

extensions = [
    "myst_parser",
    "sphinx_copybutton",
    "batchhub_config",
]

source_suffix = {".md": "markdown"}
root_doc = "index"
exclude_patterns = ["_build", "Thumbs.db", ".DS_Store"]

myst_enable_extensions = ["colon_fence", "deflist"]
# Markdown links to a heading (spawner.md#running-the-hub-unprivileged-...)
# resolve like GitHub's, so the pages read the same there and here.
myst_heading_anchors = 3

html_theme = "pydata_sphinx_theme"
html_title = "batchhub"
html_theme_options = {
    "navbar_align": "left",
    "header_links_before_dropdown": 6,
    "show_toc_level": 2,
    "navigation_with_keys": False,
    "secondary_sidebar_items": ["page-toc"],
}
html_show_sourcelink = False
