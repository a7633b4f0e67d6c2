"""The ASGI application: HTML pages, the JSON API and the redirects.

Routes::

    GET  /                    the form and the recent links (?after=CURSOR pages)
    POST /                    form submission -> 303 to /?created=CODE
    POST /api/links           {"url": ..., "alias"?: ...} -> 201 link | 400 | 409 | 413
    GET  /api/links           ?after=CURSOR&limit=N -> {"links": [...], "after": ...}
    GET  /api/links/{code}    the link with its click count -> 200 | 404
    GET  /{code}              302 to the stored target, counting the click (HEAD counts none)
    GET  /healthz             "ok"

Errors in the API are ``{"error": "<message>"}``.  Unsafe input never gets
as far as the store: see :mod:`.validation`.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import (
    HTMLResponse,
    JSONResponse,
    PlainTextResponse,
    RedirectResponse,
    Response,
)
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ssshelf import SSShelfError

from . import pages
from .links import AliasTaken, Links, public_code
from .manager import Link, LinkManager
from .validation import Invalid, check_not_own, check_url

log = logging.getLogger("url_shortener")

#: Largest request body accepted (a URL is at most 2 KiB).
MAX_BODY = 16 * 1024
SECURITY_HEADERS = {
    "content-security-policy": (
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; "
        "connect-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'"
    ),
    "x-content-type-options": "nosniff",
    # same-origin, not no-referrer: with no-referrer browsers send "Origin: null"
    # on our own form posts, which check_origin must refuse.
    "referrer-policy": "same-origin",
    "x-frame-options": "DENY",
}


class TooLarge(Exception):
    """The request body is over :data:`MAX_BODY`."""


class CrossOrigin(Exception):
    """A browser sent a write from another site."""


async def read_body(request: Request) -> bytes:
    """The request body, refusing more than :data:`MAX_BODY` bytes."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > MAX_BODY:
        raise TooLarge
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_BODY:
            raise TooLarge
    return bytes(body)


def check_origin(request: Request) -> None:
    """Refuse browser writes from other origins (requests without Origin pass)."""
    origin = request.headers.get("origin")
    if origin is not None and urlsplit(origin).netloc != request.headers.get("host"):
        raise CrossOrigin


class SecurityHeaders:
    """Middleware adding :data:`SECURITY_HEADERS` to every HTTP response."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self.extra = [(k.encode(), v.encode()) for k, v in SECURITY_HEADERS.items()]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", []), *self.extra]
            await send(message)

        await self.app(scope, receive, send_with_headers)


def create_app(
    manager: LinkManager | None = None,
    *,
    url: str | None = None,
    public_url: str | None = None,
) -> Starlette:
    """Build the app over ``manager``, or over a new :class:`LinkManager` on
    ``url`` (default ``SSSHELF_URL``, else ``sqlite:///ssshelf.db``), closed at
    shutdown.  Short links start with ``public_url`` (default
    ``SHORTENER_PUBLIC_URL``, else the URL the request came in on).
    """
    owned = manager is None
    links = Links(manager if manager is not None else LinkManager(url))
    fixed_base = public_url or os.environ.get("SHORTENER_PUBLIC_URL")

    def base(request: Request) -> str:
        return (fixed_base or str(request.base_url)).rstrip("/") + "/"

    def own(request: Request) -> list[str]:
        """Where this shortener is reached: no link may lead back here."""
        return [str(request.base_url), *([fixed_base] if fixed_base else [])]

    def link_json(request: Request, link: Link) -> dict[str, Any]:
        code = public_code(link)
        return {
            "code": code,
            "short_url": base(request) + code,
            "url": link["url"],
            "alias": link.get("alias"),
            "created_at": link["created_at"],
            "clicks": link.get("clicks", 0),
            "last_click_at": link.get("last_click_at"),
        }

    def api_error(status: int, message: str) -> JSONResponse:
        return JSONResponse({"error": message}, status_code=status)

    async def api_create(request: Request) -> Response:
        try:
            check_origin(request)
            payload = json.loads(await read_body(request) or b"null")
            if not isinstance(payload, dict):
                raise Invalid('Send a JSON object: {"url": "https://…", "alias": "optional"}.')
            link = await links.create(payload.get("url"), payload.get("alias"), own=own(request))
        except TooLarge:
            return api_error(413, f"The request body is over {MAX_BODY} bytes.")
        except CrossOrigin:
            return api_error(403, "Cross-site requests are not accepted.")
        except (ValueError, UnicodeDecodeError) as exc:  # Invalid, or bad JSON
            return api_error(400, str(exc) if isinstance(exc, Invalid) else "Invalid JSON.")
        except AliasTaken as exc:
            return api_error(409, str(exc))
        body = link_json(request, link)
        return JSONResponse(
            body, status_code=201, headers={"location": f"/api/links/{body['code']}"}
        )

    async def api_recent(request: Request) -> Response:
        try:
            limit = int(request.query_params.get("limit", "20"))
            page = await links.recent(request.query_params.get("after"), limit)
        except ValueError as exc:
            message = str(exc) if isinstance(exc, Invalid) else "limit must be a number."
            return api_error(400, message)
        return JSONResponse(
            {"links": [link_json(request, link) for link in page.links], "after": page.after}
        )

    async def api_link(request: Request) -> Response:
        link = await links.find(request.path_params["code"])
        if link is None:
            return api_error(404, "No such link.")
        return JSONResponse(link_json(request, link))

    async def follow(request: Request) -> Response:
        code: str = request.path_params["code"]
        if request.method == "HEAD":  # link previews and checkers: no click
            link = await links.find(code)
        else:
            link = await links.follow(code)
        if link is None or not _safe_target(link, own(request)):
            return HTMLResponse(pages.not_found_page(code), status_code=404)
        return RedirectResponse(link["url"], status_code=302, headers={"cache-control": "no-store"})

    async def index(request: Request) -> Response:
        message = ""
        created = request.query_params.get("created")
        if created:
            link = await links.find(created)
            if link is not None:
                message = pages.created_box(base(request) + public_code(link), link)
        return await _index(request, message=message)

    async def _index(
        request: Request, *, message: str = "", status: int = 200, url: str = "", alias: str = ""
    ) -> Response:
        after = request.query_params.get("after")
        try:
            page = await links.recent(after)
        except Invalid as exc:
            return HTMLResponse(
                pages.index_page(base=base(request), recent=pages.error_box(str(exc))),
                status_code=400,
            )
        recent = pages.recent_table(base(request), page, after)
        html = pages.index_page(
            base=base(request), recent=recent, message=message, url=url, alias=alias
        )
        return HTMLResponse(html, status_code=status)

    async def submit(request: Request) -> Response:
        url = alias = ""
        try:
            check_origin(request)
            form = parse_qs((await read_body(request)).decode("utf-8"), max_num_fields=10)
            url = form.get("url", [""])[0]
            alias = form.get("alias", [""])[0]
            link = await links.create(url, alias, own=own(request))
        except TooLarge:
            return await _index(
                request, message=pages.error_box("That form is too large."), status=413
            )
        except CrossOrigin:
            return PlainTextResponse("Cross-site requests are not accepted.", status_code=403)
        except (Invalid, UnicodeDecodeError) as exc:
            text = str(exc) if isinstance(exc, Invalid) else "The form was not valid UTF-8."
            return await _index(
                request, message=pages.error_box(text), status=400, url=url[:2048], alias=alias[:40]
            )
        except AliasTaken as exc:
            return await _index(
                request, message=pages.error_box(str(exc)), status=409, url=url, alias=alias
            )
        return RedirectResponse(f"/?created={public_code(link)}", status_code=303)

    async def healthz(request: Request) -> Response:
        return PlainTextResponse("ok")

    async def unavailable(request: Request, exc: Exception) -> Response:
        log.warning("storage error on %s %s: %s", request.method, request.url.path, exc)
        return api_error(503, "The link store is unavailable; try again shortly.")

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        try:
            yield
        finally:
            await links.clicks.drain()
            if owned:
                await links.manager.close()

    app = Starlette(
        routes=[
            Route("/", index, methods=["GET"]),
            Route("/", submit, methods=["POST"]),
            Route("/healthz", healthz, methods=["GET"]),
            Route("/api/links", api_create, methods=["POST"]),
            Route("/api/links", api_recent, methods=["GET"]),
            Route("/api/links/{code}", api_link, methods=["GET"]),
            Mount(
                "/static", StaticFiles(directory=Path(__file__).with_name("static")), name="static"
            ),
            Route("/{code}", follow, methods=["GET"]),
        ],
        exception_handlers={SSShelfError: unavailable},
        lifespan=lifespan,
    )
    app.state.links = links
    app.add_middleware(SecurityHeaders)
    return app


def _safe_target(link: Link, own: list[str]) -> bool:
    """Redirect only to a stored target that still passes validation (and so
    never back to this shortener)."""
    try:
        target = check_url(link.get("url"))
        check_not_own(target, own)
    except Invalid:
        return False
    return target == link.get("url")
