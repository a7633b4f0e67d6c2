"""A URL shortener on ssshelf, Starlette and uvicorn.

``python -m examples.url_shortener`` (or ``make shortener``) serves it on
http://127.0.0.1:8000 over the embedded SQLite store; set ``SSSHELF_URL`` to
run the same app on S3.  :func:`create_app` builds the ASGI app for tests and
other servers.  See ``docs/shortener.md``.
"""

from .app import create_app

__all__ = ["create_app"]
