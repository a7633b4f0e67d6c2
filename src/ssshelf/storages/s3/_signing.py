"""AWS Signature Version 4 for S3 requests, with the derived key cached.

The signing key depends only on the secret, the date and the region, so it
is derived once a day instead of with four HMACs per request.  The payload
is always hashed (``x-amz-content-sha256``), so the signature covers the
body on plain HTTP too.  A unit test checks every signature against
botocore's own signer.
"""

from __future__ import annotations

import hashlib
import hmac
import time
from typing import NamedTuple
from urllib.parse import quote

ALGORITHM = "AWS4-HMAC-SHA256"
EMPTY_SHA256 = hashlib.sha256(b"").hexdigest()


class Keys(NamedTuple):
    """One set of credentials, as botocore's ``get_frozen_credentials`` gives them."""

    access_key: str
    secret_key: str
    token: str | None


def quote_path(path: str) -> str:
    """A URL path with every byte but unreserved characters and ``/`` percent-encoded."""
    return quote(path, safe="/~")


def quote_query(value: str) -> str:
    """A query name or value encoded as SigV4 expects (``/`` encoded too)."""
    return quote(value, safe="~")


def canonical_query(params: dict[str, str]) -> str:
    """``params`` in SigV4 canonical form, which is also what the request sends."""
    return "&".join(
        f"{quote_query(name)}={quote_query(value)}" for name, value in sorted(params.items())
    )


class Signer:
    """Signs requests for one region with SigV4."""

    def __init__(self, region: str) -> None:
        self.region = region
        self._derived: tuple[str, str, bytes] | None = None  # (secret, date, key)

    def headers(
        self,
        keys: Keys,
        method: str,
        host: str,
        path: str,
        query: str,
        headers: dict[str, str],
        payload_hash: str,
        *,
        now: float | None = None,
    ) -> dict[str, str]:
        """The headers to add to a request: ``x-amz-date``, ``x-amz-content-sha256``,
        the session token if any, and ``authorization``.

        ``path`` is already URI-encoded (:func:`quote_path`), ``query`` in
        canonical form (:func:`canonical_query`), ``headers`` has lower-case
        names; all of ``headers`` are signed along with ``host``.
        """
        stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(now))
        date = stamp[:8]
        added = {"x-amz-date": stamp, "x-amz-content-sha256": payload_hash}
        if keys.token:
            added["x-amz-security-token"] = keys.token
        signed = {"host": host, **headers, **added}
        names = sorted(signed)
        canonical_headers = "".join(f"{name}:{' '.join(signed[name].split())}\n" for name in names)
        signed_names = ";".join(names)
        canonical_request = (
            f"{method}\n{path}\n{query}\n{canonical_headers}\n{signed_names}\n{payload_hash}"
        )
        scope = f"{date}/{self.region}/s3/aws4_request"
        string_to_sign = (
            f"{ALGORITHM}\n{stamp}\n{scope}\n"
            f"{hashlib.sha256(canonical_request.encode()).hexdigest()}"
        )
        signature = hmac.new(
            self._key(keys.secret_key, date), string_to_sign.encode(), hashlib.sha256
        ).hexdigest()
        added["authorization"] = (
            f"{ALGORITHM} Credential={keys.access_key}/{scope},"
            f" SignedHeaders={signed_names}, Signature={signature}"
        )
        return added

    def _key(self, secret: str, date: str) -> bytes:
        derived = self._derived
        if derived is not None and derived[0] == secret and derived[1] == date:
            return derived[2]
        key = ("AWS4" + secret).encode()
        for part in (date, self.region, "s3", "aws4_request"):
            key = hmac.new(key, part.encode(), hashlib.sha256).digest()
        self._derived = (secret, date, key)
        return key
