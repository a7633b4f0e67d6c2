"""S3Storage: the storage contract on Amazon S3 and S3-protocol servers.

One aiobotocore client (and so one connection pool) per storage, created on
the first request and released by :meth:`S3Storage.close`.  Each contract
method is one S3 request (plus retries):

===============  ========================================================
``get``          GetObject
``put``          PutObject (``If-None-Match: *`` / ``If-Match: <etag>``)
``delete``       DeleteObject (``If-Match: <etag>`` when conditional)
``delete_many``  DeleteObjects (quiet mode)
``list``         ListObjectsV2 (``Prefix``, ``StartAfter``, ``MaxKeys``)
===============  ========================================================

The exceptions, each rare: one GET after an ambiguous conditional PUT, one
HeadBucket before the first ``If-Match`` to a server not yet heard from,
and one DeleteObject per key an XML body cannot carry in ``delete_many``.

Version tags are the objects' ETags without quotes.  Retries (throttling,
5xx, timeouts, dropped connections, 409 ``ConditionalRequestConflict``) are
done here, not by botocore, so that a conditional PUT whose first attempt
landed but whose answer was lost is recognised instead of reported as a
conflict.  See ``docs/s3.md``.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import os
import random
import re
from collections.abc import Awaitable, Callable, Sequence
from contextlib import AsyncExitStack
from dataclasses import dataclass
from datetime import datetime
from email.utils import parsedate_to_datetime
from typing import Any

from aiobotocore.config import AioConfig
from aiobotocore.session import AioSession
from botocore.exceptions import BotoCoreError, ClientError
from botocore.handlers import add_expect_header
from botocore.loaders import create_loader

from ..errors import (
    ConfigurationError,
    DeleteFailed,
    InvalidArgument,
    InvalidKeyError,
    PreconditionFailed,
    StorageError,
    UnsupportedOperation,
)
from . import _s3_errors as errs
from ._s3_compat import (
    QUIRKS,
    EtagQuoting,
    Flavor,
    FlavorSetting,
    bare_etag,
    detect_flavor,
    if_match_value,
)
from ._s3_http import NoHiddenRetrySession
from .base import (
    MAX_KEY_BYTES,
    MAX_LIST_LIMIT,
    ListPage,
    StoredObject,
    check_batch,
    check_conditions,
    check_key,
    check_limit,
)

__all__ = ["RetryPolicy", "S3Storage"]

log = logging.getLogger(__name__)

_Response = dict[str, Any]
_Call = Callable[[Any], Awaitable[_Response]]

_CONDITION_REFUSALS = errs.PRECONDITION_CODES | errs.MISSING_KEY_CODES
#: Characters an XML 1.0 body cannot carry as they are (see ``delete_many``).
_XML_UNSAFE = re.compile("[^\t\n\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")
_DEFAULT_REGION = "us-east-1"


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """Exponential backoff with full jitter.

    A request is tried at most ``attempts`` times; before try *n + 1* it
    waits a uniformly random time in ``[0, min(max_delay, base_delay * 2**(n-1))]``
    seconds.
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


DEFAULT_RETRIES = RetryPolicy()


class _Refused(Exception):
    """A refusal the calling method interprets itself (412, 404 NoSuchKey)."""

    def __init__(self, code: str, *, after_ambiguity: bool) -> None:
        super().__init__(code)
        self.code = code
        #: An earlier attempt of the same request may have been applied.
        self.after_ambiguity = after_ambiguity


class S3Storage:
    """Objects in one S3 bucket, optionally under a key prefix.

    ``bucket`` defaults to ``SSSHELF_BUCKET``; the endpoint to
    ``endpoint_url``, then ``aws_client_kwargs["endpoint_url"]``, then
    ``AWS_ENDPOINT_URL_S3`` / ``AWS_ENDPOINT_URL`` (else AWS itself); the
    region to ``region``, ``aws_client_kwargs["region_name"]``, the AWS
    configuration chain, then ``us-east-1``.  Credentials come from
    ``aws_client_kwargs`` or the standard AWS chain.  ``aws_client_kwargs``
    go to ``AioSession.create_client``; a ``config`` among them is merged
    over this storage's own settings.

    With ``s3_client`` that client is used as is and never closed here.

    Keys are relative to ``prefix``: every object is stored under
    ``prefix + "/"`` and keys come back without it, so two storages with
    different prefixes in one bucket never see each other's keys.

    Server quirks (see ``_s3_compat.py`` and ``docs/s3.md``): ``flavor`` is
    ``"auto"`` (recognised from the server's answers), ``"aws"`` or ``"ceph"``;
    ``etag_quoting`` and ``conditional_delete`` override single aspects.
    """

    #: PutObject's If-None-Match/If-Match are enforced by every supported server.
    supports_conditional_put = True

    def __init__(
        self,
        bucket: str | None = None,
        aws_client_kwargs: dict[str, Any] | None = None,
        s3_client: Any = None,
        *,
        prefix: str = "",
        endpoint_url: str | None = None,
        region: str | None = None,
        max_pool_connections: int = 64,
        max_in_flight: int = 64,
        retries: RetryPolicy = DEFAULT_RETRIES,
        connect_timeout: float = 5.0,
        read_timeout: float = 30.0,
        flavor: FlavorSetting = "auto",
        etag_quoting: EtagQuoting = "auto",
        conditional_delete: bool | None = None,
    ) -> None:
        self.bucket = bucket or os.environ.get("SSSHELF_BUCKET") or ""
        if not self.bucket:
            raise ConfigurationError(
                "S3Storage needs a bucket name: pass bucket=..., use a storage URL like"
                " s3://bucket/prefix, or set SSSHELF_BUCKET"
            )
        _check_settings(max_pool_connections, max_in_flight, flavor, etag_quoting)
        self.prefix = prefix.strip("/")
        self._key_prefix = f"{self.prefix}/" if self.prefix else ""
        #: Longest relative key: S3's 1,024 bytes less the prefix and its "/".
        self.max_key_length = MAX_KEY_BYTES - len(self._key_prefix.encode("utf-8"))
        if self.max_key_length < 1:
            raise ConfigurationError(f"S3 key prefix {self.prefix[:80]!r}… leaves no room for keys")

        self._client_kwargs = dict(aws_client_kwargs or {})
        given_endpoint = self._client_kwargs.pop("endpoint_url", None)
        given_region = self._client_kwargs.pop("region_name", None)
        #: The custom endpoint, or ``None`` for AWS itself.
        self.endpoint_url: str | None = (
            endpoint_url
            or given_endpoint
            or os.environ.get("AWS_ENDPOINT_URL_S3")
            or os.environ.get("AWS_ENDPOINT_URL")
            or None
        )
        self._region: str | None = region or given_region
        self._pool_size = max_pool_connections
        self._timeouts = (connect_timeout, read_timeout)
        self.retries = retries

        self._detected: Flavor | None = None if flavor == "auto" else flavor
        self._etag_quoting = etag_quoting
        self._conditional_delete = conditional_delete

        self._client: Any = s3_client
        self._stack: AsyncExitStack | None = None
        self._client_lock = asyncio.Lock()
        self._in_flight = asyncio.Semaphore(max_in_flight)
        self._rng = random.Random()
        self._credential_source = self._describe_given_credentials()
        self._closed = False

    # -- public extras ------------------------------------------------------

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
        """The region requests are signed for (known once the client exists)."""
        return self._region or _DEFAULT_REGION

    async def probe(self) -> None:
        """One HeadBucket request: fail now rather than at first use.

        Raises :class:`.BucketNotFound`, :class:`.AccessDenied` or
        :class:`.StorageUnavailable` with what to check, and learns the
        server's quirks when ``flavor="auto"``.
        """
        await self._send("head_bucket", None, lambda c: c.head_bucket(Bucket=self.bucket))
        if self._detected is None:  # an answer without S3 headers: assume the standard
            self._detected = "aws"

    async def create_bucket(self) -> None:
        """Create the bucket; one that already exists and is yours is fine."""
        params: dict[str, Any] = {"Bucket": self.bucket}
        await self._get_client()  # settles the region
        if self.region != _DEFAULT_REGION:
            params["CreateBucketConfiguration"] = {"LocationConstraint": self.region}
        try:
            await self._send(
                "create_bucket",
                None,
                lambda c: c.create_bucket(**params),
                handles=frozenset({"BucketAlreadyOwnedByYou"}),
            )
        except _Refused:
            return

    async def delete_bucket(self) -> None:
        """Delete the bucket, which must be empty."""
        await self._send("delete_bucket", None, lambda c: c.delete_bucket(Bucket=self.bucket))

    # -- the contract -------------------------------------------------------

    async def get(self, key: str) -> StoredObject | None:
        """The object and its version (ETag), or ``None`` when the key is missing."""
        check_key(key, max_bytes=self.max_key_length)
        return await self._fetch(key)

    async def put(
        self,
        key: str,
        data: bytes,
        *,
        if_absent: bool = False,
        if_version: str | None = None,
    ) -> str:
        """Store ``data``; return its version.  A failed condition raises PreconditionFailed.

        A conditional write retried after a lost answer that then fails its
        condition is checked with one GET: when the key holds exactly
        ``data``, the earlier attempt landed and its version is returned.
        """
        check_key(key, max_bytes=self.max_key_length)
        check_conditions(if_absent, if_version)
        payload = bytes(data)
        params: dict[str, Any] = {"Bucket": self.bucket, "Key": self._full(key), "Body": payload}
        if if_absent:
            params["IfNoneMatch"] = "*"
        elif if_version is not None:
            params["IfMatch"] = if_match_value(if_version, quoted=await self._quote_etags())
        conditional = if_absent or if_version is not None
        try:
            response = await self._send(
                "put",
                key,
                lambda c: c.put_object(**params),
                handles=_CONDITION_REFUSALS if conditional else frozenset(),
            )
        except _Refused as refused:
            return await self._settle_refused_put(key, payload, refused, if_version)
        return bare_etag(response["ETag"])

    async def delete(self, key: str, *, if_version: str | None = None) -> None:
        """Delete ``key`` (missing is fine); with ``if_version`` only at that version.

        A conditional delete on a server that ignores ``If-Match`` on DELETE
        (Ceph RGW) raises :class:`.UnsupportedOperation` without deleting.
        """
        check_key(key, max_bytes=self.max_key_length)
        params: dict[str, Any] = {"Bucket": self.bucket, "Key": self._full(key)}
        if if_version is None:
            await self._send("delete", key, lambda c: c.delete_object(**params))
            return
        await self._require_conditional_delete(key)
        params["IfMatch"] = if_match_value(if_version, quoted=await self._quote_etags())
        try:
            await self._send(
                "delete", key, lambda c: c.delete_object(**params), handles=_CONDITION_REFUSALS
            )
        except _Refused as refused:
            if refused.after_ambiguity and refused.code in errs.MISSING_KEY_CODES:
                return
            raise PreconditionFailed(
                f"{key!r} is not at version {if_version!r}", operation="delete", key=key
            ) from None

    async def delete_many(self, keys: Sequence[str]) -> None:
        """Delete up to 1,000 keys in one DeleteObjects request; refusals raise DeleteFailed.

        DeleteObjects carries keys in an XML body, which cannot hold every
        character a key may have (control characters, U+FFFE/U+FFFF; a
        carriage return would be read back as a line feed).  Such keys are
        deleted with one DeleteObject each instead; no request for none.
        """
        check_batch(keys)
        for key in keys:
            check_key(key, max_bytes=self.max_key_length)
        in_xml = [key for key in keys if not _XML_UNSAFE.search(key)]
        one_by_one = [key for key in keys if _XML_UNSAFE.search(key)]
        failures = await self._delete_objects(in_xml) if in_xml else {}
        for key, outcome in zip(
            one_by_one,
            await asyncio.gather(*(self.delete(k) for k in one_by_one), return_exceptions=True),
            strict=True,
        ):
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
        objects = [{"Key": self._full(key)} for key in keys]
        response = await self._send(
            "delete_many",
            None,
            lambda c: c.delete_objects(
                Bucket=self.bucket, Delete={"Objects": objects, "Quiet": True}
            ),
        )
        return {
            self._relative(e.get("Key", "")): f"{e.get('Code')}: {e.get('Message')}"
            for e in response.get("Errors") or ()
        }

    async def list(
        self, prefix: str = "", *, after: str | None = None, limit: int = MAX_LIST_LIMIT
    ) -> ListPage:
        """One ListObjectsV2 request; ``next_after`` is the last key when S3 says more follow."""
        check_limit(limit)
        _check_text(prefix, "list prefix")
        params: dict[str, Any] = {"Bucket": self.bucket, "MaxKeys": limit}
        if self._key_prefix or prefix:
            params["Prefix"] = self._full(prefix)
        if after is not None:
            _check_text(after, "list after")
            params["StartAfter"] = self._full(after)
        response = await self._send("list", prefix or None, lambda c: c.list_objects_v2(**params))
        keys = [self._relative(obj["Key"]) for obj in response.get("Contents", ())]
        more = bool(response.get("IsTruncated")) and bool(keys)
        return ListPage(keys, keys[-1] if more else None)

    async def close(self) -> None:
        """Release the client and its connections (unless it was passed in).  Idempotent."""
        if self._closed:
            return
        self._closed = True
        stack, self._stack = self._stack, None
        self._client = None
        if stack is not None:
            await stack.aclose()

    async def __aenter__(self) -> S3Storage:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    def __repr__(self) -> str:
        where = self.endpoint_url or "AWS"
        return f"S3Storage(bucket={self.bucket!r}, prefix={self.prefix!r}, endpoint={where!r})"

    # -- keys -----------------------------------------------------------------

    def _full(self, key: str) -> str:
        return self._key_prefix + key

    def _relative(self, full: str) -> str:
        return full[len(self._key_prefix) :]

    # -- conditional-request details ------------------------------------------

    async def _fetch(self, key: str) -> StoredObject | None:
        full = self._full(key)

        async def read(client: Any) -> _Response:
            response: _Response = await client.get_object(Bucket=self.bucket, Key=full)
            async with response["Body"] as body:
                response["Body"] = await body.read()
            return response

        try:
            response = await self._send("get", key, read, handles=errs.MISSING_KEY_CODES)
        except _Refused:
            return None
        return StoredObject(
            key,
            response["Body"],
            bare_etag(response["ETag"]),
            response.get("LastModified"),
            _answered_at(response),
        )

    async def _settle_refused_put(
        self, key: str, payload: bytes, refused: _Refused, if_version: str | None
    ) -> str:
        if refused.after_ambiguity:
            current = await self._fetch(key)
            if current is not None and current.data == payload:
                log.debug("ssshelf s3: put of %r landed before its answer was lost", key)
                return current.version
        if if_version is None:
            message = f"{key!r} already exists"
        else:
            message = f"{key!r} is not at version {if_version!r}"
        raise PreconditionFailed(message, operation="put", key=key)

    async def _learn_flavor(self) -> Flavor:
        if self._detected is None:
            await self.probe()
        assert self._detected is not None
        return self._detected

    async def _quote_etags(self) -> bool:
        if self._etag_quoting != "auto":
            return self._etag_quoting == "quoted"
        return QUIRKS[await self._learn_flavor()].quote_etags

    async def _require_conditional_delete(self, key: str) -> None:
        if self._conditional_delete is None:
            await self._learn_flavor()
        if not self.supports_conditional_delete:
            raise UnsupportedOperation(
                f"the S3 server at {self._endpoint_name()} ignores If-Match on DELETE"
                f" ({self._detected or 'configured'}), so delete({key!r}, if_version=...)"
                " cannot be enforced; check supports_conditional_delete first",
                operation="delete",
                key=key,
            )

    def _notice(self, status: int, headers: dict[str, str]) -> None:
        if self._detected is None:
            self._detected = detect_flavor(status, headers)

    # -- the request loop -----------------------------------------------------

    async def _send(
        self,
        operation: str,
        key: str | None,
        call: _Call,
        *,
        handles: frozenset[str] = frozenset(),
    ) -> _Response:
        """Make one S3 request with retries; return botocore's parsed response.

        Refusals whose code is in ``handles`` raise :class:`_Refused`; other
        failures raise a typed :class:`StorageError`.
        """
        client = await self._get_client()
        policy = self.retries
        failures = 0
        ambiguous = False
        while True:
            outcome = await self._attempt(client, call, handles, ambiguous)
            if not isinstance(outcome, BaseException):
                return outcome
            where = self._where()
            if not errs.is_transient(outcome):
                raise errs.translate(
                    outcome, operation=operation, key=key, where=where
                ) from outcome
            failures += 1
            ambiguous = ambiguous or errs.may_have_landed(outcome)
            if failures >= policy.attempts:
                raise errs.exhausted(
                    outcome, operation=operation, key=key, where=where, attempts=failures
                ) from outcome
            delay = policy.delay(failures, self._rng)
            log.debug(
                "ssshelf s3: %s %r failed (%s); retry %d in %.3fs",
                operation,
                key,
                errs.describe(outcome),
                failures,
                delay,
            )
            await asyncio.sleep(delay)

    async def _attempt(
        self, client: Any, call: _Call, handles: frozenset[str], ambiguous: bool
    ) -> _Response | BaseException:
        """One try: botocore's response, or the failure for :meth:`_send` to judge."""
        failure: BaseException
        try:
            async with self._in_flight:
                response = await call(client)
        except ClientError as exc:
            self._notice(errs.http_status(exc), errs.response_headers(exc))
            code = errs.error_code(exc)
            if code in handles:
                raise _Refused(code, after_ambiguity=ambiguous) from None
            failure = exc
            return failure
        except (BotoCoreError, *errs.TRANSPORT_ERRORS) as exc:
            failure = exc
            return failure
        meta = response.get("ResponseMetadata", {})
        self._notice(meta.get("HTTPStatusCode", 200), meta.get("HTTPHeaders", {}))
        return response

    def _where(self) -> errs.Where:
        source = self._credential_source or "the AWS credential chain"
        return errs.Where(self.bucket, self._endpoint_name(), source)

    def _endpoint_name(self) -> str:
        if self.endpoint_url:
            return self.endpoint_url
        if self._client is not None:
            return str(self._client.meta.endpoint_url)
        return f"AWS S3 ({self.region})"

    # -- the client -------------------------------------------------------------

    async def _get_client(self) -> Any:
        if self._closed:
            raise StorageError(f"{self!r} is closed", operation="s3")
        if self._client is None:
            async with self._client_lock:
                if self._client is None:
                    self._client = await self._open_client()
        return self._client

    async def _open_client(self) -> Any:
        session = AioSession()
        session.register_component("data_loader", _shared_loader())
        if self._region is None:
            self._region = session.get_config_variable("region") or _DEFAULT_REGION
        if self._credential_source is None:
            credentials = await session.get_credentials()
            method = getattr(credentials, "method", None)
            self._credential_source = (
                f"the AWS credential chain, found: {method}"
                if credentials is not None
                else "none found in the AWS credential chain"
            )
        kwargs = dict(self._client_kwargs)
        config = self._config()
        kwargs["config"] = config.merge(kwargs["config"]) if "config" in kwargs else config
        stack = AsyncExitStack()
        client = await stack.enter_async_context(
            session.create_client(
                "s3", region_name=self._region, endpoint_url=self.endpoint_url, **kwargs
            )
        )
        _drop_expect_header(client)
        self._stack = stack
        return client

    def _config(self) -> AioConfig:
        connect_timeout, read_timeout = self._timeouts
        return AioConfig(
            http_session_cls=NoHiddenRetrySession,
            max_pool_connections=self._pool_size,
            connect_timeout=connect_timeout,
            read_timeout=read_timeout,
            retries={"total_max_attempts": 1},
            s3={"addressing_style": "path"} if self.endpoint_url else None,
            request_checksum_calculation="when_required",
            response_checksum_validation="when_required",
        )

    def _describe_given_credentials(self) -> str | None:
        if self._client is not None:
            return "those of the s3_client passed in"
        if "aws_access_key_id" in self._client_kwargs:
            return "aws_access_key_id/aws_secret_access_key in aws_client_kwargs"
        return None


@functools.cache
def _shared_loader() -> Any:
    """botocore's model loader, shared so that each new client skips re-reading
    the S3 service model and endpoint rules (~0.2 s of CPU a client)."""
    return create_loader()


def _drop_expect_header(client: Any) -> None:
    """Send PutObject bodies at once instead of waiting for ``100 Continue``.

    botocore adds ``Expect: 100-continue`` to every S3 PUT; for small bodies
    that is a wasted round trip.
    """
    client.meta.events.unregister("before-call.s3", add_expect_header)


def _check_settings(
    max_pool_connections: int, max_in_flight: int, flavor: str, etag_quoting: str
) -> None:
    if max_in_flight < 1 or max_pool_connections < 1:
        raise InvalidArgument("max_in_flight and max_pool_connections must be at least 1")
    if flavor not in ("auto", "aws", "ceph"):
        raise InvalidArgument(f"flavor must be 'auto', 'aws' or 'ceph', got {flavor!r}")
    if etag_quoting not in ("auto", "quoted", "unquoted"):
        raise InvalidArgument(
            f"etag_quoting must be 'auto', 'quoted' or 'unquoted', got {etag_quoting!r}"
        )


def _check_text(value: str, what: str) -> None:
    if not isinstance(value, str):
        raise InvalidKeyError(f"{what} must be a str, got {value!r}")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise InvalidKeyError(f"{what} {value!r} is not valid Unicode: {exc}") from None


def _answered_at(response: _Response) -> datetime | None:
    """The store's clock when it answered (the HTTP ``Date`` header)."""
    raw = response.get("ResponseMetadata", {}).get("HTTPHeaders", {}).get("date")
    if not raw:
        return None
    try:
        return parsedate_to_datetime(raw)
    except (TypeError, ValueError):
        return None
