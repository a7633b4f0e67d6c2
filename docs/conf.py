"""Sphinx configuration of the documentation site: ``make docs``.

The source directory is the repository root (``sphinx-build -c docs . OUT``),
so that every relative link written for the repository (``../BENCHMARKS.md``
from ``docs/benchmarks.md``, ``docs/benchmarks/scan.png`` from
``BENCHMARKS.md``) resolves in the site as it does when the files are read
on their own.  Only ``docs/`` and ``BENCHMARKS.md`` are pages.  Why Sphinx
and MyST: ``docs/about.md``.
"""

from __future__ import annotations

import ast
import importlib
import importlib.util
import re
from pathlib import Path
from typing import Any

from sphinx.application import Sphinx
from sphinx.pycode import ModuleAnalyzer

project = "ssshelf"
author = "the ssshelf authors"
copyright = "the ssshelf authors"

extensions = ["myst_parser", "sphinx.ext.autodoc"]
root_doc = "docs/index"
source_suffix = {".md": "markdown", ".rst": "restructuredtext"}
include_patterns = ["docs/**", "BENCHMARKS.md"]
# Not pages; excluded so that the build does not walk them.
exclude_patterns = [".*", "build", "dist", "src", "tests", "benchmarks", "examples", "scripts"]

# Every cross-reference must resolve: with ``-W`` a broken one fails the build.
nitpicky = True
nitpick_ignore_regex = [
    # Names outside ssshelf (the standard library's, a dependency's): the
    # build is offline, so there is no inventory of them to link to.
    (r"py:.*", r"(?!ssshelf\.)[a-z_]\w*(\.\S+)+"),
    (r"py:.*", r"[a-z_]\w*\[.*"),  # a generic alias split by the signature parser
    # Type variables (T, M_co, …) of generic signatures.
    (r"py:.*", r"(ssshelf(\.\w+)*\.)?[A-Z][A-Z0-9]?(_co|_contra)?"),
]
# Classes that appear in signatures but are internals, not part of the reference.
nitpick_ignore = [
    ("py:class", name)
    for name in (
        "ssshelf.blocking._loop_thread.LoopThread",
        "ssshelf.blocking._manager.Item",
        "ssshelf.known.KnownVersions",
        "ssshelf.layout.Layout",
        "ssshelf.planning.Planner",
        "ssshelf.reading.ItemReader",
        "ssshelf.reading.VerifiedPage",
        "ssshelf.testing.sim.history.History",
        "ssshelf.testing.sim.report.Summary",
        "ssshelf.testing.sim.trace.Trace",
        "ssshelf.testing.sim.workload.SimManager",
        "ssshelf.writes.Writer",
    )
]

myst_heading_anchors = 3

autoclass_content = "both"
autodoc_member_order = "bysource"
autodoc_default_options = {"members": True, "undoc-members": True, "show-inheritance": True}

html_theme = "alabaster"
html_title = "ssshelf"
html_show_sphinx = False
html_theme_options = {
    "description": "An object store used like a database",
    "show_powered_by": False,
    "fixed_sidebar": True,
    "page_width": "1240px",  # room for 100-column code
    "sidebar_width": "250px",
    "body_max_width": "none",
}
html_extra_path = ["site-root"]  # index.html: the site's root leads to docs/index.html


def reexported_constant_doc(
    app: Sphinx, what: str, name: str, obj: Any, options: Any, lines: list[str]
) -> None:
    """Document a constant a package re-exports with the ``#:`` comment where
    it is defined (autodoc looks in the package, and finds the type's docstring)."""
    if what != "data":
        return
    package, _, attr = name.rpartition(".")
    source = importlib.import_module(package).__file__
    if source is None:
        return
    with open(source, encoding="utf-8") as file:
        tree = ast.parse(file.read())
    for node in tree.body:
        if isinstance(node, ast.ImportFrom) and any(a.name == attr for a in node.names):
            defining = importlib.util.resolve_name("." * node.level + (node.module or ""), package)
            docs = ModuleAnalyzer.for_module(defining).find_attr_docs()
            if ("", attr) in docs:
                lines[:] = list(docs["", attr])
            return


#: A page named in a docstring as it is named in the repository: ``docs/cli.md``.
_PAGE_NAMED = re.compile(r"``(docs/[\w/-]+)\.md``")


def link_named_pages(
    app: Sphinx, what: str, name: str, obj: Any, options: Any, lines: list[str]
) -> None:
    """Make ``docs/x.md`` in a docstring (the path, as read in the source) a link
    to that page of the site; a path naming no page stays as it is."""
    root = Path(app.srcdir)

    def link(found: re.Match[str]) -> str:
        page = found.group(1)
        if not (root / f"{page}.md").is_file():
            return found.group(0)
        return f":doc:`{page}.md </{page}>`"

    lines[:] = [_PAGE_NAMED.sub(link, line) for line in lines]


def drop_object_base(app: Sphinx, name: str, obj: Any, options: Any, bases: list[Any]) -> None:
    """No "Bases: object" line: every class has that base."""
    if bases == [object]:
        bases.clear()


def setup(app: Sphinx) -> None:
    app.connect("autodoc-process-docstring", reexported_constant_doc)
    app.connect("autodoc-process-docstring", link_named_pages)
    app.connect("autodoc-process-bases", drop_object_base)
