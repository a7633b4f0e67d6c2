"""Reading S3's successful answers: each reader returns the result or raises
:class:`BadAnswer` when the answer cannot be right (see ``docs/s3.md``)."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime

from ..base import StoredObject
from . import _xml
from ._compat import bare_etag
from ._errors import BadAnswer
from ._http import Response

_MD5_ETAG = re.compile("^[0-9a-f]{32}$")
_MONTHS = {
    month: number
    for number, month in enumerate(
        ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"), 1
    )
}


def no_result(response: Response) -> None:
    return None


def put_version(response: Response) -> str:
    etag = response.headers.get("etag")
    if not etag:
        raise BadAnswer(f"a {response.status} answer to PutObject without an ETag", transient=False)
    return bare_etag(etag)


def stored_object(key: str, response: Response) -> StoredObject:
    headers = response.headers
    etag = headers.get("etag")
    if not etag:
        raise BadAnswer(f"a {response.status} answer to GetObject without an ETag", transient=False)
    version = bare_etag(etag)
    body = response.body
    if (
        _MD5_ETAG.match(version)
        and "kms" not in headers.get("x-amz-server-side-encryption", "")
        and "x-amz-server-side-encryption-customer-algorithm" not in headers
        and hashlib.md5(body).hexdigest() != version
    ):
        what = "was cut short" if not response.framed else "is corrupt"
        raise BadAnswer(
            f"the body of {key!r} {what} ({len(body)} bytes whose MD5 is not the ETag {version})",
            transient=True,
        )
    return StoredObject(
        key,
        body,
        version,
        http_date(headers.get("last-modified")),
        http_date(headers.get("date")),
    )


def listing_under(prefix: str) -> Callable[[Response], _xml.Listing]:
    def parse(response: Response) -> _xml.Listing:
        listing = _xml.parse_listing(response.body)
        for key in listing.keys:
            if not key.startswith(prefix):
                raise BadAnswer(
                    f"the listing holds {key!r}, outside the prefix asked for", transient=False
                )
        return listing

    return parse


def delete_result(response: Response) -> list[tuple[str, _xml.ErrorInfo]]:
    return _xml.parse_delete_result(response.body)


def http_date(raw: str | None) -> datetime | None:
    """An HTTP date (``Tue, 01 Dec 2026 20:53:27 GMT``) as an aware datetime, or ``None``."""
    if not raw:
        return None
    try:
        if len(raw) == 29 and raw.endswith(" GMT"):  # the IMF-fixdate every S3 server sends
            return datetime(
                int(raw[12:16]),
                _MONTHS[raw[8:11]],
                int(raw[5:7]),
                int(raw[17:19]),
                int(raw[20:22]),
                int(raw[23:25]),
                tzinfo=UTC,
            )
        return parsedate_to_datetime(raw)
    except (KeyError, TypeError, ValueError):
        return None
