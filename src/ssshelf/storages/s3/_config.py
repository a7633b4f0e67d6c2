"""What the AWS configuration says about S3 beyond credentials, as botocore reads it.

Two sources, both read through botocore so that S3Storage sees what a boto3
client in the same process would:

* the shared config file (``~/.aws/config`` or ``AWS_CONFIG_FILE``, the
  profile of ``AWS_PROFILE``) and the environment — :func:`read_shared_config`:
  ``region`` (``AWS_DEFAULT_REGION``), ``ca_bundle`` (``AWS_CA_BUNDLE``),
  ``max_attempts`` (``AWS_MAX_ATTEMPTS``), ``s3 = addressing_style = …`` and
  the configured endpoint (``AWS_ENDPOINT_URL_S3``, ``AWS_ENDPOINT_URL``, the
  profile's ``services`` section ``s3 = endpoint_url = …``, the profile's
  ``endpoint_url``; none of them with ``ignore_configured_endpoint_urls``);
* a botocore ``Config`` passed as ``aws_client_kwargs["config"]`` —
  :func:`read_client_config`: the options it was given among ``proxies``,
  ``connect_timeout``, ``read_timeout``, ``max_pool_connections``,
  ``retries`` (``max_attempts`` / ``total_max_attempts``), ``region_name`` and
  ``s3`` (``addressing_style``).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

from ...errors import ConfigurationError


@dataclass(frozen=True, slots=True)
class SharedConfig:
    """The settings of the shared config file and the environment that S3Storage uses."""

    region: str | None = None
    endpoint_url: str | None = None
    ca_bundle: str | None = None
    max_attempts: int | None = None
    addressing_style: str | None = None
    #: ``ignore_configured_endpoint_urls``: endpoints from the environment do not count either.
    ignore_configured_endpoints: bool = False


@dataclass(frozen=True, slots=True)
class ClientConfig:
    """The options a botocore ``Config`` was given that S3Storage uses (``None``: not given)."""

    proxies: dict[str, str] | None = None
    connect_timeout: float | None = None
    read_timeout: float | None = None
    max_pool_connections: int | None = None
    max_attempts: int | None = None
    region: str | None = None
    addressing_style: str | None = None


def _true(value: object) -> bool:
    return value is True or (isinstance(value, str) and value.lower() == "true")


def environment_endpoint() -> str | None:
    """The endpoint the environment names for S3 (botocore's order), if any."""
    if _true(os.environ.get("AWS_IGNORE_CONFIGURED_ENDPOINT_URLS")):
        return None
    return os.environ.get("AWS_ENDPOINT_URL_S3") or os.environ.get("AWS_ENDPOINT_URL") or None


def read_shared_config(session: Any) -> SharedConfig:
    """The shared config file and environment, through a botocore ``Session``.

    Raises :class:`~ssshelf.errors.ConfigurationError` for a profile that does
    not exist or a value botocore cannot read.
    """
    from botocore.configprovider import ConfiguredEndpointProvider
    from botocore.exceptions import BotoCoreError

    try:
        scoped = session.get_scoped_config()
        s3_section = scoped.get("s3")
        addressing = s3_section.get("addressing_style") if isinstance(s3_section, dict) else None
        endpoint = None
        ignore = _true(session.get_config_variable("ignore_configured_endpoint_urls"))
        if not ignore:
            endpoint = ConfiguredEndpointProvider(
                full_config=session.full_config, scoped_config=scoped, client_name="s3"
            ).provide()
        return SharedConfig(
            region=session.get_config_variable("region") or None,
            endpoint_url=endpoint or None,
            ca_bundle=session.get_config_variable("ca_bundle") or None,
            max_attempts=session.get_config_variable("max_attempts"),
            addressing_style=addressing,
            ignore_configured_endpoints=ignore,
        )
    except (BotoCoreError, ValueError) as exc:
        raise ConfigurationError(f"the AWS configuration cannot be read: {exc}") from None


def read_client_config(config: object) -> ClientConfig:
    """The options a botocore ``Config`` was given; anything else → ConfigurationError."""
    from botocore.config import Config

    if not isinstance(config, Config):
        raise ConfigurationError(
            f"aws_client_kwargs['config'] must be a botocore.config.Config, got {config!r}"
        )
    given: dict[str, Any] = dict(getattr(config, "_user_provided_options", {}))
    retries = given.get("retries") or {}
    attempts = retries.get("total_max_attempts")
    if attempts is None and retries.get("max_attempts") is not None:
        attempts = retries["max_attempts"] + 1  # botocore's max_attempts counts retries
    s3 = given.get("s3") or {}
    return ClientConfig(
        proxies=given.get("proxies"),
        connect_timeout=given.get("connect_timeout"),
        read_timeout=given.get("read_timeout"),
        max_pool_connections=given.get("max_pool_connections"),
        max_attempts=attempts,
        region=given.get("region_name"),
        addressing_style=s3.get("addressing_style"),
    )
