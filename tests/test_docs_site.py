"""The documentation site (``make docs``) builds with warnings as errors, offline,
and its API reference covers the public surface.

The build is the one ``make docs`` runs (``docs/conf.py``), into a temporary
directory.  With ``-W`` and nitpicky mode a broken link, anchor or
cross-reference, a page in no table of contents, or a docstring that is not
valid reST fails it; the examples on the pages are run by
``tests/test_docs_examples.py``.
"""

from __future__ import annotations

import importlib
import inspect
import os
import re
import subprocess
import sys
import zlib
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parent.parent

#: Modules whose public names the reference documents: ``__all__`` where a
#: module has one, else the classes and functions it defines.
PUBLIC_MODULES = [
    "ssshelf",
    "ssshelf.errors",
    "ssshelf.managers",
    "ssshelf.collections",
    "ssshelf.keys",
    "ssshelf.items",
    "ssshelf.items.json_types",
    "ssshelf.utils",
    "ssshelf.storages",
    "ssshelf.storages.base",
    "ssshelf.storages.common",
    "ssshelf.storages.url",
    "ssshelf.storages.inmemory",
    "ssshelf.storages.sqlite",
    "ssshelf.storages.s3",
    "ssshelf.storages.cached",
    "ssshelf.storages.retrying",
    "ssshelf.storages.wrapper",
    "ssshelf.blocking",
    "ssshelf.testing",
    "ssshelf.testing.sim",
]

#: A port nothing listens on: any attempt of the build to fetch something fails.
_NOWHERE = "http://127.0.0.1:9"


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """The built site (HTML), built once for this module's tests."""
    out = tmp_path_factory.mktemp("site")
    env = {**os.environ, "NO_PROXY": "", "no_proxy": ""}
    for proxy in ("http_proxy", "https_proxy", "HTTP_PROXY", "HTTPS_PROXY"):
        env[proxy] = _NOWHERE
    build = ["-W", "--keep-going", "-q", "-c", "docs", "-d", str(out / "doctrees")]
    done = subprocess.run(
        [sys.executable, "-m", "sphinx", *build, ".", str(out / "html")],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert done.returncode == 0 and not done.stderr, done.stderr
    yield out / "html"


def test_every_page_is_built(site: Path) -> None:
    pages = sorted(ROOT.glob("docs/**/*.md")) + sorted(ROOT.glob("docs/api/*.rst"))
    assert len(pages) >= 30
    for page in pages:
        built = site / page.relative_to(ROOT).with_suffix(".html")
        assert built.is_file(), built
    assert (site / "BENCHMARKS.html").is_file()
    assert "docs/index.html" in (site / "index.html").read_text()


def test_the_site_loads_nothing_from_elsewhere(site: Path) -> None:
    remote = re.compile(r"""(<(script|img|link|iframe)\b[^>]*\b(src|href)=["']?(https?:)?//)""")
    for page in site.rglob("*.html"):
        assert not remote.search(page.read_text()), page
    for sheet in site.rglob("*.css"):
        assert not re.search(r"url\(\s*['\"]?(https?:)?//", sheet.read_text()), sheet


def test_the_sidebar_names_each_page_once(site: Path) -> None:
    """Two pages with one title in the navigation read as the same page listed twice."""
    html = (site / "docs" / "index.html").read_text()
    sidebar = html[html.index('class="sphinxsidebar"') :]
    pages: dict[str, set[str]] = {}
    for href, text in re.findall(
        r'<a class="reference internal" href="([^"#]+)">(.*?)</a>', sidebar
    ):
        pages.setdefault(re.sub(r"<[^>]+>", "", text).strip(), set()).add(href)
    assert len(pages) >= 30
    twice = {title: sorted(hrefs) for title, hrefs in pages.items() if len(hrefs) > 1}
    assert not twice, twice


#: What the manager builds for itself and what its collections call: not API.
MANAGER_INTERNALS = {
    "reader",
    "planner",
    "writer",
    "known",
    "layout",
    "verified_page",
    "verified_items",
    "item_by_unique",
}


@pytest.mark.parametrize(
    ("page", "cls"),
    [("managers", "ssshelf.managers.CManager"), ("blocking", "ssshelf.blocking.SyncManager")],
)
def test_the_manager_page_shows_the_public_api_only(site: Path, page: str, cls: str) -> None:
    html = (site / "docs" / "api" / f"{page}.html").read_text()
    members = set(re.findall(rf'<dt class="sig sig-object py" id="{re.escape(cls)}\.(\w+)"', html))
    assert not members & MANAGER_INTERNALS, sorted(members & MANAGER_INTERNALS)
    public = {"get_item", "add_item", "create_item", "update_item", "remove_item", "add_items"}
    assert public | {"check", "repair", "reindex", "close"} <= members, sorted(members)


def test_a_page_named_by_its_path_is_a_link(site: Path) -> None:
    """``docs/x.md`` written in a page or a docstring becomes a link to that page."""
    literal = re.compile(
        r'<code class="docutils literal notranslate"><span class="pre">(docs/[\w/-]+\.md)</span>'
    )
    unlinked = [
        f"{page.relative_to(site)}: {named}"
        for page in site.rglob("*.html")
        for named in literal.findall(re.sub(r"<a\b.*?</a>", "", page.read_text(), flags=re.S))
        if (ROOT / named).is_file()
    ]
    assert not unlinked, unlinked
    managers = (site / "docs" / "api" / "managers.html").read_text()
    assert '<a class="reference internal" href="../consistency.html">' in managers


def test_the_reference_documents_every_public_name(site: Path) -> None:
    documented = {id(obj): obj for obj in documented_objects(site / "objects.inv")}
    missing = [
        f"{module.__name__}.{name}"
        for module in map(importlib.import_module, PUBLIC_MODULES)
        for name in public_names(module)
        if id(getattr(module, name)) not in documented
    ]
    assert not missing, "not in the API reference (docs/api/*.rst): " + ", ".join(missing)


def test_the_package_page_lists_what_import_ssshelf_gives() -> None:
    import ssshelf

    page = (ROOT / "docs" / "api" / "ssshelf.rst").read_text()
    missing = [n for n in ssshelf.__all__ if not re.search(rf"[.`]{n}`", page)]
    assert not missing, missing


def test_public_classes_and_functions_say_what_they_do() -> None:
    silent = [
        f"{module.__name__}.{name}"
        for module in map(importlib.import_module, PUBLIC_MODULES)
        for name in public_names(module)
        if (inspect.isclass(obj := getattr(module, name)) or inspect.isfunction(obj))
        and not inspect.getdoc(obj)
    ]
    assert not silent, silent


def public_names(module: ModuleType) -> list[str]:
    names = getattr(module, "__all__", None)
    if names is not None:
        return list(names)
    return [
        name
        for name, obj in vars(module).items()
        if not name.startswith("_")
        and (inspect.isclass(obj) or inspect.isfunction(obj))
        and obj.__module__ == module.__name__
    ]


def documented_objects(inventory: Path) -> Iterator[Any]:
    """The Python objects a Sphinx inventory (``objects.inv``) describes."""
    lines = inventory.read_bytes().split(b"\n", 4)
    assert lines[0] == b"# Sphinx inventory version 2", lines[0]
    for line in zlib.decompress(lines[4]).decode().splitlines():
        name, role = line.split(" ", 2)[:2]
        if role.startswith("py:") and role != "py:module":
            found = resolve(name)
            if found is not None:
                yield found


def resolve(dotted: str) -> Any:
    """The object a dotted name names, or ``None``."""
    parts = dotted.split(".")
    for cut in range(len(parts), 0, -1):
        try:
            obj: Any = importlib.import_module(".".join(parts[:cut]))
        except ImportError:
            continue
        for attr in parts[cut:]:
            obj = getattr(obj, attr, None)
        return obj
    return None
