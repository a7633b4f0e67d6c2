"""``open_storage(url)``: one string names a storage.

* ``memory://``                          a fresh :class:`InMemoryStorage`
* ``sqlite:///relative/or/abs/path.db``  :class:`SQLiteStorage` (``sqlite:////abs`` also works)
* ``s3://bucket/optional/prefix?endpoint=http://127.0.0.1:9000&region=us-east-1``
  :class:`S3Storage`; credentials come from the standard AWS chain.

Without an argument the URL comes from ``SSSHELF_URL``, and without that it is
the embedded default, ``sqlite:///ssshelf.db``.
"""

from __future__ import annotations

import os
from urllib.parse import parse_qs, urlsplit

from ..errors import ConfigurationError
from .base import Storage

DEFAULT_URL = "sqlite:///ssshelf.db"


def default_url() -> str:
    """``SSSHELF_URL`` if set, else the embedded SQLite default."""
    return os.environ.get("SSSHELF_URL") or DEFAULT_URL


def open_storage(url: str | None = None, *, create: bool = True) -> Storage:
    """Build the storage a URL names; raise :class:`ConfigurationError` if it names none.

    ``create=False`` is for readers: a store that does not exist yet (an SQLite
    file) is an error instead of being created.
    """
    url = url if url is not None else default_url()
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    if scheme == "memory":
        from .inmemory import InMemoryStorage

        return InMemoryStorage()
    if scheme == "sqlite":
        path = url[len("sqlite://") :]
        if path.startswith("/") and not path.startswith("//"):
            path = path[1:] or ""
        elif path.startswith("//"):
            path = path[1:]
        if not path:
            raise ConfigurationError(
                f"storage URL {url!r} names no file; write sqlite:///path/to/file.db"
            )
        from .sqlite import SQLiteStorage

        return SQLiteStorage(path, create=create)
    if scheme == "s3":
        from .s3 import S3Storage
        from .s3._addressing import redact

        shown = redact(url)  # messages never repeat credentials written into the URL
        if "@" in parts.netloc:
            raise ConfigurationError(
                f"storage URL {shown!r} carries credentials; give them through the AWS"
                " environment (AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY) or a profile"
            )
        if not parts.netloc:
            raise ConfigurationError(
                f"storage URL {shown!r} names no bucket; write s3://bucket/optional/prefix"
            )
        options = {k: v[-1] for k, v in parse_qs(parts.query).items()}
        unknown = set(options) - {"endpoint", "region"}
        if unknown:
            raise ConfigurationError(
                f"storage URL {shown!r} has unknown options {sorted(unknown)}; "
                "known: endpoint, region (credentials come from the AWS environment)"
            )

        return S3Storage(
            bucket=parts.netloc,
            prefix=parts.path.strip("/"),
            endpoint_url=options.get("endpoint"),
            region=options.get("region"),
        )
    raise ConfigurationError(
        f"unknown storage URL {url!r}: use memory://, sqlite:///path/to/file.db "
        "or s3://bucket/prefix"
    )
