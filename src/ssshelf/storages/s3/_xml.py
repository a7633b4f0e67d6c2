"""The few S3 XML answers S3Storage reads, parsed by scanning for their tags.

Not an XML parser on purpose: servers echo request values raw into their
answers (both moto and Ceph RGW copy ``StartAfter`` unencoded, even with
``encoding-type=url``), and a key holding U+0001 or U+FFFF then makes the
whole document invalid XML.  Only the elements read here matter, and each
answer must carry its root element and its closing tag, so an empty body, an
HTML page or a body cut short is refused instead of read as "nothing".
"""

from __future__ import annotations

import html
from dataclasses import dataclass
from urllib.parse import unquote_plus
from xml.sax.saxutils import escape


class MalformedAnswer(ValueError):
    """An answer that is not the S3 document the request calls for."""


@dataclass(frozen=True, slots=True)
class Listing:
    """One ListObjectsV2 page: full keys, and whether (and how) more follow."""

    keys: list[str]
    truncated: bool
    continuation_token: str | None


@dataclass(frozen=True, slots=True)
class ErrorInfo:
    """An S3 error document's code and message ("" when absent)."""

    code: str
    message: str
    #: The region the bucket is in, when the error says (AuthorizationHeaderMalformed).
    region: str | None = None


def _document(body: bytes, root: str) -> str:
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        raise MalformedAnswer(f"not UTF-8 text (expected a <{root}> document)") from None
    start = text.find(f"<{root}")
    if start < 0 or text.rfind(f"</{root}>") < start:
        shown = text[:80].strip() or "an empty body"
        raise MalformedAnswer(f"not a complete <{root}> document: {shown!r}")
    return text


def _text(raw: str) -> str:
    return html.unescape(raw) if "&" in raw else raw


def _first(text: str, tag: str) -> str | None:
    start = text.find(f"<{tag}>")
    if start < 0:
        return None
    start += len(tag) + 2
    end = text.find(f"</{tag}>", start)
    return _text(text[start:end]) if end >= 0 else None


def _all(text: str, tag: str) -> list[str]:
    opening, closing = f"<{tag}>", f"</{tag}>"
    found: list[str] = []
    start = text.find(opening)
    while start >= 0:
        start += len(opening)
        end = text.find(closing, start)
        if end < 0:
            raise MalformedAnswer(f"an unclosed <{tag}>")
        found.append(text[start:end])
        start = text.find(opening, end)
    return found


def parse_listing(body: bytes) -> Listing:
    """A ListObjectsV2 answer (``<Key>`` only occurs inside ``<Contents>``)."""
    text = _document(body, "ListBucketResult")
    url_encoded = _first(text, "EncodingType") == "url"
    keys = [unquote_plus(_text(k)) if url_encoded else _text(k) for k in _all(text, "Key")]
    truncated = _first(text, "IsTruncated")
    if truncated not in ("true", "false"):
        raise MalformedAnswer(f"IsTruncated is {truncated!r}")
    return Listing(keys, truncated == "true", _first(text, "NextContinuationToken"))


def parse_delete_result(body: bytes) -> list[tuple[str, ErrorInfo]]:
    """The keys a DeleteObjects answer (quiet mode) reports as not deleted."""
    text = _document(body, "DeleteResult")
    refused = []
    for block in _all(text, "Error"):
        key = _first(block, "Key")
        if key is None:
            raise MalformedAnswer("a DeleteObjects <Error> without a <Key>")
        refused.append(
            (key, ErrorInfo(_first(block, "Code") or "", _first(block, "Message") or ""))
        )
    return refused


def parse_error(body: bytes) -> ErrorInfo:
    """An error answer's code and message; empty strings when the body has none (HEAD)."""
    text = body.decode("utf-8", errors="replace")
    if "<Error" not in text:
        return ErrorInfo("", "")
    return ErrorInfo(
        _first(text, "Code") or "", _first(text, "Message") or "", _first(text, "Region")
    )


def delete_request(keys: list[str]) -> bytes:
    """A quiet DeleteObjects body for ``keys`` (each must be XML-safe)."""
    objects = "".join(f"<Object><Key>{escape(key)}</Key></Object>" for key in keys)
    return (
        f'<?xml version="1.0" encoding="UTF-8"?><Delete><Quiet>true</Quiet>{objects}</Delete>'
    ).encode()


def create_bucket_request(region: str) -> bytes:
    """A CreateBucket body asking for ``region``."""
    return (
        "<CreateBucketConfiguration><LocationConstraint>"
        f"{escape(region)}</LocationConstraint></CreateBucketConfiguration>"
    ).encode()
