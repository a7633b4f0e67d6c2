"""The HTTP session class S3Storage gives aiobotocore.

aiohttp silently sends an idempotent request (GET, HEAD, PUT, DELETE) a
second time when its connection drops before the answer.  For a conditional
PUT or DELETE that hidden second attempt is exactly the ambiguous case
S3Storage must see: if the first attempt landed, the second answers 412 and
would be reported as a conflict.  This session turns the hidden retry off,
so every attempt goes through S3Storage's own retry loop.
"""

from __future__ import annotations

from typing import Any

from aiobotocore.httpsession import AIOHTTPSession


class NoHiddenRetrySession(AIOHTTPSession):  # type: ignore[misc]
    """aiobotocore's aiohttp session without aiohttp's own resend."""

    async def _get_session(self, proxy_url: Any) -> Any:
        session = await super()._get_session(proxy_url)
        if getattr(session, "_retry_connection", False):
            session._retry_connection = False
        return session
