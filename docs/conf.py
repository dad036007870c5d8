"""Sphinx configuration of djjobs' documentation (``make docs``; sources are MyST Markdown)."""

import os
import sys
from importlib.metadata import version as package_version
from pathlib import Path

import django

DOCS = Path(__file__).resolve().parent
ROOT = DOCS.parent
# The repository root (djjobs and tests.settings import from it) and the local extensions.
sys.path[:0] = [str(ROOT), str(DOCS / "_ext")]

# autodoc imports djjobs, whose modules need Django's settings and app registry: the test
# suite's settings install djjobs and never touch the database at import time.
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tests.settings")
django.setup()

project = "djjobs"
author = "djjobs contributors"
copyright = "djjobs contributors"
release = version = package_version("djjobs")

extensions = [
    "myst_parser",
    "sphinx.ext.autodoc",
    "commands",  # docs/_ext/commands.py: the management commands, from their argparse parsers
]

source_suffix = {".md": "markdown"}
root_doc = "index"
exclude_patterns = ["_build", "Thumbs.db", ".DS_Store"]

# MyST: "#anchor" links to headings down to ###, as GitHub renders them.
myst_heading_anchors = 3
myst_enable_extensions = ["colon_fence", "deflist"]

# autodoc: documented in source order; type hints in the description, not the signature.
autodoc_member_order = "bysource"
autodoc_typehints = "description"
autodoc_default_options = {"members": True}

# Warnings are errors (make docs: -W), and every cross-reference must resolve (nitpicky), except
# those to the standard library's and Django's (or the backport's) classes that autodoc writes from type hints:
# intersphinx would resolve them, but it downloads Python's and Django's inventories at each
# build, which fails (a warning, so an error) on a machine without network access.
nitpicky = True
nitpick_ignore_regex = [
    ("py:class", r"(collections\.abc|datetime|django|django_tasks|uuid)\..+"),
    ("py:class", r"~?[A-Z]"),  # the type variables of the backport's generic Task (Django 5.2)
    ("py:class", r"djjobs\.\w+(\.\w+)*\._\w+"),  # private type variables (a decorator's _T)
    # Names the lazy wrappers of djjobs/__init__.py annotate as strings (documented on their pages:
    # operations.Answer in the API reference, events.Published in named events).
    ("py:class", r"(Answer|Published)"),
]

html_theme = "furo"
html_title = f"djjobs {release}"
html_static_path = ["_static"]
html_css_files = ["custom.css"]
