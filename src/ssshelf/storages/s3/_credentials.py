"""Credentials, region and the shared AWS config from botocore's resolvers
(requests do not go through botocore).

botocore's chain is the whole AWS one: explicit keys, the environment, shared
files and profiles (including ``credential_process`` and SSO), container and
instance roles.  It is asked once per storage, in a worker thread (instance
metadata lookups block); refreshable credentials are re-checked at most every
:data:`RECHECK_SECONDS` and refreshed in a worker thread when due.
"""

from __future__ import annotations

import asyncio
import threading
import time
from typing import Any

import botocore.session
from botocore.credentials import RefreshableCredentials

from ._config import SharedConfig, read_shared_config
from ._signing import Keys

#: How long a set of keys is used before asking botocore whether it must refresh.
RECHECK_SECONDS = 1.0


class NoCredentials(Exception):
    """The AWS chain found no credentials."""


class CredentialSource:
    """The region and the current keys for one storage."""

    def __init__(self, explicit: dict[str, str | None], region: str | None) -> None:
        self._explicit = explicit
        self._region = region
        self._lock = threading.Lock()
        self._resolved = False
        self._credentials: Any = None
        self._keys: Keys | None = None
        self._checked_at = 0.0
        #: The shared config file's S3 settings (known once resolved).
        self.config = SharedConfig()
        #: Where the credentials came from, for messages (never the secrets).
        self.description = (
            "aws_access_key_id/aws_secret_access_key in aws_client_kwargs"
            if explicit.get("aws_access_key_id")
            else "the AWS credential chain"
        )

    @property
    def resolved(self) -> bool:
        return self._resolved

    @property
    def region(self) -> str | None:
        return self._region

    def resolve_now(self) -> None:
        """Ask the chain once (blocking: call it from a worker thread)."""
        with self._lock:
            if self._resolved:
                return
            session = botocore.session.Session()
            self.config = read_shared_config(session)
            if self._region is None:
                self._region = self.config.region
            access = self._explicit.get("aws_access_key_id")
            if access:
                self._keys = Keys(
                    access,
                    self._explicit.get("aws_secret_access_key") or "",
                    self._explicit.get("aws_session_token"),
                )
            else:
                credentials = session.get_credentials()
                self._credentials = credentials
                self.description = (
                    f"the AWS credential chain, found: {credentials.method}"
                    if credentials is not None
                    else "none found in the AWS credential chain"
                )
            self._resolved = True

    async def resolve(self) -> None:
        """Ask the chain once (in a worker thread); later calls return at once."""
        if not self._resolved:
            await asyncio.to_thread(self.resolve_now)

    async def keys(self) -> Keys:
        """The keys to sign with now; raises :class:`NoCredentials`."""
        keys = self._keys
        if keys is not None and (
            self._credentials is None or time.monotonic() - self._checked_at < RECHECK_SECONDS
        ):
            return keys
        await self.resolve()
        credentials = self._credentials
        if credentials is None:
            if self._keys is None:
                raise NoCredentials()
            return self._keys
        if isinstance(credentials, RefreshableCredentials) and credentials.refresh_needed():
            frozen = await asyncio.to_thread(credentials.get_frozen_credentials)
        else:
            frozen = credentials.get_frozen_credentials()
        if not frozen.access_key:
            raise NoCredentials()
        self._keys = Keys(frozen.access_key, frozen.secret_key, frozen.token)
        self._checked_at = time.monotonic()
        return self._keys
