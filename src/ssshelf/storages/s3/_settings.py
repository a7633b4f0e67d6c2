"""Checking S3Storage's settings before anything is sent, and its TLS settings."""

from __future__ import annotations

import os
import re
import ssl

from ...errors import ConfigurationError, InvalidArgument, InvalidKeyError


def tls_context(verify: object, *, needed: bool) -> ssl.SSLContext | None:
    """The TLS settings for https: ``verify`` is ``True`` (the system's CA store),
    ``False`` (no check) or a CA bundle path (``None`` when not ``needed``:
    building them loads the CA store, which costs more than many requests)."""
    if verify is not True and verify is not False and not isinstance(verify, str | os.PathLike):
        raise ConfigurationError(
            f"aws_client_kwargs['verify'] must be True, False or a CA bundle path, got {verify!r}"
        )
    if not needed:
        return None
    if verify is False:
        context = ssl.create_default_context()
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
        return context
    if isinstance(verify, str | os.PathLike):
        try:
            return ssl.create_default_context(cafile=os.fspath(verify))
        except (OSError, ssl.SSLError) as exc:
            raise ConfigurationError(
                f"the CA bundle {os.fspath(verify)!r} (aws_client_kwargs['verify'], the AWS"
                f" config file's ca_bundle or AWS_CA_BUNDLE) cannot be loaded: {exc}"
            ) from None
    return ssl.create_default_context()


def check_settings(
    max_pool_connections: int,
    max_in_flight: int,
    flavor: str,
    etag_quoting: str,
) -> None:
    if max_in_flight < 1 or max_pool_connections < 1:
        raise InvalidArgument("max_in_flight and max_pool_connections must be at least 1")
    if flavor not in ("auto", "aws", "ceph"):
        raise InvalidArgument(f"flavor must be 'auto', 'aws' or 'ceph', got {flavor!r}")
    if etag_quoting not in ("auto", "quoted", "unquoted"):
        raise InvalidArgument(
            f"etag_quoting must be 'auto', 'quoted' or 'unquoted', got {etag_quoting!r}"
        )


def check_addressing_style(style: object, *, where: str = "addressing_style") -> None:
    if style not in ("auto", "path", "virtual"):
        raise InvalidArgument(f"{where} must be 'auto', 'path' or 'virtual', got {style!r}")


def check_timeouts(connect_timeout: float, read_timeout: float, deadline: float) -> None:
    if min(connect_timeout, read_timeout, deadline) <= 0:
        raise InvalidArgument(
            "connect_timeout, read_timeout and deadline must be positive numbers of seconds"
        )


#: What botocore accepts as a bucket name (its ``validate_bucket_name``, ARNs
#: aside): anything else would change the request's path or query.
_BUCKET_NAME = re.compile(r"^[a-zA-Z0-9.\-_]{1,255}$")
#: An entity tag's characters (RFC 9110 ``etagc``) and the quotes around it:
#: no control character (so no CR/LF injection), nothing beyond Latin-1.
_VERSION = re.compile(r"^[\x21-\x7e\x80-\xff]+$")


def check_bucket(bucket: str) -> None:
    """Refuse a bucket name that is not one (``B/sub``, ``B?acl``) before anything is sent."""
    if _BUCKET_NAME.match(bucket):
        return
    hint = ""
    if "/" in bucket:
        name, _, rest = bucket.partition("/")
        hint = f"; to keep objects under a key prefix, write S3Storage({name!r}, prefix={rest!r})"
    raise ConfigurationError(
        f"S3 bucket name {bucket[:300]!r} is not valid: a bucket name is 1 to 255 letters,"
        f" digits, '.', '-' and '_' (access point ARNs are not supported){hint}"
    )


def check_version(version: object) -> None:
    """Refuse an ``if_version`` that cannot be an entity tag (it goes into a header)."""
    if not isinstance(version, str) or not _VERSION.match(version):
        raise InvalidArgument(
            f"if_version {version!r} is not a version this storage hands out: an S3 version"
            " (ETag) is visible ASCII, without spaces, control characters or line breaks"
        )


def check_text(value: str, what: str) -> None:
    if not isinstance(value, str):
        raise InvalidKeyError(f"{what} must be a str, got {value!r}")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise InvalidKeyError(f"{what} {value!r} is not valid Unicode: {exc}") from None
