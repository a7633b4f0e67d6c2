"""The HTML pages.  Every value that reaches the markup goes through :func:`esc`.

Templates live in ``templates/`` and use ``string.Template`` placeholders;
each placeholder receives either escaped text or a fragment built here from
escaped text, so no stored or submitted value is ever emitted raw.
"""

from __future__ import annotations

from datetime import datetime
from html import escape
from pathlib import Path
from string import Template
from urllib.parse import quote

from .links import Page, public_code
from .manager import Link

_TEMPLATES = Path(__file__).with_name("templates")


def _template(name: str) -> Template:
    return Template((_TEMPLATES / name).read_text(encoding="utf-8"))


_PAGE = _template("page.html")
_INDEX = _template("index.html")
_NOT_FOUND = _template("not_found.html")


def esc(value: object) -> str:
    """Text safe in HTML content and in double- or single-quoted attributes."""
    return escape(str(value), quote=True)


def _page(title: str, body: str) -> str:
    return _PAGE.substitute(title=esc(title), body=body)


def _when(iso: str) -> str:
    try:
        return datetime.fromisoformat(iso).strftime("%Y-%m-%d %H:%M UTC")
    except ValueError:
        return iso


def created_box(short_url: str, link: Link) -> str:
    """The box showing a new short link with its copy button."""
    return (
        '<div class="result" id="created">'
        f'<a id="short-link" href="{esc(short_url)}">{esc(short_url)}</a>'
        f'<button type="button" class="secondary" data-copy="{esc(short_url)}">Copy</button>'
        f'<span class="hint">→ {esc(link["url"])}</span>'
        "</div>"
    )


def error_box(message: str) -> str:
    return f'<div class="error" role="alert" id="error">{esc(message)}</div>'


def recent_table(base: str, page: Page, after: str | None) -> str:
    """The recent-links table with its pager."""
    if not page.links:
        return '<p class="empty">No links yet: shorten the first one above.</p>'
    rows = []
    for link in page.links:
        code = public_code(link)
        short = base + code
        rows.append(
            "<tr>"
            f'<td><a href="{esc(short)}">{esc(code)}</a></td>'
            f'<td class="target" title="{esc(link["url"])}">{esc(link["url"])}</td>'
            f'<td class="num">{int(link.get("clicks", 0))}</td>'
            f"<td>{esc(_when(link['created_at']))}</td>"
            "</tr>"
        )
    pager = ['<nav class="pager">']
    pager.append('<a href="/">« Newest</a>' if after else "<span></span>")
    if page.after:
        pager.append(f'<a href="/?after={esc(quote(page.after, safe=""))}" rel="next">Older »</a>')
    pager.append("</nav>")
    return (
        '<table id="recent"><thead><tr><th>Link</th><th>Target</th>'
        '<th class="num">Clicks</th><th>Created</th></tr></thead><tbody>'
        + "".join(rows)
        + "</tbody></table>"
        + "".join(pager)
    )


def index_page(
    *,
    base: str,
    recent: str,
    message: str = "",
    url: str = "",
    alias: str = "",
) -> str:
    """The home page: the form (with ``url``/``alias`` kept after an error),
    a message box (``created_box``/``error_box``), and the recent list."""
    body = _INDEX.substitute(
        base=esc(base), url=esc(url), alias=esc(alias), message=message, recent=recent
    )
    return _page("shelf.link — short links", body)


def not_found_page(code: str) -> str:
    return _page("No such link", _NOT_FOUND.substitute(code=esc(code[:80])))
