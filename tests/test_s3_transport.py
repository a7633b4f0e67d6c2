"""The pieces of S3Storage's transport on their own: signing, XML, HTTP framing,
addressing, credentials.  No S3 server: the signer is checked against botocore's,
the HTTP client against a scripted server on 127.0.0.1."""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import botocore.auth
import botocore.credentials
import pytest
from botocore.awsrequest import AWSRequest

from ssshelf.errors import ConfigurationError, InvalidArgument
from ssshelf.storages.s3 import S3Storage, _credentials
from ssshelf.storages.s3._addressing import address, parse_endpoint, redact
from ssshelf.storages.s3._http import AnswerLost, AttemptTimedOut, ConnectFailed, Origin, Response
from ssshelf.storages.s3._pool import ConnectionPool, Route
from ssshelf.storages.s3._signing import Keys, Signer, canonical_query, quote_path
from ssshelf.storages.s3._xml import (
    MalformedAnswer,
    parse_delete_result,
    parse_error,
    parse_listing,
)

# -- SigV4 ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "key", "params", "headers", "body", "token"),
    [
        ("GET", "a/b c+d/ключ~!*'()", {}, {}, b"", None),
        ("PUT", "k", {}, {"content-md5": "1B2M2Y8AsgTpgAmY7PhCfg==", "if-match": '"e"'}, b"x", "t"),
        (
            "GET",
            "",
            {"list-type": "2", "prefix": "p/ü x", "start-after": "a\uffff/b"},
            {},
            b"",
            None,
        ),
        ("POST", "", {"delete": ""}, {"content-md5": "abc="}, b"<Delete/>", "session"),
    ],
)
def test_signatures_match_botocore(
    monkeypatch: pytest.MonkeyPatch,
    method: str,
    key: str,
    params: dict[str, str],
    headers: dict[str, str],
    body: bytes,
    token: str | None,
) -> None:
    when = datetime.datetime(2026, 3, 4, 5, 6, 7, tzinfo=datetime.UTC)
    monkeypatch.setattr(botocore.auth, "get_current_datetime", lambda: when.replace(tzinfo=None))
    path = "/bucket" + ("/" + quote_path(key) if key else "")
    query = canonical_query(params)
    url = f"http://127.0.0.1:9000{path}" + (f"?{query}" if query else "")
    reference = AWSRequest(method=method, url=url, headers=dict(headers), data=body)
    credentials = botocore.credentials.Credentials("AKIDEXAMPLE", "secret/key", token)
    botocore.auth.S3SigV4Auth(credentials, "s3", "eu-west-3").add_auth(reference)

    import hashlib

    signed = Signer("eu-west-3").headers(
        Keys("AKIDEXAMPLE", "secret/key", token),
        method,
        "127.0.0.1:9000",
        path,
        query,
        headers,
        hashlib.sha256(body).hexdigest(),
        now=when.timestamp(),
    )
    assert signed["authorization"] == reference.headers["Authorization"]
    assert signed["x-amz-date"] == reference.headers["X-Amz-Date"]


def test_the_signing_key_is_derived_once_a_day() -> None:
    signer = Signer("us-east-1")
    keys = Keys("a", "s", None)
    first = signer.headers(keys, "GET", "h", "/", "", {}, "e", now=0)
    derived = signer._derived
    signer.headers(keys, "GET", "h", "/x", "", {}, "e", now=3600)
    assert signer._derived is derived
    signer.headers(keys, "GET", "h", "/", "", {}, "e", now=86400)
    assert signer._derived is not derived and "authorization" in first


# -- XML ----------------------------------------------------------------------------------


def test_listing_reads_keys_and_ignores_raw_echoes() -> None:
    body = (
        '<?xml version="1.0"?><ListBucketResult><Name>b</Name><Prefix>p/\x01</Prefix>'
        "<StartAfter>p/\x01\uffff&</StartAfter><EncodingType>url</EncodingType>"
        "<IsTruncated>true</IsTruncated><Contents><Key>p/a%2Bb+c%01</Key></Contents>"
        "<Contents><Key>p/%EF%BF%BF&amp;</Key></Contents>"
        "<NextContinuationToken>t&amp;1</NextContinuationToken></ListBucketResult>"
    ).encode()
    listing = parse_listing(body)
    assert listing.keys == ["p/a+b c\x01", "p/\uffff&"]
    assert listing.truncated and listing.continuation_token == "t&1"
    plain = b"<ListBucketResult><IsTruncated>false</IsTruncated><Contents><Key>a&lt;b</Key>"
    assert parse_listing(plain + b"</Contents></ListBucketResult>").keys == ["a<b"]


@pytest.mark.parametrize(
    "body",
    [
        b"",
        b"<html>portal</html>",
        b"<ListBucketResult><IsTruncated>true</IsTruncated><Contents><Key>a",
        b"<ListBucketResult><Contents><Key>a</Key></Contents></ListBucketResult>",
        b"\xff\xfe<ListBucketResult>",
    ],
)
def test_listing_refuses_what_is_not_a_whole_listing(body: bytes) -> None:
    with pytest.raises(MalformedAnswer):
        parse_listing(body)


def test_delete_result_and_error_documents() -> None:
    assert parse_delete_result(b"<DeleteResult></DeleteResult>") == []
    refused = parse_delete_result(
        b"<DeleteResult><Error><Key>k&amp;</Key><Code>AccessDenied</Code>"
        b"<Message>no</Message></Error></DeleteResult>"
    )
    assert [(key, info.code, info.message) for key, info in refused] == [
        ("k&", "AccessDenied", "no")
    ]
    with pytest.raises(MalformedAnswer):
        parse_delete_result(b"<DeleteResult><Error><Code>X</Code></Error></DeleteResult>")
    with pytest.raises(MalformedAnswer):
        parse_delete_result(b"")
    info = parse_error(b"<Error><Code>SlowDown</Code><Message></Message></Error>")
    assert (info.code, info.message) == ("SlowDown", "")
    assert parse_error(b"").code == "" and parse_error(b"<html/>").code == ""


# -- HTTP framing ------------------------------------------------------------------------------

Script = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


@contextlib.asynccontextmanager
async def scripted(script: Script) -> AsyncIterator[Origin]:
    server = await asyncio.start_server(script, "127.0.0.1", 0)
    try:
        yield Origin("http", "127.0.0.1", server.sockets[0].getsockname()[1])
    finally:
        server.close()


def pool() -> ConnectionPool:
    return ConnectionPool(connect_timeout=2.0, max_connections=4, tls=None)


REQUEST = b"GET / HTTP/1.1\r\nhost: x\r\n\r\n"


async def fetch(http: ConnectionPool, origin: Origin, body: bytes = b"", **kwargs: Any) -> Response:
    """One exchange of :data:`REQUEST` (5 s without progress fails it)."""
    options: dict[str, Any] = {"head_only": False, "expect_continue": False, "idle": 5.0}
    options.update(kwargs)
    give_up_at = asyncio.get_running_loop().time() + options.pop("seconds", 5.0)
    return await http.request(Route(origin), REQUEST, body, give_up_at=give_up_at, **options)


async def test_keep_alive_chunked_and_interim_answers() -> None:
    connections = 0

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal connections
        connections += 1
        await reader.readuntil(b"\r\n\r\n")
        writer.write(b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 3\r\n")
        await writer.drain()
        writer.write(b"X-A: 1\r\nx-a: 2\r\n\r\nabc")
        await reader.readuntil(b"\r\n\r\n")
        writer.write(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3;x=y\r\nab")
        await writer.drain()
        writer.write(b"c\r\n2\r\nde\r\n0\r\nTrailer: t\r\n\r\n")
        await reader.readuntil(b"\r\n\r\n")
        writer.write(b"HTTP/1.1 204 No Content\r\n\r\n")
        await reader.read()

    async with scripted(serve) as origin:
        http = pool()
        first = await fetch(http, origin)
        assert (first.status, first.body, first.framed) == (200, b"abc", True)
        assert first.headers["x-a"] == "1, 2"
        second = await fetch(http, origin)
        assert (second.body, second.framed) == (b"abcde", True)
        third = await fetch(http, origin)
        assert (third.status, third.body) == (204, b"")
        assert connections == 1
        http.close()


@pytest.mark.parametrize(
    ("answer", "error"),
    [
        (b"", "without an answer"),
        (b"HTTP/1.1 200 OK\r\nContent-Le", "before the answer's headers"),
        (b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc", "after 3 of 10 body bytes"),
        (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nab", "chunked"),
        (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", "malformed chunk"),
        (b"HTTP/1.1 OK\r\n\r\n", "malformed status line"),
        (b"HTTP/1.1 200 OK\r\nContent-Length: many\r\n\r\n", "malformed Content-Length"),
        (
            b"HTTP/1.1 200 OK\r\nX-Long: " + b"a" * 40_000,
            "32768 bytes of headers without their end",
        ),
        (
            b"HTTP/1.1 200 OK\r\nContent-Length: 100000\r\n\r\n" + b"x" * 50_000,
            "after 50000 of 100000 body bytes",
        ),
    ],
)
async def test_answers_cut_short_or_broken_are_lost_answers(answer: bytes, error: str) -> None:
    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        writer.write(answer)
        await writer.drain()
        writer.close()

    async with scripted(serve) as origin:
        http = pool()
        with pytest.raises(AnswerLost, match=error) as info:
            await fetch(http, origin)
        assert info.value.sent
        assert not http._open
        http.close()


async def test_a_body_until_close_is_read_whole_and_marked_unframed() -> None:
    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        writer.write(b"HTTP/1.0 200 OK\r\n\r\nall of ")
        await writer.drain()
        writer.write(b"it")
        writer.close()

    async with scripted(serve) as origin:
        http = pool()
        response = await fetch(http, origin)
        assert (response.body, response.framed) == (b"all of it", False)
        assert not http._idle.get(Route(origin))
        http.close()


# -- addressing and settings ------------------------------------------------------------------


def test_addressing_styles() -> None:
    aws = parse_endpoint("https://s3.eu-west-3.amazonaws.com")
    virtual = address("my-bucket", aws, style="auto", custom=False)
    assert virtual.host == "my-bucket.s3.eu-west-3.amazonaws.com" and virtual.path_prefix == ""
    assert virtual.origin == Origin("https", "my-bucket.s3.eu-west-3.amazonaws.com", 443)
    dotted = address("my.bucket", aws, style="auto", custom=False)
    assert dotted.host == "s3.eu-west-3.amazonaws.com" and dotted.path_prefix == "/my.bucket"
    minio = parse_endpoint("http://127.0.0.1:9000")
    assert address("b-1", minio, style="auto", custom=True).path_prefix == "/b-1"
    forced = address("b-1", parse_endpoint("http://minio.local"), style="virtual", custom=True)
    assert forced.host == "b-1.minio.local" and forced.origin.port == 80
    assert parse_endpoint("http://[::1]:9000").host == "::1"
    assert address("bb", parse_endpoint("http://[::1]:9000"), style="path", custom=True).host == (
        "[::1]:9000"
    )


@pytest.mark.parametrize(
    ("endpoint", "needle"),
    [
        ("localhost:9000", "http://localhost:9000"),
        ("ftp://host", "http or https"),
        ("http://host/path", "path or query"),
        ("http://:9000", "names no host"),
        ("http://host:port", "is not a URL"),
    ],
)
def test_bad_endpoints_are_configuration_errors(endpoint: str, needle: str) -> None:
    with pytest.raises(ConfigurationError) as info:
        S3Storage("bucket", endpoint_url=endpoint)
    assert needle in str(info.value)


def test_bad_settings_are_refused() -> None:
    with pytest.raises(ConfigurationError, match="no longer takes an aiobotocore client"):
        S3Storage("bucket", s3_client=object())
    with pytest.raises(ConfigurationError, match="config"):
        S3Storage("bucket", {"config": object()})
    with pytest.raises(ConfigurationError, match="verify"):
        S3Storage("bucket", {"verify": 3})
    with pytest.raises(InvalidArgument):
        S3Storage("bucket", deadline=0)
    with pytest.raises(InvalidArgument):
        S3Storage("bucket", addressing_style="sideways")  # type: ignore[arg-type]
    assert redact("http://a:b@host:1/p?secret=1") == "http://host:1/p"


# -- credentials -------------------------------------------------------------------------------


async def test_refreshable_credentials_refresh(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A profile's ``credential_process`` whose keys expire soon is asked again."""
    runs = tmp_path / "runs"
    script = tmp_path / "creds.py"
    soon = datetime.datetime.now(datetime.UTC) + datetime.timedelta(minutes=5)
    script.write_text(
        "import json, pathlib\n"
        f"runs = pathlib.Path({str(runs)!r})\n"
        "n = len(runs.read_text()) if runs.exists() else 0\n"
        "runs.write_text('x' * (n + 1))\n"
        "print(json.dumps({'Version': 1, 'AccessKeyId': f'AKID{n}', 'SecretAccessKey': 's',"
        f" 'Expiration': {soon.strftime('%Y-%m-%dT%H:%M:%SZ')!r}}}))\n"
    )
    config = tmp_path / "config"
    config.write_text(f"[profile p]\ncredential_process = {sys.executable} {script}\n")
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(config))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_PROFILE", "p")
    monkeypatch.setattr(_credentials, "RECHECK_SECONDS", 0.0)
    source = _credentials.CredentialSource({}, "us-east-1")
    first = await source.keys()
    second = await source.keys()
    assert first.access_key.startswith("AKID") and second.access_key.startswith("AKID")
    assert first.access_key != second.access_key  # the process was asked again
    assert "process" in source.description and "AKID" not in source.description


async def test_no_credentials_anywhere_is_access_denied(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    from ssshelf.errors import AccessDenied

    async with S3Storage("bucket", endpoint_url="http://127.0.0.1:9") as storage:
        with pytest.raises(AccessDenied, match="no AWS credentials found"):
            await storage.get("k")


def test_a_region_redirect_on_aws_moves_to_that_regions_endpoint() -> None:
    storage = S3Storage("my-bucket", {"aws_access_key_id": "a", "aws_secret_access_key": "b"})
    storage._addressing_style = "auto"
    target = storage._make_target("eu-west-1")
    assert target.addressing.origin == Origin("https", "my-bucket.s3.eu-west-1.amazonaws.com", 443)
    assert target.signer.region == "eu-west-1" and target.region == "eu-west-1"
    custom = S3Storage("my-bucket", endpoint_url="http://127.0.0.1:9")
    assert custom._make_target("eu-west-1").addressing.origin == Origin("http", "127.0.0.1", 9)


async def test_a_big_body_is_received_whole_into_its_own_buffer() -> None:
    payload = bytes(range(256)) * 4096  # 1 MiB, more than the receive buffer

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % len(payload))
        for start in range(0, len(payload), 100_000):
            writer.write(payload[start : start + 100_000])
            await writer.drain()
        await reader.readuntil(b"\r\n\r\n")
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
        await reader.read()

    async with scripted(serve) as origin:
        http = pool()
        response = await fetch(http, origin)
        assert response.body == payload and response.framed
        assert (await fetch(http, origin)).body == b"ok"  # the same connection, still in step
        assert len(http._open) == 1
        http.close()


class KeptAlive:
    """A keep-alive server answering every request ``ok``; while ``hold`` is clear, it waits."""

    def __init__(self) -> None:
        self.connections = 0
        self.hold = asyncio.Event()
        self.hold.set()

    async def __call__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        with contextlib.suppress(ConnectionError, asyncio.IncompleteReadError):
            while True:
                await reader.readuntil(b"\r\n\r\n")
                await self.hold.wait()
                writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
                await writer.drain()


async def test_requests_beyond_the_pool_wait_for_a_connection() -> None:
    server = KeptAlive()
    async with scripted(server) as origin, scripted(KeptAlive()) as elsewhere:
        http = ConnectionPool(connect_timeout=2.0, max_connections=2, tls=None)
        answers = await asyncio.gather(*(fetch(http, origin) for _ in range(40)))
        assert all(a.body == b"ok" for a in answers) and server.connections == 2
        assert http._count == 2 and len(http._idle[Route(origin)]) == 2
        # at the bound, a request elsewhere closes an idle connection to make room
        assert (await fetch(http, elsewhere)).body == b"ok"
        assert http._count == 2 and len(http._idle[Route(origin)]) == 1
        # waiting requests for two routes: the freed slot goes to whoever waited first
        server.hold.clear()
        busy = [asyncio.create_task(fetch(http, origin)) for _ in range(2)]
        await asyncio.sleep(0.05)
        waiting = [asyncio.create_task(fetch(http, where)) for where in (elsewhere, origin)]
        await asyncio.sleep(0.05)
        assert len(http._waiters) == 2
        server.hold.set()
        done = await asyncio.gather(*busy, *waiting)
        assert all(a.body == b"ok" for a in done) and http._count <= 2
        http.close()


async def test_a_waiting_request_cancelled_or_out_of_time_passes_its_turn_on() -> None:
    server = KeptAlive()
    async with scripted(server) as origin:
        http = ConnectionPool(connect_timeout=2.0, max_connections=1, tls=None)
        server.hold.clear()
        first = asyncio.create_task(fetch(http, origin))
        await asyncio.sleep(0.05)
        cancelled = asyncio.create_task(fetch(http, origin))
        third = asyncio.create_task(fetch(http, origin))
        await asyncio.sleep(0.05)
        cancelled.cancel()
        with pytest.raises(AttemptTimedOut, match="stayed busy") as info:
            await fetch(http, origin, seconds=0.1)
        assert not info.value.sent
        server.hold.set()
        assert (await first).body == (await third).body == b"ok"
        with pytest.raises(asyncio.CancelledError):
            await cancelled
        assert server.connections == 1 and http._count == 1 and not http._waiters
        server.hold.clear()
        held = asyncio.create_task(fetch(http, origin))
        await asyncio.sleep(0.05)
        waiter = asyncio.create_task(fetch(http, origin))
        await asyncio.sleep(0.05)
        http.close()
        with pytest.raises(ConnectFailed, match="closed"):
            await waiter
        with pytest.raises(AnswerLost):
            await held
