"""``open_storage(url)``: one string names a storage.

* ``memory://``                     a fresh :class:`.InMemoryStorage`
* ``sqlite:///relative/path.db``    :class:`.SQLiteStorage`, relative to the current directory
* ``sqlite:////absolute/path.db``   the same with an absolute path (four slashes)
* ``s3://bucket/optional/prefix?endpoint=http://127.0.0.1:9000&region=us-east-1``
  :class:`.S3Storage`.  Credentials come from the standard AWS chain, or from
  the URL: ``s3://KEY:SECRET@bucket/prefix`` or ``?access_key=…&secret_key=…``
  (``session_token=…`` too), percent-encoded where they hold ``/``, ``+``,
  ``@`` or ``:``.

Without an argument the URL comes from ``SSSHELF_URL``, and without that it is
the embedded default, ``sqlite:///ssshelf.db``.

Every error names the URL as :func:`redact_url` shows it: credentials written
into a URL are never repeated in a message.
"""

from __future__ import annotations

import os
import re
from urllib.parse import unquote, urlsplit

from ..errors import ConfigurationError
from .base import Storage

DEFAULT_URL = "sqlite:///ssshelf.db"

#: Options of an ``s3://`` URL whose values are credentials.
SECRET_OPTIONS = ("access_key", "secret_key", "session_token")
_S3_OPTIONS = ("endpoint", "region", *SECRET_OPTIONS)
_USERINFO = re.compile(r"(?<=://)[^/?#@\s]*@")
_SECRET_VALUE = re.compile(r"([?&](?:" + "|".join(SECRET_OPTIONS) + r")=)[^&#\s]*")


def default_url() -> str:
    """``SSSHELF_URL`` if set, else the embedded SQLite default."""
    return os.environ.get("SSSHELF_URL") or DEFAULT_URL


def redact_url(url: str) -> str:
    """``url`` with every credential in it replaced by ``***``.

    Covers user information (``s3://KEY:SECRET@bucket``, also inside an
    ``endpoint=`` option) and the values of :data:`SECRET_OPTIONS`.  A URL
    without credentials comes back unchanged.
    """
    return _SECRET_VALUE.sub(r"\1***", _USERINFO.sub("***@", url))


def url_secrets(url: str) -> list[str]:
    """The credential strings ``url`` holds, as written and percent-decoded.

    For masking them in messages that quote something derived from the URL
    (longest first, so that no secret is masked only in part).
    """
    found: set[str] = set()
    for match in _USERINFO.finditer(url):
        for piece in match.group(0)[:-1].split(":"):
            found.update({piece, unquote(piece)})
    for match in _SECRET_VALUE.finditer(url):
        value = match.group(0)[len(match.group(1)) :]
        found.update({value, unquote(value)})
    return sorted((s for s in found if s), key=lambda s: (-len(s), s))


def open_storage(url: str | None = None, *, create: bool = True) -> Storage:
    """Build the storage a URL names; raise :class:`.ConfigurationError` if it names none.

    ``create=False`` is for readers: a store that does not exist yet (an SQLite
    file) is an error instead of being created, and nothing is altered.
    """
    url = url if url is not None else default_url()
    scheme, sep, _ = url.partition(":")
    scheme = scheme.lower() if sep else ""
    if scheme == "memory":
        from .inmemory import InMemoryStorage

        return InMemoryStorage()
    if scheme == "sqlite":
        from .sqlite import SQLiteStorage

        return SQLiteStorage(_sqlite_path(url), create=create)
    if scheme == "s3":
        return _open_s3(url)
    raise ConfigurationError(
        f"unknown storage URL {redact_url(url)!r}: use memory://, sqlite:///path/to/file.db "
        "or s3://bucket/prefix"
    )


def _sqlite_path(url: str) -> str:
    """``sqlite:///x.db`` -> ``x.db``; ``sqlite:////abs/x.db`` -> ``/abs/x.db``."""
    rest = url[len("sqlite:") :]
    if not rest.startswith("///"):
        name = rest.lstrip("/")
        hint = f"sqlite:///{name}" if name else "sqlite:///path/to/file.db"
        raise ConfigurationError(
            f"storage URL {redact_url(url)!r} needs three slashes before the path: write "
            f"{hint} (relative to the current directory) or sqlite:////absolute/path.db"
        )
    path = rest[len("///") :]
    if path.startswith("/"):
        path = "/" + path.lstrip("/")
    if not path:
        raise ConfigurationError(
            f"storage URL {redact_url(url)!r} names no file; write sqlite:///path/to/file.db"
        )
    return path


def _s3_options(query: str, url: str) -> dict[str, str]:
    """The options of an ``s3://`` URL (``+`` stays ``+``: secret keys hold it)."""
    options: dict[str, str] = {}
    for pair in query.split("&"):
        if not pair:
            continue
        name, _, value = pair.partition("=")
        options[unquote(name)] = unquote(value)
    unknown = sorted(set(options) - set(_S3_OPTIONS))
    if unknown:
        raise ConfigurationError(
            f"storage URL {redact_url(url)!r} has unknown options {unknown}; "
            f"known: {', '.join(_S3_OPTIONS)}"
        )
    return options


def _check_endpoint(endpoint: str, url: str) -> None:
    try:
        parts = urlsplit(endpoint)
    except ValueError as exc:
        raise ConfigurationError(
            f"storage URL {redact_url(url)!r}: endpoint is not a URL ({exc})"
        ) from None
    if parts.scheme.lower() not in {"http", "https"} or not parts.netloc:
        raise ConfigurationError(
            f"storage URL {redact_url(url)!r}: endpoint {redact_url(endpoint)!r} needs a scheme; "
            f"write endpoint=http://{endpoint.split('://')[-1]} (or https://)"
        )
    if "@" in parts.netloc:
        raise ConfigurationError(
            f"storage URL {redact_url(url)!r}: put credentials in s3://KEY:SECRET@bucket "
            "or the AWS environment, not in the endpoint"
        )


def _credentials(netloc: str, options: dict[str, str], url: str) -> dict[str, str]:
    """``aws_client_kwargs`` for credentials written into the URL (none: empty)."""
    userinfo, at, _ = netloc.rpartition("@")
    key = secret = None
    if at:
        user, colon, password = userinfo.partition(":")
        if not (user and colon and password):
            raise ConfigurationError(
                f"storage URL {redact_url(url)!r}: credentials go before the bucket as "
                "s3://KEY:SECRET@bucket (percent-encode / + @ : in them)"
            )
        key, secret = unquote(user), unquote(password)
    if "access_key" in options or "secret_key" in options:
        if at:
            raise ConfigurationError(
                f"storage URL {redact_url(url)!r} gives credentials twice "
                "(before the bucket and as options); keep one"
            )
        key, secret = options.get("access_key"), options.get("secret_key")
        if not key or not secret:
            raise ConfigurationError(
                f"storage URL {redact_url(url)!r}: access_key and secret_key go together"
            )
    if key is None or secret is None:
        if "session_token" in options:
            raise ConfigurationError(
                f"storage URL {redact_url(url)!r}: session_token needs access_key and secret_key"
            )
        return {}
    kwargs = {"aws_access_key_id": key, "aws_secret_access_key": secret}
    if options.get("session_token"):
        kwargs["aws_session_token"] = options["session_token"]
    return kwargs


def _open_s3(url: str) -> Storage:
    try:
        parts = urlsplit(url)
    except ValueError as exc:
        raise ConfigurationError(f"storage URL {redact_url(url)!r} is malformed: {exc}") from None
    bucket = parts.netloc.rpartition("@")[2]
    if not bucket:
        raise ConfigurationError(
            f"storage URL {redact_url(url)!r} names no bucket; write s3://bucket/optional/prefix"
        )
    options = _s3_options(parts.query, url)
    endpoint = options.get("endpoint")
    if endpoint is not None:
        _check_endpoint(endpoint, url)
    credentials = _credentials(parts.netloc, options, url)
    from .s3 import S3Storage

    return S3Storage(
        bucket=bucket,
        aws_client_kwargs=credentials or None,
        prefix=parts.path.strip("/"),
        endpoint_url=endpoint or None,
        region=options.get("region") or None,
    )
