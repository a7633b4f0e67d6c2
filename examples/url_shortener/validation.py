"""What the shortener accepts: targets, aliases, codes and cursors.

Every check raises :class:`Invalid` with a message fit to show the user.
Only ``http``/``https`` URLs with a host and without credentials are
accepted, at most :data:`MAX_URL` characters, and none on the shortener's
own site (:func:`check_not_own`); non-ASCII hosts are stored in
IDNA form and other non-ASCII characters percent-encoded, so a stored target
is always a plain ASCII URL that is safe in a ``Location`` header.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from urllib.parse import quote, urlsplit

MAX_URL = 2048
MAX_CURSOR = 1024
#: Paths of the app itself, never usable as aliases.
RESERVED = frozenset({"api", "static", "healthz", "favicon", "robots"})

_ALIAS = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{2,39}")
_CODE = re.compile(r"[A-Za-z0-9_-]{1,40}")
_HOST = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9.-]{0,251}[A-Za-z0-9])?")
_IPV6 = re.compile(r"[0-9A-Fa-f:.]{2,45}")
_CURSOR = re.compile(r"[\x21-\x7e]+")


class Invalid(ValueError):
    """Input the shortener refuses; ``str()`` is the message for the user."""


def check_url(raw: object) -> str:
    """The target URL in the form it is stored and redirected to."""
    if not isinstance(raw, str) or not raw.strip():
        raise Invalid("Enter the URL to shorten.")
    url = raw.strip()
    if len(url) > MAX_URL:
        raise Invalid(f"That URL is too long (at most {MAX_URL} characters).")
    if any(ord(c) < 0x21 or ord(c) == 0x7F for c in url):
        raise Invalid("A URL cannot contain spaces or control characters.")
    parts = urlsplit(url)
    if parts.scheme.lower() not in {"http", "https"}:
        raise Invalid("Only http:// and https:// links can be shortened.")
    if "@" in parts.netloc:
        raise Invalid("Links with a user name or password cannot be shortened.")
    try:
        host = (parts.hostname or "").encode("idna").decode("ascii")
        port = parts.port
    except (UnicodeError, ValueError):
        raise Invalid("That URL has an invalid host or port.") from None
    if not host:
        raise Invalid("That URL has no host name.")
    if not (_HOST.fullmatch(host) or (":" in host and _IPV6.fullmatch(host))):
        raise Invalid("That URL has an invalid host name.")
    netloc = f"[{host}]" if ":" in host else host
    if port is not None:
        netloc += f":{port}"
    rest = url[len(parts.scheme) + 3 + len(parts.netloc) :]
    ascii_url = f"{parts.scheme.lower()}://{netloc}{_quote_non_ascii(rest)}"
    if len(ascii_url) > MAX_URL:
        raise Invalid(f"That URL is too long (at most {MAX_URL} characters).")
    return ascii_url


def check_not_own(target: str, own: Iterable[str]) -> None:
    """Refuse a target on the shortener's own site (``own``: its base URLs).

    A short link to the shortener redirects to itself, or to another short
    link, and a browser following it loops.  Hosts compare without case, and
    ports too when either URL names one that is not its scheme's default.
    """
    place = _site(target)
    for base in own:
        if _site(base) == place:
            raise Invalid(
                f"That link points back to this shortener ({place[0]}); "
                "shorten the address it leads to instead."
            )


def _site(url: str) -> tuple[str, int | None]:
    """``url``'s host name (lower-cased, IDNA) and its port when not the default."""
    parts = urlsplit(url)
    try:
        host = (parts.hostname or "").encode("idna").decode("ascii").lower()
        port = parts.port
    except (UnicodeError, ValueError):
        return (url, None)
    default = {"http": 80, "https": 443}.get(parts.scheme.lower())
    return (host, None if port in (None, default) else port)


def _quote_non_ascii(text: str) -> str:
    return "".join(c if ord(c) < 0x80 else quote(c, safe="") for c in text)


def check_alias(raw: object) -> str | None:
    """A custom alias, or ``None`` when none was given."""
    if raw is None or (isinstance(raw, str) and not raw.strip()):
        return None
    if not isinstance(raw, str):
        raise Invalid("The alias must be text.")
    alias = raw.strip()
    if not _ALIAS.fullmatch(alias):
        raise Invalid(
            "An alias is 3-40 letters, digits, '-' or '_', starting with a letter or digit."
        )
    if alias.lower() in RESERVED:
        raise Invalid(f"The alias {alias!r} is reserved.")
    return alias


def is_code(text: str) -> bool:
    """Whether ``text`` could be a code or alias (checked before any lookup)."""
    return _CODE.fullmatch(text) is not None


def check_cursor(raw: str | None) -> str | None:
    """A paging cursor as printed by a previous page (opaque printable ASCII)."""
    if raw is None or raw == "":
        return None
    if len(raw) > MAX_CURSOR or not _CURSOR.fullmatch(raw):
        raise Invalid("That page cursor is not valid.")
    return raw
