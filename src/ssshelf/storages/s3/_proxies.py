"""Which HTTP proxy requests go through, by botocore's rules.

* ``proxies`` given (``S3Storage(proxies=…)`` or a botocore ``Config``'s):
  the proxy for the endpoint's scheme (``{"http": …, "https": …}``);
  ``NO_PROXY`` is not consulted, as botocore does not.
* Otherwise the environment, read by the standard library as botocore does:
  ``HTTP_PROXY`` / ``HTTPS_PROXY`` (either case) by
  :func:`urllib.request.getproxies`, ``NO_PROXY`` by
  :func:`urllib.request.proxy_bypass`.

Plain-http requests are forwarded by the proxy; https goes through a
``CONNECT`` tunnel (TLS with the endpoint itself, inside it).  Credentials in
the proxy URL (``http://user:pass@proxy:3128``) are sent as
``Proxy-Authorization: Basic``.  Only ``http://`` proxy URLs are supported.
"""

from __future__ import annotations

import base64
import urllib.request
from collections.abc import Mapping
from urllib.parse import unquote, urlsplit

from ...errors import ConfigurationError
from ._addressing import redact
from ._http import Origin
from ._pool import Route


def route_for(origin: Origin, proxies: Mapping[str, str] | None) -> Route:
    """How to reach ``origin``: through the proxy that applies, or directly."""
    if proxies is None:
        if urllib.request.proxy_bypass(f"{origin.host}:{origin.port}"):
            return Route(origin)
        proxies = urllib.request.getproxies()
    url = proxies.get(origin.scheme)
    if not url:
        return Route(origin)
    proxy, authorization = parse_proxy(url)
    return Route(origin, proxy, authorization)


def parse_proxy(url: str) -> tuple[Origin, str | None]:
    """A proxy URL's origin and its ``Proxy-Authorization`` value (from user info)."""
    if url.startswith("//"):
        url = "http:" + url
    elif "://" not in url:
        url = "http://" + url
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise ConfigurationError(f"proxy URL {redact(url)!r} is not a URL: {exc}") from None
    if parts.scheme.lower() != "http":
        raise ConfigurationError(
            f"proxy URL {redact(url)!r}: only http:// proxies are supported"
            " (https and SOCKS proxies are not); an http:// proxy still carries https"
            " requests, through a CONNECT tunnel"
        )
    if not parts.hostname:
        raise ConfigurationError(f"proxy URL {redact(url)!r} names no host")
    authorization = None
    if parts.username is not None:
        pair = f"{unquote(parts.username)}:{unquote(parts.password or '')}"
        authorization = "Basic " + base64.b64encode(pair.encode()).decode("ascii")
    return Origin("http", parts.hostname, port or 80), authorization
