"""Where a bucket's requests go: endpoint URLs, path-style and virtual-hosted addressing.

* AWS itself (no endpoint given): ``https://BUCKET.s3.REGION.amazonaws.com/KEY``
  (virtual-hosted); path-style when the bucket name cannot be a host name
  label, or holds a dot (the ``*.s3`` certificate would not match).
* A custom endpoint (MinIO, Ceph RGW, …): path-style ``ENDPOINT/BUCKET/KEY``
  unless ``addressing_style="virtual"``.

Endpoint URLs must name their scheme, and must not carry credentials
(:func:`redact` keeps them out of every message).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal
from urllib.parse import urlsplit, urlunsplit

from ...errors import ConfigurationError
from ._http import Origin

AddressingStyle = Literal["auto", "path", "virtual"]

_DNS_BUCKET = re.compile(r"^[a-z0-9][a-z0-9-]{1,61}[a-z0-9]$")
_SCHEME = re.compile(r"^[a-zA-Z][a-zA-Z0-9+.-]*://")


def redact(url: str) -> str:
    """``url`` with any user name, password and query removed (for messages)."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return "<an unparsable URL>"
    netloc = parts.netloc.rpartition("@")[2]
    return urlunsplit((parts.scheme, netloc, parts.path, "", ""))


def aws_endpoint(region: str) -> str:
    """AWS S3's regional endpoint."""
    suffix = "amazonaws.com.cn" if region.startswith("cn-") else "amazonaws.com"
    return f"https://s3.{region}.{suffix}"


@dataclass(frozen=True, slots=True)
class Addressing:
    """How to reach one bucket: the origin to connect to, the Host header, the path prefix."""

    origin: Origin
    host: str
    #: Prepended to ``/`` + the URI-encoded key (``""`` or ``"/bucket"``).
    path_prefix: str


def parse_endpoint(endpoint: str) -> Origin:
    """The origin of an endpoint URL; :class:`~ssshelf.errors.ConfigurationError`
    with a hint when it is not one."""
    if not _SCHEME.match(endpoint):
        raise ConfigurationError(
            f"S3 endpoint {redact('//' + endpoint)[2:]!r} has no scheme: write"
            f" http://{endpoint.rpartition('@')[2]} (or https://…)"
        )
    try:
        parts = urlsplit(endpoint)
        port = parts.port
    except ValueError as exc:
        raise ConfigurationError(f"S3 endpoint {redact(endpoint)!r} is not a URL: {exc}") from None
    scheme = parts.scheme.lower()
    if scheme not in ("http", "https"):
        raise ConfigurationError(
            f"S3 endpoint {redact(endpoint)!r}: the scheme must be http or https, not {scheme!r}"
        )
    if parts.username is not None or parts.password is not None:
        raise ConfigurationError(
            f"S3 endpoint {redact(endpoint)!r} carries credentials in the URL; pass them"
            " through the AWS environment (AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY),"
            " a profile, or aws_client_kwargs instead"
        )
    if not parts.hostname:
        raise ConfigurationError(f"S3 endpoint {redact(endpoint)!r} names no host")
    if parts.path.strip("/") or parts.query:
        raise ConfigurationError(
            f"S3 endpoint {redact(endpoint)!r} has a path or query; give only"
            " scheme://host[:port] (the bucket is a separate setting)"
        )
    return Origin(scheme, parts.hostname, port or (443 if scheme == "https" else 80))


def host_header(origin: Origin) -> str:
    """The Host header for an origin (the port only when it is not the default)."""
    default = 443 if origin.scheme == "https" else 80
    host = f"[{origin.host}]" if ":" in origin.host else origin.host
    return host if origin.port == default else f"{host}:{origin.port}"


def address(bucket: str, endpoint: Origin, *, style: AddressingStyle, custom: bool) -> Addressing:
    """How requests for ``bucket`` are addressed (see the module docstring)."""
    if style == "auto":
        dotted_tls = "." in bucket and endpoint.scheme == "https"
        style = "virtual" if not custom and _DNS_BUCKET.match(bucket) and not dotted_tls else "path"
    if style == "path":
        return Addressing(endpoint, host_header(endpoint), f"/{bucket}")
    origin = Origin(endpoint.scheme, f"{bucket}.{endpoint.host}", endpoint.port)
    return Addressing(origin, host_header(origin), "")
