"""How S3Storage judges a failed attempt and words the error it raises.

Every failure of one attempt falls in one of three groups:

* transient (throttling, 5xx, timeouts, dropped connections, 409
  ``ConditionalRequestConflict``, an answer cut short): retried with backoff;
* a refusal the calling method interprets itself (``PreconditionFailed``,
  ``NoSuchKey``);
* anything else: translated at once into a typed :class:`StorageError`.

Secrets never appear in a message: only the bucket, the endpoint (without
any user info), the key and where the credentials came from.
"""

from __future__ import annotations

from dataclasses import dataclass

from ...errors import (
    AccessDenied,
    BucketNotFound,
    OutcomeUnknown,
    RetriesDone,
    StorageError,
    StorageUnavailable,
)
from ._http import ProxyRefused, TlsFailed, TransportError

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
#: 408: the server gave up waiting for the request (an idle connection it
#: closed as the request arrived): it did not act on it.
RETRYABLE_STATUS = frozenset({408, 429, 500, 502, 503, 504})
#: Answers saying the request was not acted on; any other failure may hide a success.
_NOT_APPLIED_CODES = frozenset(
    {
        "SlowDown",
        "Throttling",
        "ThrottlingException",
        "RequestLimitExceeded",
        "TooManyRequests",
        "ConditionalRequestConflict",
        "RequestTimeout",
        "408",
    }
)
#: Refusals that say the bucket is in another region than the one signed for.
_REDIRECT_CODES = frozenset(
    {"PermanentRedirect", "AuthorizationHeaderMalformed", "IllegalLocationConstraintException"}
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


class Refusal(Exception):
    """An HTTP error answer: status, S3 code (the status as text when the body had none)."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        headers: dict[str, str],
        *,
        region: str | None = None,
    ) -> None:
        super().__init__(code)
        self.status = status
        self.code = code or str(status)
        self.message = message
        self.headers = headers
        #: The bucket's region, as the answer tells it (header or error document).
        self.region = headers.get("x-amz-bucket-region") or region


class BadAnswer(Exception):
    """A successful status whose answer cannot be right (cut short, not the expected document)."""

    def __init__(self, message: str, *, transient: bool) -> None:
        super().__init__(message)
        self.transient = transient


class NoCredentialsFound(Exception):
    """The AWS chain found no credentials (raised before anything is sent)."""


Failure = Refusal | BadAnswer | TransportError | NoCredentialsFound


class FinalUnavailable(StorageUnavailable, RetriesDone):
    """StorageUnavailable after S3Storage's own retries."""


class FinalOutcomeUnknown(OutcomeUnknown, RetriesDone):
    """OutcomeUnknown after S3Storage's own retries."""


@dataclass(frozen=True, slots=True)
class Where:
    """What an error message names: never credentials themselves."""

    bucket: str
    endpoint: str
    credential_source: str
    #: The region requests are signed for.
    region: str = "us-east-1"


def is_transient(failure: Failure) -> bool:
    """Whether trying the same request again may succeed."""
    if isinstance(failure, Refusal):
        return failure.code in RETRYABLE_CODES or failure.status in RETRYABLE_STATUS
    if isinstance(failure, BadAnswer | TransportError):
        return failure.transient
    return False


def is_redirect(failure: Refusal) -> bool:
    """The answer says the bucket must be reached elsewhere (another region)."""
    return failure.status in (301, 302, 307) or failure.code in _REDIRECT_CODES


def redirect_region(failure: Refusal, current: str) -> str | None:
    """The region to sign for instead, when ``failure`` is a region redirect that names one.

    As botocore: a 301/302/307, ``PermanentRedirect``,
    ``AuthorizationHeaderMalformed`` or ``IllegalLocationConstraintException``
    (or a bare 400 to HEAD) with the bucket's region in ``x-amz-bucket-region``
    or the error document.
    """
    if not (is_redirect(failure) or (failure.status == 400 and failure.code == "400")):
        return None
    region = failure.region
    return region if region and region != current else None


def may_have_landed(failure: Failure, not_applied: frozenset[str] = frozenset()) -> bool:
    """Whether the failed attempt may still have been applied by the store.

    A refused connection never reached it and a throttling answer was never
    acted on; a lost answer, a timeout after sending or a 5xx may hide a
    success.  ``not_applied``: further codes the server is known to answer
    only when it changed nothing (a server quirk).
    """
    if isinstance(failure, TransportError):
        return failure.sent
    if isinstance(failure, Refusal):
        if failure.status == 408:
            return False
        return failure.code not in _NOT_APPLIED_CODES and failure.code not in not_applied
    return isinstance(failure, BadAnswer)


def describe(failure: BaseException) -> str:
    """A one-line reason for a message."""
    if isinstance(failure, Refusal):
        text = f": {failure.message}" if failure.message else ""
        return f"{failure.code} (HTTP {failure.status}){text}"
    return f"{type(failure).__name__}: {failure}"


def _target(operation: str, key: str | None) -> str:
    return f"{operation} of {key!r}" if key is not None else operation


def exhausted(
    failure: Failure,
    *,
    operation: str,
    key: str | None,
    where: Where,
    attempts: int,
    landed: bool,
    out_of_time: bool,
) -> StorageUnavailable:
    """The error for a request that stayed transient through every attempt (or the deadline)."""
    target = _target(operation, key)
    tries = f"{attempts} attempt{'s' if attempts != 1 else ''}"
    why = f"{tries}, deadline reached" if out_of_time else tries
    if landed:
        return FinalOutcomeUnknown(
            f"S3 at {where.endpoint} did not confirm {target} in bucket {where.bucket!r}"
            f" ({why}, last: {describe(failure)}); it may or may not have taken effect:"
            " read the key to find out",
            operation=operation,
            key=key,
        )
    if isinstance(failure, TransportError) and failure.connect_failed:
        return FinalUnavailable(
            f"cannot reach the S3 endpoint {where.endpoint} ({target}, {why},"
            f" last: {describe(failure)}); check that the server is running and reachable"
            " from here and that the endpoint URL is right",
            operation=operation,
            key=key,
        )
    return FinalUnavailable(
        f"S3 at {where.endpoint} kept failing {target} in bucket {where.bucket!r}"
        f" ({why}, last: {describe(failure)}); the store is overloaded"
        " or unavailable, try again later",
        operation=operation,
        key=key,
    )


def translate(
    failure: Failure, *, operation: str, key: str | None, where: Where, landed: bool
) -> StorageError:
    """The typed error for a failure that retrying will not fix.

    ``landed``: an earlier attempt of this write may have been applied, so the
    error must not read as "nothing changed".
    """
    if isinstance(failure, NoCredentialsFound):
        return AccessDenied(
            f"no AWS credentials found for the S3 endpoint {where.endpoint}: set"
            " AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, AWS_PROFILE, or pass them in"
            " aws_client_kwargs",
            operation=operation,
            key=key,
        )
    if isinstance(failure, TlsFailed):
        return StorageError(
            f"S3 {operation} failed at {where.endpoint}: {failure}; check the server's"
            " certificate, or point AWS_CA_BUNDLE, the AWS config file's ca_bundle or"
            " aws_client_kwargs['verify'] at the CA that signed it",
            operation=operation,
            key=key,
        )
    if isinstance(failure, ProxyRefused):
        return StorageError(
            f"S3 {operation} at {where.endpoint}: {failure}; check the proxy settings"
            " (HTTPS_PROXY / HTTP_PROXY / NO_PROXY, or proxies=...)",
            operation=operation,
            key=key,
        )
    if not isinstance(failure, Refusal):
        message = (
            f"S3 at {where.endpoint} answered {_target(operation, key)} in bucket"
            f" {where.bucket!r} with something that is not S3's answer: {failure}"
        )
        if landed or (isinstance(failure, BadAnswer) and operation in ("put", "delete_many")):
            return FinalOutcomeUnknown(
                message + "; the write may or may not have taken effect",
                operation=operation,
                key=key,
            )
        return StorageError(message, operation=operation, key=key)
    code = failure.code
    if failure.status == 407:
        return StorageError(
            f"S3 {operation} at {where.endpoint}: the HTTP proxy in between asks for"
            " credentials (407 Proxy Authentication Required); put them in the proxy URL,"
            " http://user:password@proxy:port",
            operation=operation,
            key=key,
        )
    if is_redirect(failure) and failure.region == where.region:
        return StorageError(
            f"S3 at {where.endpoint} redirected {operation} on bucket {where.bucket!r} although"
            f" it was signed for the bucket's region {where.region!r}: {describe(failure)};"
            " check the endpoint URL",
            operation=operation,
            key=key,
        )
    if is_redirect(failure):
        there = f"in region {failure.region!r}" if failure.region else "in another region"
        return StorageError(
            f"S3 bucket {where.bucket!r} is {there}, not {where.region!r} (the region"
            f" requests are signed for at {where.endpoint}): {describe(failure)}; pass"
            f" region={failure.region or '...'!r} (or set AWS_DEFAULT_REGION / the profile's"
            " region)",
            operation=operation,
            key=key,
        )
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
            f" {describe(failure)}; check the credentials ({where.credential_source}) are"
            " valid for this endpoint and allowed to use this bucket",
            operation=operation,
            key=key,
        )
    target = f" of {key!r}" if key is not None else ""
    message = (
        f"S3 {operation}{target} in bucket {where.bucket!r} at {where.endpoint} failed:"
        f" {describe(failure)}"
    )
    if landed:
        return FinalOutcomeUnknown(
            message + "; an earlier attempt may have taken effect", operation=operation, key=key
        )
    return StorageError(message, operation=operation, key=key)
