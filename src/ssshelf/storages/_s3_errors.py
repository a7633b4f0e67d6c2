"""How :class:`~ssshelf.storages.s3.S3Storage` reads botocore's failures.

Every failure of one S3 request falls in one of three groups:

* transient (throttling, 5xx, timeouts, dropped connections, 409
  ``ConditionalRequestConflict``): retried with backoff;
* a refusal the caller handles itself (``PreconditionFailed``, ``NoSuchKey``);
* anything else: translated at once into a typed :class:`StorageError`.

Secrets never appear in a message: only the bucket, the endpoint, the key
and where the credentials came from.
"""

from __future__ import annotations

import asyncio
import socket
from dataclasses import dataclass
from typing import Any

import aiohttp
from botocore.exceptions import (
    ClientError,
    ConnectionError,
    ConnectTimeoutError,
    EndpointConnectionError,
    HTTPClientError,
    IncompleteReadError,
    NoCredentialsError,
)

from ..errors import AccessDenied, BucketNotFound, StorageError, StorageUnavailable

#: S3 error codes that mean "try again later".
RETRYABLE_CODES = frozenset(
    {
        "SlowDown",
        "InternalError",
        "ServiceUnavailable",
        "RequestTimeout",
        "Throttling",
        "ThrottlingException",
        "RequestLimitExceeded",
        "TooManyRequests",
        "ConditionalRequestConflict",
        "OperationAborted",
    }
)
RETRYABLE_STATUS = frozenset({429, 500, 502, 503, 504})
#: Answers saying the request was not acted on; any other failure may hide a success.
_NOT_APPLIED_CODES = frozenset(
    {
        "SlowDown",
        "Throttling",
        "ThrottlingException",
        "RequestLimitExceeded",
        "TooManyRequests",
        "ConditionalRequestConflict",
    }
)
PRECONDITION_CODES = frozenset({"PreconditionFailed", "412"})
MISSING_KEY_CODES = frozenset({"NoSuchKey", "404"})
_DENIED_CODES = frozenset(
    {
        "AccessDenied",
        "InvalidAccessKeyId",
        "SignatureDoesNotMatch",
        "InvalidToken",
        "ExpiredToken",
        "TokenRefreshRequired",
        "AllAccessDisabled",
        "403",
    }
)
TRANSPORT_ERRORS: tuple[type[BaseException], ...] = (
    HTTPClientError,
    ConnectionError,
    IncompleteReadError,
    aiohttp.ClientError,
    asyncio.TimeoutError,
    ConnectionResetError,
)


@dataclass(frozen=True, slots=True)
class Where:
    """What an error message names: never credentials themselves."""

    bucket: str
    endpoint: str
    credential_source: str


def error_code(exc: ClientError) -> str:
    """The S3 error code, or the HTTP status as text when the body had none (HEAD)."""
    response: dict[str, Any] = exc.response
    code = response.get("Error", {}).get("Code")
    return str(code) if code else str(http_status(exc))


def http_status(exc: ClientError) -> int:
    """The HTTP status of a refused request (0 when botocore did not record one)."""
    response: dict[str, Any] = exc.response
    return int(response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0))


def response_headers(exc: ClientError) -> dict[str, str]:
    """The headers of a refused request, lower-cased names."""
    response: dict[str, Any] = exc.response
    headers: dict[str, str] = response.get("ResponseMetadata", {}).get("HTTPHeaders", {})
    return headers


def is_transient(exc: BaseException) -> bool:
    """Whether trying the same request again may succeed."""
    if isinstance(exc, ClientError):
        return error_code(exc) in RETRYABLE_CODES or http_status(exc) in RETRYABLE_STATUS
    return isinstance(exc, TRANSPORT_ERRORS)


def connect_failed(exc: BaseException) -> bool:
    """Whether no connection to the endpoint could be opened at all."""
    if isinstance(exc, ConnectTimeoutError):
        return True
    if not isinstance(exc, EndpointConnectionError):
        return False
    # aiobotocore also reports a reset of an open connection this way.
    cause = exc.kwargs.get("error")
    return cause is None or isinstance(cause, aiohttp.ClientConnectorError | socket.gaierror)


def may_have_landed(exc: BaseException) -> bool:
    """Whether the failed request may still have been applied by the store.

    A refused connection never reached it and a throttling answer was never
    acted on; a lost response, a timeout or a 5xx may hide a success.
    """
    if connect_failed(exc):
        return False
    if isinstance(exc, ClientError):
        return error_code(exc) not in _NOT_APPLIED_CODES
    return True


def describe(exc: BaseException) -> str:
    """A one-line reason for a message."""
    if isinstance(exc, ClientError):
        message = exc.response.get("Error", {}).get("Message") or ""
        return f"{error_code(exc)} (HTTP {http_status(exc)}){': ' + message if message else ''}"
    return f"{type(exc).__name__}: {exc}"


def exhausted(
    exc: BaseException, *, operation: str, key: str | None, where: Where, attempts: int
) -> StorageUnavailable:
    """The error for a request that stayed transient through every attempt."""
    target = f"{operation} of {key!r}" if key is not None else operation
    if connect_failed(exc):
        return StorageUnavailable(
            f"cannot reach the S3 endpoint {where.endpoint} ({target}, {attempts} attempts,"
            f" last: {describe(exc)}); check that the server is running and reachable"
            " from here and that the endpoint URL is right",
            operation=operation,
            key=key,
        )
    return StorageUnavailable(
        f"S3 at {where.endpoint} kept failing {target} in bucket {where.bucket!r}"
        f" after {attempts} attempts (last: {describe(exc)}); the store is overloaded"
        " or unavailable, try again later",
        operation=operation,
        key=key,
    )


def translate(exc: BaseException, *, operation: str, key: str | None, where: Where) -> StorageError:
    """The typed error for a failure that retrying will not fix."""
    if isinstance(exc, NoCredentialsError):
        return AccessDenied(
            f"no AWS credentials found for the S3 endpoint {where.endpoint}: set"
            " AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, AWS_PROFILE, or pass them in"
            " aws_client_kwargs",
            operation=operation,
            key=key,
        )
    if not isinstance(exc, ClientError):
        return StorageError(
            f"S3 {operation} failed at {where.endpoint}: {describe(exc)}",
            operation=operation,
            key=key,
        )
    code = error_code(exc)
    if code == "NoSuchBucket" or (operation == "head_bucket" and code == "404"):
        endpoint_option = (
            f" --endpoint-url {where.endpoint}" if where.endpoint.startswith("http") else ""
        )
        return BucketNotFound(
            f"S3 bucket {where.bucket!r} does not exist at {where.endpoint}; create it"
            f" first (e.g. `aws s3 mb s3://{where.bucket}{endpoint_option}`"
            " or `await S3Storage(...).create_bucket()`)",
            operation=operation,
            key=key,
        )
    if code in _DENIED_CODES:
        return AccessDenied(
            f"S3 at {where.endpoint} refused {operation} on bucket {where.bucket!r}:"
            f" {describe(exc)}; check the credentials ({where.credential_source}) are"
            " valid for this endpoint and allowed to use this bucket",
            operation=operation,
            key=key,
        )
    target = f" of {key!r}" if key is not None else ""
    return StorageError(
        f"S3 {operation}{target} in bucket {where.bucket!r} at {where.endpoint} failed:"
        f" {describe(exc)}",
        operation=operation,
        key=key,
    )
