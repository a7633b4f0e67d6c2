"""S3Storage: the storage contract on Amazon S3 and S3-protocol servers.

Each contract method is one S3 request (plus its own retries), made by the
package's own HTTP/1.1 client and SigV4 signer; botocore only resolves
credentials and the region.

===============  ========================================================
``get``          GetObject
``put``          PutObject (``If-None-Match: *`` / ``If-Match: <etag>``)
``delete``       DeleteObject (``If-Match: <etag>`` when conditional)
``delete_many``  DeleteObjects (quiet mode)
``list``         ListObjectsV2 (``prefix``, ``start-after``, ``max-keys``, ``encoding-type=url``)
===============  ========================================================

The exceptions, each rare: one GET after an ambiguous conditional PUT, one
HeadBucket before the first ``If-Match`` to a server not yet heard from, one
DeleteObject per key an XML body cannot carry in ``delete_many``, and a
further ListObjectsV2 page when a page says "more follow" but holds no key.

Every call ends within ``deadline`` seconds (all attempts, backoff and those
extra requests included), unless a body is still moving then.  See ``docs/s3.md``.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import logging
import os
import random
import re
import ssl
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any, TypeVar

from ...errors import (
    ConfigurationError,
    DeleteFailed,
    InvalidArgument,
    NotSent,
    OutcomeUnknown,
    PreconditionFailed,
    StorageClosed,
    StorageError,
    UnsupportedOperation,
)
from .. import sending
from ..base import MAX_GET_BATCH, MAX_KEY_BYTES, Capabilities, ListPage, StoredObject
from ..common import BaseStorage
from . import _errors as errs
from . import _xml
from ._addressing import Addressing, AddressingStyle, address, aws_endpoint, parse_endpoint
from ._answers import delete_result, listing_under, no_result, put_version, stored_object
from ._compat import (
    QUIRKS,
    EtagQuoting,
    Flavor,
    FlavorSetting,
    detect_flavor,
    if_match_value,
)
from ._config import ClientConfig, environment_endpoint, read_client_config
from ._credentials import CredentialSource, NoCredentials
from ._http import AttemptTimedOut, Response, TransportError
from ._loops import LoopState, PerLoop
from ._pool import ConnectionPool, Route
from ._proxies import parse_proxy, route_for
from ._settings import (
    check_addressing_style,
    check_bucket,
    check_settings,
    check_timeouts,
    check_version,
    tls_context,
)
from ._signing import EMPTY_SHA256, Signer, canonical_query, quote_path

__all__ = ["DEFAULT_RETRIES", "RetryPolicy", "S3Storage"]

log = logging.getLogger("ssshelf.storages.s3")

T = TypeVar("T")

_CONDITION_REFUSALS = errs.PRECONDITION_CODES | errs.MISSING_KEY_CODES
#: Characters an XML 1.0 body cannot carry as they are (see ``delete_many``).
_XML_UNSAFE = re.compile("[^\t\n\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")
_DEFAULT_REGION = "us-east-1"
_CLIENT_KWARGS = frozenset(
    {
        "aws_access_key_id",
        "aws_secret_access_key",
        "aws_session_token",
        "endpoint_url",
        "region_name",
        "verify",
        "config",
    }
)
_USER_AGENT = "ssshelf-s3/1"
#: Bodies from this size on are sent with ``Expect: 100-continue``: a refused
#: request (412, 403, a redirect) is answered before the body goes out.
EXPECT_CONTINUE_BYTES = 1024 * 1024


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """Exponential backoff with full jitter.

    A request is tried at most ``attempts`` times; before try *n + 1* it
    waits a uniformly random time in ``[0, min(max_delay, base_delay * 2**(n-1))]``
    seconds.  The storage's ``deadline`` bounds the whole call regardless.
    """

    attempts: int = 8
    base_delay: float = 0.05
    max_delay: float = 3.0

    def __post_init__(self) -> None:
        if self.attempts < 1:
            raise InvalidArgument(f"retry attempts must be at least 1, got {self.attempts}")
        if self.base_delay < 0 or self.max_delay < 0:
            raise InvalidArgument("retry delays must not be negative")

    def delay(self, failures: int, rng: random.Random) -> float:
        """Seconds to wait after the ``failures``-th failed attempt."""
        return rng.uniform(0.0, min(self.max_delay, self.base_delay * 2 ** (failures - 1)))


#: The retry policy of an S3Storage not given one (see docs/s3.md for its bounds).
DEFAULT_RETRIES = RetryPolicy()


class _Refused(Exception):
    """A refusal the calling method interprets itself (412, 404 NoSuchKey)."""

    def __init__(self, code: str, *, after_ambiguity: bool) -> None:
        super().__init__(code)
        self.code = code
        #: An earlier attempt of the same request may have been applied.
        self.after_ambiguity = after_ambiguity


@dataclass(frozen=True, slots=True)
class _Target:
    """Where and how requests go, as one value (a region redirect replaces it whole)."""

    region: str
    addressing: Addressing
    route: Route
    signer: Signer
    #: Before the path in the request line: ``http://host`` when a proxy forwards it.
    url_prefix: str
    #: A ``proxy-authorization`` line for a forwarding proxy that asks for one.
    proxy_line: str


@dataclass(frozen=True, slots=True)
class _Request:
    """One S3 request, before signing.

    ``path`` is relative to the bucket (``""`` for the bucket itself, else ``/``
    and the URI-encoded key); ``query`` is in canonical form.
    """

    operation: str
    key: str | None
    method: str
    path: str
    query: str = ""
    headers: dict[str, str] | None = None
    body: bytes = b""
    #: The body's SHA-256 (hex), when the caller has it already.
    payload_hash: str | None = None

    @property
    def is_write(self) -> bool:
        return self.method in ("PUT", "POST", "DELETE")


class S3Storage(BaseStorage):
    """Objects in one S3 bucket, optionally under a key prefix.

    ``bucket`` defaults to ``SSSHELF_BUCKET``; the endpoint to
    ``endpoint_url``, then ``aws_client_kwargs["endpoint_url"]``, then
    ``AWS_ENDPOINT_URL_S3`` / ``AWS_ENDPOINT_URL`` (else AWS itself); the
    region to ``region``, ``aws_client_kwargs["region_name"]``, the AWS
    configuration chain, then ``us-east-1``.  Credentials come from
    ``aws_client_kwargs`` (``aws_access_key_id``, ``aws_secret_access_key``,
    ``aws_session_token``) or botocore's AWS credential chain;
    ``aws_client_kwargs["verify"]`` (``False`` or a CA bundle path, also
    ``AWS_CA_BUNDLE`` and the config file's ``ca_bundle``) changes certificate
    checking for https.  The AWS config file's ``region``, ``ca_bundle``,
    ``max_attempts``, ``s3 = addressing_style`` and configured endpoint are
    honoured as botocore honours them, and so are the options given to a
    botocore ``Config`` in ``aws_client_kwargs["config"]`` (see ``docs/s3.md``).
    Proxies: ``proxies`` (``{"http": url, "https": url}``), else
    ``HTTP_PROXY`` / ``HTTPS_PROXY`` / ``NO_PROXY``.

    Keys are relative to ``prefix``: every object is stored under
    ``prefix + "/"`` and keys come back without it.

    Timing: connecting (TLS and a proxy tunnel included) must finish within
    ``connect_timeout`` seconds (default 5); an attempt fails when nothing
    moves, sent or received, for ``read_timeout`` seconds (default 20); a call
    gives up after ``deadline`` seconds (default 60), except that an attempt
    whose body (request or answer) is moving is not cut off by it.  The
    requests in flight and the sockets open per event loop are bounded by
    ``max_in_flight`` and ``max_pool_connections`` (64).  The storage works from
    any event loop, one at a time or several in threads; what a loop uses is
    released when it shuts down.

    Server quirks (see ``docs/s3.md``): ``flavor`` is
    ``"auto"`` (recognised from the server's answers), ``"aws"`` or ``"ceph"``;
    ``etag_quoting`` and ``conditional_delete`` override single aspects.

    ``get_many`` is offered as one wave of concurrent GetObject requests
    (bounded by ``max_in_flight``), all within one ``deadline``.
    """

    def __init__(
        self,
        bucket: str | None = None,
        aws_client_kwargs: dict[str, Any] | None = None,
        s3_client: Any = None,
        *,
        prefix: str = "",
        endpoint_url: str | None = None,
        region: str | None = None,
        addressing_style: AddressingStyle | None = None,
        max_pool_connections: int | None = None,
        max_in_flight: int = 64,
        retries: RetryPolicy | None = None,
        connect_timeout: float | None = None,
        read_timeout: float | None = None,
        deadline: float = 60.0,
        proxies: Mapping[str, str] | None = None,
        flavor: FlavorSetting = "auto",
        etag_quoting: EtagQuoting = "auto",
        conditional_delete: bool | None = None,
    ) -> None:
        if s3_client is not None:
            raise ConfigurationError(
                "S3Storage no longer takes an aiobotocore client (s3_client=...): it makes its"
                " own requests; pass endpoint_url=..., region=... and credentials in"
                " aws_client_kwargs or the AWS environment instead"
            )
        self.bucket = bucket or os.environ.get("SSSHELF_BUCKET") or ""
        if not self.bucket:
            raise ConfigurationError(
                "S3Storage needs a bucket name: pass bucket=..., use a storage URL like"
                " s3://bucket/prefix, or set SSSHELF_BUCKET"
            )
        check_bucket(self.bucket)
        self.prefix = prefix.strip("/")
        self._key_prefix = f"{self.prefix}/" if self.prefix else ""
        self._max_key_length = MAX_KEY_BYTES - len(self._key_prefix.encode("utf-8"))
        if self._max_key_length < 1:
            raise ConfigurationError(f"S3 key prefix {self.prefix[:80]!r}… leaves no room for keys")

        kwargs = dict(aws_client_kwargs or {})
        unknown = set(kwargs) - _CLIENT_KWARGS
        if unknown:
            raise ConfigurationError(
                f"S3Storage does not understand aws_client_kwargs {sorted(unknown)};"
                f" it takes {sorted(_CLIENT_KWARGS)}"
            )
        client = read_client_config(kwargs["config"]) if "config" in kwargs else ClientConfig()
        pool_size = _first(max_pool_connections, client.max_pool_connections, 64)
        style = addressing_style or client.addressing_style
        check_settings(pool_size, max_in_flight, flavor, etag_quoting)
        if style is not None:
            check_addressing_style(style)
        #: Seconds to open a connection (TLS and a proxy tunnel included).
        self.connect_timeout = float(_first(connect_timeout, client.connect_timeout, 5.0))
        #: Seconds without progress (nothing sent or received) that fail an attempt.
        self.read_timeout = float(_first(read_timeout, client.read_timeout, 20.0))
        #: Seconds a call may take (see the class docstring for the one exception).
        self.deadline = deadline
        check_timeouts(self.connect_timeout, self.read_timeout, deadline)
        #: The retry policy: as given, else from ``max_attempts`` (a botocore
        #: ``Config``, then the AWS config file, known after the first request).
        self.retries = retries or (
            replace(DEFAULT_RETRIES, attempts=client.max_attempts)
            if client.max_attempts
            else DEFAULT_RETRIES
        )
        self._retries_given = retries is not None or client.max_attempts is not None
        self._proxies = dict(proxies) if proxies is not None else client.proxies
        for proxy_url in (self._proxies or {}).values():
            parse_proxy(proxy_url)  # a bad proxy URL is refused now
        self._verify = kwargs.get("verify")
        tls_context(True if self._verify is None else self._verify, needed=False)
        #: The custom endpoint, or ``None`` for AWS itself (an endpoint from the
        #: AWS config file is known after the first request).
        self.endpoint_url: str | None = endpoint_url or kwargs.get("endpoint_url")
        self._endpoint_from_environment = self.endpoint_url is None
        self.endpoint_url = self.endpoint_url or environment_endpoint()
        self._endpoint = parse_endpoint(self.endpoint_url) if self.endpoint_url else None
        self._addressing_style: AddressingStyle | None = style  # type: ignore[assignment]
        self._credentials = CredentialSource(
            {
                "aws_access_key_id": kwargs.get("aws_access_key_id"),
                "aws_secret_access_key": kwargs.get("aws_secret_access_key"),
                "aws_session_token": kwargs.get("aws_session_token"),
            },
            region or kwargs.get("region_name") or client.region,
        )
        self._pool_size = min(pool_size, max_in_flight)
        #: Most requests sent at once (per event loop); more wait for a connection.
        self.max_in_flight = self._pool_size
        self._tls: ssl.SSLContext | None = None
        self._loops = PerLoop(self._make_pool)
        self._prepare_lock = threading.Lock()
        self._target: _Target | None = None
        self._http10 = False
        self._detected: Flavor | None = None if flavor == "auto" else flavor
        self._etag_quoting = etag_quoting
        self._conditional_delete = conditional_delete
        self._rng = random.Random()
        self._closed = False

    # -- public extras ------------------------------------------------------

    @property
    def capabilities(self) -> Capabilities:
        """Conditional puts (every supported server); conditional deletes as
        :attr:`supports_conditional_delete` says now; ``get_many`` as
        concurrent GETs."""
        return Capabilities(
            conditional_put=True,
            conditional_delete=self.supports_conditional_delete,
            get_many=MAX_GET_BATCH,
        )

    @property
    def max_key_length(self) -> int:
        """Longest relative key: S3's 1,024 bytes less the prefix and its "/"."""
        return self._max_key_length

    @property
    def flavor(self) -> Flavor | None:
        """The server family in use: as configured, as recognised, or ``None`` (not yet known)."""
        return self._detected

    @property
    def supports_conditional_delete(self) -> bool:
        """Whether ``delete(if_version=…)`` is enforced by the server.

        With the automatic setting this is ``False`` until a response has
        shown the server is not Ceph RGW (any request does, or :meth:`probe`).
        """
        if self._conditional_delete is not None:
            return self._conditional_delete
        return self._detected is not None and QUIRKS[self._detected].conditional_delete

    @supports_conditional_delete.setter
    def supports_conditional_delete(self, value: bool) -> None:
        self._conditional_delete = value

    @property
    def region(self) -> str:
        """The region requests are signed for (known after the first request; a
        region redirect from S3 changes it)."""
        target = self._target
        if target is not None:
            return target.region
        return self._credentials.region or _DEFAULT_REGION

    async def probe(self) -> None:
        """One HeadBucket request: fail now rather than at first use.

        Raises :class:`~ssshelf.errors.BucketNotFound`, :class:`~ssshelf.errors.AccessDenied` or
        :class:`~ssshelf.errors.StorageUnavailable` with what to check, and learns the
        server's quirks when ``flavor="auto"``.
        """
        await self._probe(None)

    async def create_bucket(self) -> None:
        """Create the bucket; one that already exists and is yours is fine."""
        await self._prepare()
        body = b"" if self.region == _DEFAULT_REGION else _xml.create_bucket_request(self.region)
        try:
            await self._send(
                _Request("create_bucket", None, "PUT", self._bucket_path(), body=body),
                handles=frozenset({"BucketAlreadyOwnedByYou"}),
            )
        except _Refused:
            return

    async def delete_bucket(self) -> None:
        """Delete the bucket, which must be empty."""
        await self._prepare()
        await self._send(_Request("delete_bucket", None, "DELETE", self._bucket_path()))

    # -- the contract -------------------------------------------------------

    async def _get(self, key: str) -> StoredObject | None:
        """The object and its version (ETag), or ``None`` when the key is missing."""
        return await self._fetch(key, None)

    async def _get_many(self, keys: Sequence[str]) -> list[StoredObject | None]:
        """One GetObject a key, all sent at once (``max_in_flight`` bound the
        wave) and all within one ``deadline``; every one runs to its end, then
        the first error, if any, is raised."""
        give_up_at = self._give_up_at()
        answers = await asyncio.gather(
            *(self._fetch(key, give_up_at) for key in keys), return_exceptions=True
        )
        for answer in answers:
            if isinstance(answer, BaseException):
                raise answer
        return answers  # type: ignore[return-value]  # no exceptions left

    async def _put(self, key: str, data: bytes, if_absent: bool, if_version: str | None) -> str:
        """Store ``data``; return its version.  A failed condition raises PreconditionFailed.

        A conditional write retried after a lost answer that then fails its
        condition is checked with one GET: when the key holds exactly
        ``data``, the earlier attempt landed and its version is returned;
        otherwise :class:`~ssshelf.errors.OutcomeUnknown` (never PreconditionFailed, which
        would say nothing changed).
        """
        if if_version is not None:
            check_version(if_version)
        payload = bytes(data)
        give_up_at = self._give_up_at()
        headers = {"content-md5": base64.b64encode(hashlib.md5(payload).digest()).decode()}
        payload_hash = hashlib.sha256(payload).hexdigest()
        if if_absent:
            headers["if-none-match"] = "*"
        elif if_version is not None:
            quoted = await self._quote_etags(give_up_at)
            headers["if-match"] = if_match_value(if_version, quoted=quoted)
        conditional = if_absent or if_version is not None
        request = _Request(
            "put",
            key,
            "PUT",
            self._object_path(key),
            headers=headers,
            body=payload,
            payload_hash=payload_hash,
        )
        try:
            return await self._send(
                request,
                handles=_CONDITION_REFUSALS if conditional else frozenset(),
                parse=put_version,
                give_up_at=give_up_at,
            )
        except _Refused as refused:
            return await self._settle_refused_put(key, payload, refused, if_version, give_up_at)

    async def _delete(self, key: str, if_version: str | None) -> None:
        """Delete ``key`` (missing is fine); with ``if_version`` only at that version.

        A conditional delete on a server that ignores ``If-Match`` on DELETE
        (Ceph RGW) raises :class:`~ssshelf.errors.UnsupportedOperation` without deleting.
        """
        path = self._object_path(key)
        if if_version is None:
            await self._send(_Request("delete", key, "DELETE", path))
            return
        check_version(if_version)
        give_up_at = self._give_up_at()
        await self._require_conditional_delete(key, give_up_at)
        quoted = await self._quote_etags(give_up_at)
        headers = {"if-match": if_match_value(if_version, quoted=quoted)}
        try:
            await self._send(
                _Request("delete", key, "DELETE", path, headers=headers),
                handles=_CONDITION_REFUSALS,
                give_up_at=give_up_at,
            )
        except _Refused as refused:
            if not refused.after_ambiguity:
                raise PreconditionFailed(
                    f"{key!r} is not at version {if_version!r}", operation="delete", key=key
                ) from None
            if refused.code in errs.MISSING_KEY_CODES:
                return  # an earlier attempt deleted it
            raise errs.FinalOutcomeUnknown(
                f"delete of {key!r} at version {if_version!r}: an attempt whose answer was"
                " lost may have deleted it before the key changed again; read it to find out",
                operation="delete",
                key=key,
            ) from None

    async def _delete_many(self, keys: Sequence[str]) -> None:
        """Delete up to 1,000 keys in one DeleteObjects request; refusals raise DeleteFailed.

        DeleteObjects carries keys in an XML body, which cannot hold every
        character a key may have (control characters, U+FFFE/U+FFFF; a
        carriage return would be read back as a line feed).  Such keys are
        deleted with one DeleteObject each instead; no request for none.
        """
        in_xml = [key for key in keys if not _XML_UNSAFE.search(key)]
        one_by_one = [key for key in keys if _XML_UNSAFE.search(key)]
        failures = await self._delete_objects(in_xml) if in_xml else {}
        for key, outcome in zip(
            one_by_one,
            await asyncio.gather(
                *(self._delete(k, None) for k in one_by_one), return_exceptions=True
            ),
            strict=True,
        ):
            if isinstance(outcome, StorageClosed):
                raise outcome
            if isinstance(outcome, StorageError):
                failures[key] = str(outcome)
            elif isinstance(outcome, BaseException):
                raise outcome
        if failures:
            raise DeleteFailed(
                f"S3 refused to delete {len(failures)} of {len(keys)} keys in bucket"
                f" {self.bucket!r}: {sorted(failures.items())[:5]}",
                failures=failures,
            )

    async def _delete_objects(self, keys: Sequence[str]) -> dict[str, str]:
        """One DeleteObjects request (quiet mode); the keys it refused, with reasons."""
        body = _xml.delete_request([self._full(key) for key in keys])
        headers = {"content-md5": base64.b64encode(hashlib.md5(body).digest()).decode()}
        refused = await self._send(
            _Request("delete_many", None, "POST", self._bucket_path(), "delete=", headers, body),
            parse=delete_result,
        )
        return {self._relative(key): f"{info.code}: {info.message}" for key, info in refused}

    async def _list(self, prefix: str, after: str | None, limit: int) -> ListPage:
        """One ListObjectsV2 request; ``next_after`` is the last key when S3 says more follow.

        A page that says "more follow" but holds no key (S3 may answer so) is
        followed by the next page in the same call rather than read as the end.
        """
        params = {"list-type": "2", "max-keys": str(limit), "encoding-type": "url"}
        if self._key_prefix or prefix:
            params["prefix"] = self._full(prefix)
        if after is not None:
            params["start-after"] = self._full(after)
        give_up_at = self._give_up_at()
        full_prefix = params.get("prefix", "")
        while True:
            listing = await self._send(
                _Request(
                    "list", prefix or None, "GET", self._bucket_path(), canonical_query(params)
                ),
                parse=listing_under(full_prefix),
                give_up_at=give_up_at,
            )
            keys = [self._relative(key) for key in listing.keys]
            if keys or not listing.truncated:
                return ListPage(keys, keys[-1] if listing.truncated else None)
            if not listing.continuation_token:
                raise StorageError(
                    f"S3 at {self._endpoint_name()} answered a listing of bucket"
                    f" {self.bucket!r} with an empty page that says more follow and no"
                    " continuation token",
                    operation="list",
                    key=prefix or None,
                )
            params["continuation-token"] = listing.continuation_token

    async def _close(self) -> None:
        """Release every loop's connections; requests in flight fail with StorageClosed."""
        await self._loops.close_all()

    def __repr__(self) -> str:
        where = self.endpoint_url or "AWS"
        return f"S3Storage(bucket={self.bucket!r}, prefix={self.prefix!r}, endpoint={where!r})"

    # -- keys and paths ---------------------------------------------------------

    def _full(self, key: str) -> str:
        return self._key_prefix + key

    def _relative(self, full: str) -> str:
        return full[len(self._key_prefix) :]

    def _object_path(self, key: str) -> str:
        return "/" + quote_path(self._full(key))

    def _bucket_path(self) -> str:
        return ""

    # -- conditional-request details ------------------------------------------

    async def _fetch(self, key: str, give_up_at: float | None) -> StoredObject | None:
        try:
            return await self._send(
                _Request("get", key, "GET", self._object_path(key)),
                handles=errs.MISSING_KEY_CODES,
                parse=lambda response: stored_object(key, response),
                give_up_at=give_up_at,
            )
        except _Refused:
            return None

    async def _settle_refused_put(
        self,
        key: str,
        payload: bytes,
        refused: _Refused,
        if_version: str | None,
        give_up_at: float,
    ) -> str:
        if not refused.after_ambiguity:
            if if_version is None:
                message = f"{key!r} already exists"
            else:
                message = f"{key!r} is not at version {if_version!r}"
            raise PreconditionFailed(message, operation="put", key=key)
        try:
            current = await self._fetch(key, give_up_at)
        except StorageClosed:
            raise
        except StorageError as exc:
            raise errs.FinalOutcomeUnknown(
                f"put of {key!r}: an attempt whose answer was lost may have landed, and"
                f" reading the key to find out failed: {exc}",
                operation="put",
                key=key,
            ) from exc
        if current is not None and current.data == payload:
            log.debug("ssshelf s3: put of %r landed before its answer was lost", key)
            return current.version
        raise errs.FinalOutcomeUnknown(
            f"put of {key!r}: an attempt whose answer was lost may have landed and been"
            " overwritten since (the key now holds other bytes), or never landed; read the"
            " key to find out",
            operation="put",
            key=key,
        )

    async def _probe(self, give_up_at: float | None) -> None:
        await self._prepare()
        await self._send(
            _Request("head_bucket", None, "HEAD", self._bucket_path()), give_up_at=give_up_at
        )
        if self._detected is None:  # an answer without S3 headers: assume the standard
            self._detected = "aws"

    async def _learn_flavor(self, give_up_at: float) -> Flavor:
        if self._detected is None:
            await self._probe(give_up_at)
        assert self._detected is not None
        return self._detected

    async def _quote_etags(self, give_up_at: float) -> bool:
        if self._etag_quoting != "auto":
            return self._etag_quoting == "quoted"
        return QUIRKS[await self._learn_flavor(give_up_at)].quote_etags

    async def _require_conditional_delete(self, key: str, give_up_at: float) -> None:
        if self._conditional_delete is None:
            await self._learn_flavor(give_up_at)
        if not self.supports_conditional_delete:
            raise UnsupportedOperation(
                f"the S3 server at {self._endpoint_name()} ignores If-Match on DELETE"
                f" ({self._detected or 'configured'}), so delete({key!r}, if_version=...)"
                " cannot be enforced; check supports_conditional_delete first",
                operation="delete",
                key=key,
            )

    def _race_lost_codes(self, request: _Request) -> frozenset[str]:
        """Codes this server answers a conditional write that lost a race with (not applied)."""
        headers = request.headers or {}
        if self._detected is None or not ("if-match" in headers or "if-none-match" in headers):
            return frozenset()
        return QUIRKS[self._detected].race_lost_codes

    def _notice(self, status: int, headers: dict[str, str]) -> None:
        if self._detected is None:
            self._detected = detect_flavor(status, headers)

    # -- the request loop -----------------------------------------------------

    def _give_up_at(self) -> float:
        return asyncio.get_running_loop().time() + self.deadline

    async def _send(
        self,
        request: _Request,
        *,
        handles: frozenset[str] = frozenset(),
        parse: Callable[[Response], T] = no_result,  # type: ignore[assignment]
        give_up_at: float | None = None,
    ) -> T:
        """Make one S3 request with retries, within the call's deadline.

        Refusals whose code is in ``handles`` raise :class:`_Refused`; other
        failures raise a typed :class:`StorageError`.  ``parse`` turns a
        successful answer into the result, raising :class:`errs.BadAnswer`
        when the answer cannot be right.
        """
        state = await self._state()
        loop = asyncio.get_running_loop()
        if give_up_at is None:
            give_up_at = loop.time() + self.deadline
        policy = self.retries
        failures = 0
        landed = False
        redirected = False
        while True:
            try:
                outcome = await self._attempt(state, request, parse, give_up_at)
            except NotSent as not_sent:
                if not (landed and request.is_write):
                    raise
                raise OutcomeUnknown(
                    f"{request.operation} of {request.key!r}: an earlier try may have "
                    f"landed, and the retry was not sent ({not_sent})",
                    operation=request.operation,
                    key=request.key,
                ) from not_sent
            if not isinstance(outcome, errs.Failure):
                return outcome
            if self._closed:
                raise self._closed_in_flight(request, landed or request.is_write)
            if isinstance(outcome, errs.Refusal) and not redirected:
                region = errs.redirect_region(outcome, self.region)
                if region is not None:  # S3 says the bucket is elsewhere: sign for there
                    log.debug("ssshelf s3: bucket %r is in %s; following", self.bucket, region)
                    redirected = True
                    self._target = self._make_target(region)
                    continue
            if isinstance(outcome, errs.Refusal) and outcome.code in handles:
                raise _Refused(outcome.code, after_ambiguity=landed)
            ambiguous = landed and request.is_write
            where = self._where()
            if not errs.is_transient(outcome):
                raise errs.translate(
                    outcome,
                    operation=request.operation,
                    key=request.key,
                    where=where,
                    landed=ambiguous,
                ) from outcome
            failures += 1
            landed = landed or (
                request.is_write and errs.may_have_landed(outcome, self._race_lost_codes(request))
            )
            delay = policy.delay(failures, self._rng)
            out_of_time = loop.time() + delay >= give_up_at
            if failures >= policy.attempts or out_of_time:
                raise errs.exhausted(
                    outcome,
                    operation=request.operation,
                    key=request.key,
                    where=where,
                    attempts=failures,
                    landed=landed,
                    out_of_time=out_of_time and failures < policy.attempts,
                ) from outcome
            log.debug(
                "ssshelf s3: %s %r failed (%s); retry %d in %.3fs",
                request.operation,
                request.key,
                errs.describe(outcome),
                failures,
                delay,
            )
            await _backoff(state, delay)
            if self._closed:
                raise self._closed_in_flight(request, landed)

    async def _attempt(
        self,
        state: LoopState,
        request: _Request,
        parse: Callable[[Response], T],
        give_up_at: float,
    ) -> T | errs.Failure:
        """One try: the parsed answer, or the failure for :meth:`_send` to judge."""
        target = self._target
        assert target is not None
        body = request.body
        expect = len(body) >= EXPECT_CONTINUE_BYTES and not self._http10
        try:
            head = await self._signed(request, target, expect_continue=expect)
        except NoCredentials:
            return errs.NoCredentialsFound()
        loop = asyncio.get_running_loop()
        if loop.time() >= give_up_at:
            return AttemptTimedOut("the call's deadline passed before this attempt", sent=False)
        try:
            response = await state.pool.request(
                target.route,
                head,
                body,
                head_only=request.method == "HEAD",
                expect_continue=expect,
                idle=self.read_timeout,
                give_up_at=give_up_at,
                send_by=sending.send_deadline(),
            )
        except AttemptTimedOut as exc:
            send_by = sending.send_deadline()
            if not exc.sent and send_by is not None and loop.time() >= send_by:
                raise NotSent(
                    f"{request.operation} was not sent: every connection stayed busy until "
                    "the deadline its caller set",
                    operation=request.operation,
                    key=request.key,
                ) from None
            return exc
        except TransportError as exc:
            return exc
        if response.http10:
            self._http10 = True
        self._notice(response.status, response.headers)
        if response.status >= 300:
            info = _xml.parse_error(response.body)
            return errs.Refusal(
                response.status, info.code, info.message, response.headers, region=info.region
            )
        try:
            return parse(response)
        except errs.BadAnswer as exc:
            return exc
        except _xml.MalformedAnswer as exc:
            return errs.BadAnswer(str(exc), transient=False)

    async def _signed(self, request: _Request, target: _Target, *, expect_continue: bool) -> bytes:
        """The request's head as bytes on the wire, signed now (the body follows it)."""
        keys = await self._credentials.keys()
        addressing = target.addressing
        path = addressing.path_prefix + request.path or "/"
        body = request.body
        headers = dict(request.headers) if request.headers else {}
        payload_hash = request.payload_hash or (
            hashlib.sha256(body).hexdigest() if body else EMPTY_SHA256
        )
        signed = target.signer.headers(
            keys, request.method, addressing.host, path, request.query, headers, payload_hash
        )
        url = f"{path}?{request.query}" if request.query else path
        lines = [f"{request.method} {target.url_prefix}{url} HTTP/1.1", f"host: {addressing.host}"]
        lines += [f"{name}: {value}" for name, value in headers.items()]
        lines += [f"{name}: {value}" for name, value in signed.items()]
        if body or request.method in ("PUT", "POST"):
            lines.append(f"content-length: {len(body)}")
        if expect_continue:
            lines.append("expect: 100-continue")
        lines.append(f"user-agent: {_USER_AGENT}")
        head = "\r\n".join(lines) + "\r\n" + target.proxy_line + "\r\n"
        try:
            return head.encode("latin-1")
        except UnicodeEncodeError as exc:  # only credentials from the chain are left unchecked
            raise InvalidArgument(
                f"S3 {request.operation}: a header value is not Latin-1 text ({exc.reason})"
            ) from None

    def _closed_in_flight(self, request: _Request, maybe_applied: bool) -> StorageClosed:
        note = (
            "; it was in flight and may or may not have taken effect"
            if maybe_applied and request.is_write
            else ""
        )
        return StorageClosed(
            f"{self!r} was closed during {request.operation}"
            f"{f' of {request.key!r}' if request.key is not None else ''}{note}",
            operation=request.operation,
            key=request.key,
        )

    def _where(self) -> errs.Where:
        return errs.Where(
            self.bucket, self._endpoint_name(), self._credentials.description, self.region
        )

    def _endpoint_name(self) -> str:
        if self.endpoint_url:
            return self.endpoint_url
        return f"AWS S3 ({self.region})"

    # -- per-loop state and first use -------------------------------------------

    async def _state(self) -> LoopState:
        if self._closed:
            raise StorageClosed(f"{self!r} is closed", operation="s3")
        state = self._loops.get()
        if state is None:
            await self._prepare()
            state = await self._loops.create()
        return state

    async def _prepare(self) -> None:
        """Resolve credentials, region and the AWS config (once, in a worker thread:
        botocore reads files and may ask the instance metadata service)."""
        if self._closed:
            raise StorageClosed(f"{self!r} is closed", operation="s3")
        if self._target is None:
            await asyncio.to_thread(self._prepare_now)

    def _prepare_now(self) -> None:
        with self._prepare_lock:
            if self._target is not None:
                return
            self._credentials.resolve_now()
            shared = self._credentials.config
            if self._endpoint_from_environment and shared.ignore_configured_endpoints:
                self.endpoint_url = self._endpoint = None
            if self.endpoint_url is None and shared.endpoint_url:
                self._endpoint = parse_endpoint(shared.endpoint_url)
                self.endpoint_url = shared.endpoint_url
            if not self._retries_given and shared.max_attempts:
                self.retries = replace(DEFAULT_RETRIES, attempts=shared.max_attempts)
            if self._addressing_style is None:
                style = shared.addressing_style or "auto"
                check_addressing_style(style, where="the AWS config file's s3 addressing_style")
                self._addressing_style = style  # type: ignore[assignment]
            if self._endpoint is None or self._endpoint.scheme == "https":
                verify = self._verify if self._verify is not None else shared.ca_bundle or True
                self._tls = tls_context(verify, needed=True)
            self._target = self._make_target(self.region)

    def _make_target(self, region: str) -> _Target:
        """Where requests for ``region`` go (AWS's regional endpoint unless one is set)."""
        custom = self._endpoint is not None
        endpoint = self._endpoint or parse_endpoint(aws_endpoint(region))
        style = self._addressing_style or "auto"
        addressing = address(self.bucket, endpoint, style=style, custom=custom)
        route = route_for(addressing.origin, self._proxies)
        forwarded = route.forwarded
        return _Target(
            region,
            addressing,
            route,
            Signer(region),
            f"http://{addressing.host}" if forwarded else "",
            f"proxy-authorization: {route.proxy_authorization}\r\n"
            if forwarded and route.proxy_authorization
            else "",
        )

    def _make_pool(self) -> ConnectionPool:
        return ConnectionPool(
            connect_timeout=self.connect_timeout, max_connections=self._pool_size, tls=self._tls
        )


def _first(*values: Any) -> Any:
    """The first value that is not ``None``."""
    return next(value for value in values if value is not None)


async def _backoff(state: LoopState, delay: float) -> None:
    """Sleep ``delay`` seconds, or less if the storage is closed meanwhile."""
    try:
        async with asyncio.timeout(delay):
            await state.closing.wait()
    except TimeoutError:
        pass
