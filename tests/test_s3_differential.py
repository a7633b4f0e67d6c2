"""The same operations through boto3 and through S3Storage, on the same server: outcomes compared.

Runs on the suite's S3 server (moto in ``make test``, Ceph RGW in ``make
test-ceph``), with the same fronts for both clients where a case needs one (a
proxy, a redirecting front, a TLS front, a front closing idle connections).
Each case asserts that both clients end the same way, or asserts the one
difference ``docs/s3.md`` lists under *Differences from botocore*, with its
reason.  boto3 calls run in a worker thread, so the fronts (on the test's
event loop) keep serving.

Outcomes are compared in a small common vocabulary: ``("ok", value)``,
``("missing",)``, ``("precondition",)``, ``("no-such-bucket",)``,
``("denied",)``, ``("refused-before-sending",)``, ``("tls",)``,
``("unreachable",)``, ``("unsupported",)``, ``("error", detail)``.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import boto3
import botocore.exceptions
import pytest
from botocore.config import Config

from ssshelf import errors
from ssshelf.storages.s3 import RetryPolicy, S3Storage
from tests.fault_proxy import FaultProxy, ThreadedProxy, corrupt, error_reply, refuse_early
from tests.http_proxy import ForwardProxy
from tests.s3_server import S3Endpoint, remove_buckets, unique_bucket_name
from tests.tls_support import HIDDEN_HOST, make_certificate, server_context

pytestmark = pytest.mark.s3

Outcome = tuple[Any, ...]
FAST = RetryPolicy(attempts=2, base_delay=0.001, max_delay=0.01)

#: Keys that exercise encoding: URL-special characters, non-ASCII, characters
#: XML 1.0 cannot carry, slashes, a key near S3's 1,024-byte limit.
AWKWARD_KEYS = [
    "plain",
    "sp ace",
    "plus+sign",
    "percent%2Fencoded",
    "question?mark",
    "hash#tag",
    "amp&er;sand=eq",
    "double//slash",
    "trailing/",
    "./dot/../segments",
    "~tilde'quote\"dq",
    "<angle>&amp;",
    "ümlaut/ß/日本語",
    "emoji 🙂",
    "tab\tx",
    "ctl\x01char",
    "nonchar\uffff",
    "k" * 1000,
]


# -- outcomes ----------------------------------------------------------------------------------


def _code_outcome(code: str) -> Outcome:
    if code in ("NoSuchKey", "404"):
        return ("missing",)
    if code in ("PreconditionFailed", "412"):
        return ("precondition",)
    if code == "NoSuchBucket":
        return ("no-such-bucket",)
    if code in ("AccessDenied", "InvalidAccessKeyId", "SignatureDoesNotMatch", "403"):
        return ("denied",)
    return ("error", code)


async def boto(call: Callable[[], Any]) -> Outcome:
    """A boto3 call's outcome (run in a worker thread)."""
    try:
        result = await asyncio.to_thread(call)
    except botocore.exceptions.ParamValidationError:
        return ("refused-before-sending",)
    except botocore.exceptions.HTTPClientError as exc:
        if "Invalid header value" in str(exc):
            return ("refused-before-sending",)
        return ("unreachable",)
    except botocore.exceptions.SSLError:
        return ("tls",)
    except (botocore.exceptions.EndpointConnectionError, botocore.exceptions.ProxyConnectionError):
        return ("unreachable",)
    except botocore.exceptions.ClientError as exc:
        return _code_outcome(exc.response.get("Error", {}).get("Code", ""))
    return ("ok", result)


async def ours(call: Awaitable[Any]) -> Outcome:
    """An S3Storage call's outcome."""
    try:
        result = await call
    except (errors.InvalidArgument, errors.ConfigurationError):
        return ("refused-before-sending",)
    except errors.PreconditionFailed:
        return ("precondition",)
    except errors.BucketNotFound:
        return ("no-such-bucket",)
    except errors.AccessDenied:
        return ("denied",)
    except errors.UnsupportedOperation:
        return ("unsupported",)
    except errors.StorageUnavailable as exc:
        return ("unreachable",) if "cannot reach" in str(exc) else ("error", str(exc))
    except errors.StorageError as exc:
        return ("tls",) if "certificate" in str(exc) else ("error", str(exc))
    if result is None:
        return ("missing",)
    return ("ok", result)


def etag(outcome: Outcome) -> Outcome:
    """A boto3 ``put_object`` outcome as S3Storage's: the version without quotes."""
    return ("ok", outcome[1]["ETag"].strip('"')) if outcome[0] == "ok" else outcome


def body(outcome: Outcome) -> Outcome:
    """A boto3 ``get_object`` outcome as S3Storage's: (bytes, version)."""
    if outcome[0] != "ok":
        return outcome
    return ("ok", (outcome[1]["Body"].read(), outcome[1]["ETag"].strip('"')))


def stored(outcome: Outcome) -> Outcome:
    """An S3Storage ``get`` outcome as (bytes, version)."""
    return ("ok", (outcome[1].data, outcome[1].version)) if outcome[0] == "ok" else outcome


# -- the two clients ---------------------------------------------------------------------------


@dataclass
class Pair:
    """boto3 and S3Storage on one bucket of one server (or front)."""

    bucket: str
    boto: Any
    ours: S3Storage


def boto_client(endpoint: S3Endpoint, url: str | None = None, **config: Any) -> Any:
    """A boto3 client like the suite's storages (``config``: botocore ``Config`` options)."""
    options: dict[str, Any] = {
        "retries": {"total_max_attempts": 2},
        "s3": {"addressing_style": "path"},
        "connect_timeout": 5,
        "read_timeout": 20,
    }
    options.update(config)
    kwargs = endpoint.client_kwargs()
    verify = kwargs.pop("verify", None)
    if url is not None:
        kwargs["endpoint_url"] = url
    return boto3.session.Session().client("s3", config=Config(**options), verify=verify, **kwargs)


@pytest.fixture
async def bucket(s3_endpoint: S3Endpoint) -> AsyncIterator[str]:
    name = unique_bucket_name()
    async with s3_endpoint.storage(name) as admin:
        await admin.create_bucket()
    yield name
    if s3_endpoint.external:
        with pytest.MonkeyPatch.context() as clean:  # a test's proxy or profile is gone by now
            for variable in list(os.environ):
                if variable.startswith("AWS_") or variable.lower().endswith("_proxy"):
                    clean.delenv(variable)
            await remove_buckets(s3_endpoint, {name})


@pytest.fixture
async def pair_at(s3_endpoint: S3Endpoint, bucket: str) -> AsyncIterator[Callable[..., Pair]]:
    """``pair_at(url=None, **storage_kwargs)``: both clients on ``bucket``, at ``url``."""
    made: list[S3Storage] = []

    def build(url: str | None = None, **kwargs: Any) -> Pair:
        kwargs.setdefault("retries", FAST)
        storage = s3_endpoint.storage(bucket, endpoint_url=url, **kwargs)
        made.append(storage)
        return Pair(bucket, boto_client(s3_endpoint, url), storage)

    yield build
    for storage in made:
        await storage.close()


@pytest.fixture
def pair(pair_at: Callable[..., Pair]) -> Pair:
    return pair_at()


@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    return make_certificate(tmp_path_factory.mktemp("tls"))


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[pytest.MonkeyPatch]:
    """No proxy and no AWS settings from the environment (the test sets its own)."""
    for name in list(os.environ):
        lowered = name.lower()
        if lowered.endswith("_proxy") or name.startswith("AWS_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-credentials"))
    yield monkeypatch


# -- keys and listings -------------------------------------------------------------------------


async def test_awkward_keys_round_trip_between_the_clients(pair: Pair) -> None:
    for index, key in enumerate(AWKWARD_KEYS):
        data = f"value of {key}".encode()
        if index % 2:
            put = await ours(pair.ours.put(key, data))
        else:
            put = etag(await boto(lambda k=key, d=data: pair.boto.put_object(
                Bucket=pair.bucket, Key=k, Body=d)))  # fmt: skip
        assert put[0] == "ok", (key, put)
        by_boto = body(await boto(lambda k=key: pair.boto.get_object(Bucket=pair.bucket, Key=k)))
        by_us = stored(await ours(pair.ours.get(key)))
        assert by_boto == by_us == ("ok", (data, put[1])), key


def breaks_an_echo(text: str | None) -> bool:
    """A key the server echoes raw into a document that is then not XML
    (control characters, U+FFFF; ``&`` and ``<`` on RGW)."""
    return text is not None and any(c in text for c in "\x01\uffff&<")


async def test_listings_agree_page_by_page(pair: Pair) -> None:
    keys = sorted(AWKWARD_KEYS, key=str.encode)
    for key in keys:
        await pair.ours.put(key, b"")
    for limit in (1, 3, 1000):
        seen: list[str] = []
        after: str | None = None
        while True:
            page = await pair.ours.list(after=after, limit=limit)
            start = {"StartAfter": after} if after else {}
            theirs = await boto(lambda n=limit, s=start: pair.boto.list_objects_v2(
                Bucket=pair.bucket, MaxKeys=n, **s))  # fmt: skip
            if theirs[0] == "error":
                # The server echoed StartAfter (moto, RGW) or the page's last key
                # as NextContinuationToken (RGW) raw into its answer, which is
                # then not XML: botocore cannot parse it; S3Storage scans for
                # what it needs (docs/s3.md, Differences from botocore).
                last = page.keys[-1] if page.keys else None
                assert breaks_an_echo(after) or breaks_an_echo(last), (after, theirs)
            else:
                assert theirs[0] == "ok", (after, theirs)
                boto_keys = [item["Key"] for item in theirs[1].get("Contents", [])]
                assert page.keys == boto_keys, (limit, after)
                assert (page.next_after is not None) == theirs[1]["IsTruncated"]
            seen += page.keys
            if page.next_after is None:
                break
            after = page.next_after
        assert seen == keys


async def test_listings_with_a_prefix_and_start_after_agree(pair: Pair) -> None:
    for key in ["a", "p/1", "p/2", "p/3/x", "p/4", "q"]:
        await pair.ours.put(key, b"")
    for prefix, after, limit in [
        ("p/", None, 2),
        ("p/", "p/2", 10),
        ("p/3", None, 5),
        ("z", None, 5),
    ]:
        page = await pair.ours.list(prefix, after=after, limit=limit)
        start = {"StartAfter": after} if after else {}
        theirs = await boto(lambda p=prefix, n=limit, s=start: pair.boto.list_objects_v2(
            Bucket=pair.bucket, Prefix=p, MaxKeys=n, **s))  # fmt: skip
        assert page.keys == [item["Key"] for item in theirs[1].get("Contents", [])]
        assert (page.next_after is not None) == theirs[1]["IsTruncated"]


# -- conditional writes ------------------------------------------------------------------------


async def test_create_if_absent_agrees(pair: Pair) -> None:
    first = etag(await boto(lambda: pair.boto.put_object(
        Bucket=pair.bucket, Key="b", Body=b"1", IfNoneMatch="*")))  # fmt: skip
    assert first[0] == "ok"
    assert (await ours(pair.ours.put("o", b"1", if_absent=True)))[0] == "ok"
    again = await boto(lambda: pair.boto.put_object(
        Bucket=pair.bucket, Key="o", Body=b"2", IfNoneMatch="*"))  # fmt: skip
    assert again == await ours(pair.ours.put("b", b"2", if_absent=True)) == ("precondition",)


async def test_replace_at_a_version_agrees_except_for_rgws_quoting(pair: Pair) -> None:
    version = await pair.ours.put("k", b"1")
    stale = "0" * 32
    theirs = await boto(lambda: pair.boto.put_object(
        Bucket=pair.bucket, Key="k", Body=b"2", IfMatch=f'"{stale}"'))  # fmt: skip
    assert theirs == await ours(pair.ours.put("k", b"2", if_version=stale)) == ("precondition",)
    # The right version: S3Storage phrases If-Match for the server; boto3 sends
    # the ETag as S3 gave it (quoted), which Ceph RGW does not match.
    theirs = await boto(lambda: pair.boto.put_object(
        Bucket=pair.bucket, Key="k", Body=b"2", IfMatch=f'"{version}"'))  # fmt: skip
    expected = ("precondition",) if pair.ours.flavor == "ceph" else ("ok",)
    assert theirs[0] == expected[0]
    now = (await pair.ours.get("k")).version  # type: ignore[union-attr]
    assert (await ours(pair.ours.put("k", b"3", if_version=now)))[0] == "ok"


async def test_conditional_delete_differs_where_the_server_ignores_it(pair: Pair) -> None:
    await pair.ours.put("k", b"1")
    stale = "0" * 32
    theirs = await boto(lambda: pair.boto.delete_object(
        Bucket=pair.bucket, Key="k", IfMatch=f'"{stale}"'))  # fmt: skip
    if pair.ours.flavor == "ceph":
        # RGW ignores If-Match on DELETE: boto3's conditional delete deletes;
        # S3Storage refuses before sending (docs/s3.md, Server quirks).
        assert theirs[0] == "ok" and await pair.ours.get("k") is None
        await pair.ours.put("k", b"1")
        assert await ours(pair.ours.delete("k", if_version=stale)) == ("unsupported",)
    else:
        assert theirs == await ours(pair.ours.delete("k", if_version=stale)) == ("precondition",)
    assert await pair.ours.get("k") is not None


# -- errors ------------------------------------------------------------------------------------


async def test_missing_keys_and_buckets_agree(
    pair: Pair, s3_endpoint: S3Endpoint, pair_at: Callable[..., Pair]
) -> None:
    theirs = await boto(lambda: pair.boto.get_object(Bucket=pair.bucket, Key="nothing"))
    assert theirs == await ours(pair.ours.get("nothing")) == ("missing",)
    gone = unique_bucket_name()
    other = s3_endpoint.storage(gone, retries=FAST)
    async with other:
        theirs = await boto(lambda: pair.boto.put_object(Bucket=gone, Key="k", Body=b""))
        assert theirs == await ours(other.put("k", b"")) == ("no-such-bucket",)


async def test_wrong_credentials_agree(s3_endpoint: S3Endpoint, bucket: str) -> None:
    if not s3_endpoint.external:
        pytest.skip("moto does not check signatures")
    wrong = S3Endpoint(s3_endpoint.url, s3_endpoint.access_key, "not-the-secret")
    client = boto_client(wrong)
    async with wrong.storage(bucket, retries=FAST) as storage:
        theirs = await boto(lambda: client.get_object(Bucket=bucket, Key="k"))
        assert theirs == await ours(storage.get("k")) == ("denied",)


@pytest.mark.parametrize("bucket_name", ["B/sub", "B?acl", "b#x", "b" * 256])
async def test_bucket_names_are_refused_before_sending_by_both(
    s3_endpoint: S3Endpoint, bucket_name: str
) -> None:
    async with FaultProxy(s3_endpoint.url) as front:
        client = boto_client(s3_endpoint, front.url)
        theirs = await boto(lambda: client.get_object(Bucket=bucket_name, Key="k"))

        async def make_and_get() -> Any:
            return await S3Storage(bucket_name, endpoint_url=front.url).get("k")

        assert theirs == await ours(make_and_get()) == ("refused-before-sending",)
        assert front.requests == []


async def test_header_injection_is_refused_before_sending_by_both(
    s3_endpoint: S3Endpoint, pair_at: Callable[..., Pair]
) -> None:
    async with FaultProxy(s3_endpoint.url) as front:
        pair = pair_at(front.url, flavor="aws")
        await pair.ours.put("k", b"v")
        front.requests.clear()
        injected = 'x"\r\nx-amz-meta-owner: mallory\r\nx: "'
        theirs = await boto(lambda: pair.boto.put_object(
            Bucket=pair.bucket, Key="k", Body=b"w", IfMatch=injected))  # fmt: skip
        assert theirs == await ours(pair.ours.put("k", b"w", if_version=injected))
        assert theirs == ("refused-before-sending",)
        assert front.requests == []
        # A version that cannot be an ETag but carries no line break: boto3
        # sends it (and the server refuses it); S3Storage refuses it first.
        theirs = await boto(lambda: pair.boto.put_object(
            Bucket=pair.bucket, Key="k", Body=b"w", IfMatch="ünï€"))  # fmt: skip
        assert theirs == ("precondition",)
        assert await ours(pair.ours.put("k", b"w", if_version="ünï€")) == (
            "refused-before-sending",
        )
        assert len(front.requests) == 1


# -- connections -------------------------------------------------------------------------------


async def test_a_connection_closed_while_idle_is_not_reused_by_either(
    s3_endpoint: S3Endpoint, pair_at: Callable[..., Pair]
) -> None:
    front = FaultProxy(s3_endpoint.url, keep_alive=True, idle_close=0.2)
    with ThreadedProxy(front):
        pair = pair_at(front.url)
        await pair.ours.put("k", b"v")
        await boto(lambda: pair.boto.get_object(Bucket=pair.bucket, Key="k")["Body"].read())
        time.sleep(0.6)  # noqa: ASYNC251 -- both clients' connections are closed meanwhile
        theirs = await boto(lambda: pair.boto.put_object(
            Bucket=pair.bucket, Key="k", Body=b"w", IfNoneMatch="*"))  # fmt: skip
        assert theirs == await ours(pair.ours.put("k", b"w", if_absent=True)) == ("precondition",)
        assert [r.method for r in front.requests] == ["PUT", "GET", "PUT", "PUT"]


async def test_a_refused_big_put_sends_no_body_with_either(
    s3_endpoint: S3Endpoint, pair_at: Callable[..., Pair]
) -> None:
    data = os.urandom(4 * 1024 * 1024)
    async with FaultProxy(s3_endpoint.url) as front:
        pair = pair_at(front.url)
        front.inject(refuse_early(412, "PreconditionFailed"), when=lambda r: r.method == "PUT")
        theirs = await boto(lambda: pair.boto.put_object(
            Bucket=pair.bucket, Key="k", Body=data, IfNoneMatch="*"))  # fmt: skip
        assert theirs == await ours(pair.ours.put("k", data, if_absent=True)) == ("precondition",)
        assert [r.headers.get("expect") for r in front.requests] == ["100-continue"] * 2
        assert [r.late_bytes for r in front.requests] == [0, 0]


async def test_a_corrupt_body_is_caught_by_s3storage_only(
    s3_endpoint: S3Endpoint, pair_at: Callable[..., Pair]
) -> None:
    data = bytes(range(256)) * 16
    async with FaultProxy(s3_endpoint.url) as front:
        pair = pair_at(front.url)
        version = await pair.ours.put("k", data)
        front.inject(corrupt(1000), when=lambda r: r.method == "GET")
        theirs = body(await boto(lambda: pair.boto.get_object(Bucket=pair.bucket, Key="k")))
        # boto3 checks no MD5 on GET: the cut body is returned as the object.
        assert theirs == ("ok", (data[:1000], version))
        outcome = await ours(pair.ours.get("k"))
        assert outcome[0] == "error" and "MD5 is not the ETag" in outcome[1]


# -- region redirects --------------------------------------------------------------------------


async def test_region_redirects_are_followed_by_both(
    s3_endpoint: S3Endpoint, pair_at: Callable[..., Pair]
) -> None:
    def unsigned_for_eu(request: Any) -> bool:
        return "/eu-west-1/s3/aws4_request" not in request.headers.get("authorization", "")

    async with FaultProxy(s3_endpoint.url) as front:
        front.inject(
            error_reply(
                301,
                "PermanentRedirect",
                "The bucket you are attempting to access must be addressed using the specified"
                " endpoint.",
                headers={"x-amz-bucket-region": "eu-west-1"},
            ),
            when=unsigned_for_eu,
        )
        pair = pair_at(front.url, region="us-east-1")
        theirs = etag(await boto(lambda: pair.boto.put_object(
            Bucket=pair.bucket, Key="b", Body=b"v")))  # fmt: skip
        mine = await ours(pair.ours.put("o", b"v"))
        assert theirs == mine == ("ok", "9e3669d19b675bd57058fd4664205d2a")
        redirected = [r.fault is not None for r in front.requests]
        assert redirected == [True, False, True, False]
        assert pair.ours.region == "eu-west-1"


# -- proxies and TLS ---------------------------------------------------------------------------


async def test_an_endpoint_behind_an_http_proxy_agrees(
    s3_endpoint: S3Endpoint, bucket: str, clean_env: pytest.MonkeyPatch
) -> None:
    upstream = urlsplit(s3_endpoint.url)
    assert upstream.hostname is not None and upstream.port is not None
    hidden = f"http://{HIDDEN_HOST}:{upstream.port}"
    async with ForwardProxy({HIDDEN_HOST: (upstream.hostname, upstream.port)}) as proxy:
        clean_env.setenv("HTTP_PROXY", proxy.url)
        async with s3_endpoint.storage(bucket, endpoint_url=hidden, retries=FAST) as storage:
            client = boto_client(s3_endpoint, hidden)
            theirs = etag(await boto(lambda: client.put_object(
                Bucket=bucket, Key="k", Body=b"v")))  # fmt: skip
            assert theirs == await ours(storage.put("k", b"v"))
            assert theirs[0] == "ok"
        clean_env.setenv("NO_PROXY", HIDDEN_HOST)
        async with s3_endpoint.storage(bucket, endpoint_url=hidden, retries=FAST) as storage:
            client = boto_client(s3_endpoint, hidden)
            theirs = await boto(lambda: client.get_object(Bucket=bucket, Key="k"))
            assert theirs == await ours(storage.get("k")) == ("unreachable",)
        assert [method for method, _, _ in proxy.requests] == ["PUT", "PUT"]


async def test_https_through_a_connect_tunnel_and_ca_bundles_agree(
    s3_endpoint: S3Endpoint,
    bucket: str,
    clean_env: pytest.MonkeyPatch,
    certificate: tuple[Path, Path],
    tmp_path: Path,
) -> None:
    cert, key = certificate
    tls = server_context(cert, key)
    async with FaultProxy(s3_endpoint.url, ssl_context=tls, keep_alive=True) as tls_front:
        port = urlsplit(tls_front.url).port
        assert port is not None
        async with ForwardProxy({HIDDEN_HOST: ("127.0.0.1", port)}) as proxy:
            clean_env.setenv("HTTPS_PROXY", proxy.url)
            hidden = f"https://{HIDDEN_HOST}:{port}"
            # (checksums only when required: boto3 then sends the body with a
            # Content-Length, which the test front passes on unchanged)
            plain = {"request_checksum_calculation": "when_required"}
            untrusting = s3_endpoint.storage(bucket, endpoint_url=hidden, retries=FAST)
            async with untrusting:
                client = boto_client(s3_endpoint, hidden, **plain)
                theirs = await boto(lambda: client.get_object(Bucket=bucket, Key="k"))
                assert theirs == await ours(untrusting.get("k")) == ("tls",)
            # The CA bundle from the AWS config file, as botocore reads it.
            config = tmp_path / "config"
            config.write_text(f"[default]\nca_bundle = {cert}\n")
            clean_env.setenv("AWS_CONFIG_FILE", str(config))
            trusting = s3_endpoint.storage(bucket, endpoint_url=hidden, retries=FAST)
            async with trusting:
                client = boto_client(s3_endpoint, hidden, **plain)
                theirs = etag(await boto(lambda: client.put_object(
                    Bucket=bucket, Key="k", Body=b"v")))  # fmt: skip
                assert theirs == await ours(trusting.put("k", b"v"))
                assert theirs[0] == "ok"
            assert {method for method, _, _ in proxy.requests} == {"CONNECT"}


# -- the AWS config file -----------------------------------------------------------------------


@pytest.mark.parametrize(
    "profile",
    [
        "[profile app]\nregion = eu-west-2\nservices = local\n"
        "[services local]\ns3 =\n  endpoint_url = {url}\n",
        "[profile app]\nregion = eu-west-2\nendpoint_url = {url}\n",
        # botocore reads no endpoint from a profile's s3 sub-section: neither does S3Storage
        "[profile app]\nregion = eu-west-2\ns3 =\n  endpoint_url = {url}\n",
    ],
    ids=["services-section", "profile", "s3-sub-section"],
)
async def test_the_configured_endpoint_agrees(
    s3_endpoint: S3Endpoint, clean_env: pytest.MonkeyPatch, tmp_path: Path, profile: str
) -> None:
    config = tmp_path / "config"
    config.write_text(profile.format(url=s3_endpoint.url))
    clean_env.setenv("AWS_CONFIG_FILE", str(config))
    clean_env.setenv("AWS_PROFILE", "app")
    keys = {"aws_access_key_id": "a", "aws_secret_access_key": "b"}
    client = boto3.session.Session().client("s3", **keys)
    async with S3Storage("bucket", keys) as storage:
        await storage._prepare()
        assert storage.region == client.meta.region_name == "eu-west-2"
        if storage.endpoint_url is None:
            assert client.meta.endpoint_url == "https://s3.eu-west-2.amazonaws.com"
        else:
            assert storage.endpoint_url == client.meta.endpoint_url == s3_endpoint.url
