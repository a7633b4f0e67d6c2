"""What botocore users rely on, through S3Storage's own transport.

Each test runs against the suite's S3 server (moto in ``make test``, Ceph RGW
in ``make test-ceph``), behind a front started here where the case needs one:
a keep-alive front that closes idle connections, a proxy, a slow reader, a
front that answers a region redirect.  ``tests/test_s3_differential.py`` puts
boto3 through the same cases.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from botocore.config import Config

from benchmarks.s3_memory import measure
from ssshelf.errors import (
    ConfigurationError,
    OutcomeUnknown,
    PreconditionFailed,
    StorageError,
    StorageUnavailable,
)
from ssshelf.storages.s3 import RetryPolicy, S3Storage
from tests.fault_proxy import (
    SLOWDOWN,
    FaultProxy,
    Request,
    ThreadedProxy,
    corrupt,
    error_reply,
    refuse_early,
    stall,
)
from tests.http_proxy import ForwardProxy
from tests.s3_server import S3Endpoint, remove_buckets, unique_bucket_name
from tests.tls_support import HIDDEN_HOST, make_certificate, server_context

pytestmark = pytest.mark.s3

FAST = RetryPolicy(attempts=4, base_delay=0.001, max_delay=0.01)
IDLE_408 = b"HTTP/1.1 408 Request Timeout\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
Make = Callable[..., S3Storage]


@pytest.fixture
async def bucket(s3_endpoint: S3Endpoint) -> AsyncIterator[str]:
    """A fresh bucket, created directly (emptied and removed afterwards on an external server)."""
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
async def make(s3_endpoint: S3Endpoint, bucket: str) -> AsyncIterator[Make]:
    """``make(endpoint_url=..., **kwargs)``: a storage on ``bucket``, closed after the test
    (``aws_client_kwargs_verify`` / ``_config`` go into ``aws_client_kwargs``)."""
    made: list[S3Storage] = []

    def build(**kwargs: Any) -> S3Storage:
        kwargs.setdefault("retries", FAST)
        client_kwargs = s3_endpoint.client_kwargs()
        for name in ("verify", "config"):
            if f"aws_client_kwargs_{name}" in kwargs:
                client_kwargs[name] = kwargs.pop(f"aws_client_kwargs_{name}")
        storage = S3Storage(bucket, client_kwargs, **kwargs)
        made.append(storage)
        return storage

    yield build
    for storage in made:
        await storage.close()


def methods(proxy: FaultProxy) -> list[str]:
    return [request.method for request in proxy.requests]


# -- 2. a pooled connection is checked before it is reused --------------------------------


@pytest.mark.parametrize("reply", [None, IDLE_408], ids=["closed", "408-then-closed"])
async def test_a_connection_closed_while_idle_is_not_written_into(
    s3_endpoint: S3Endpoint, make: Make, reply: bytes | None
) -> None:
    front = FaultProxy(s3_endpoint.url, keep_alive=True, idle_close=0.2, idle_reply=reply)
    with ThreadedProxy(front):
        storage = make(endpoint_url=front.url)
        await storage.put("k", b"v")
        # The loop is blocked while the front closes the idle connection, so
        # nothing but the check before reuse can notice.
        time.sleep(0.6)  # noqa: ASYNC251 -- blocking the loop is the point
        with pytest.raises(PreconditionFailed):
            await storage.put("k", b"w", if_absent=True)
        assert methods(front) == ["PUT", "PUT"]  # no resend, no read to settle a doubt
        assert front.connections == 2
    obj = await make().get("k")
    assert obj is not None and obj.data == b"v"


async def test_a_kept_alive_connection_is_reused(s3_endpoint: S3Endpoint, make: Make) -> None:
    front = FaultProxy(s3_endpoint.url, keep_alive=True)
    async with front:
        storage = make(endpoint_url=front.url)
        for index in range(5):
            await storage.put(f"k{index}", b"v")
            await storage.get(f"k{index}")
        assert len(front.requests) == 10 and front.connections == 1


# -- 9. the pool bound, and the MD5 of a single-part body ----------------------------------


@pytest.mark.parametrize("keep_alive", [True, False], ids=["keep-alive", "close-each"])
async def test_500_gets_in_flight_never_open_more_sockets_than_the_pool(
    s3_endpoint: S3Endpoint, make: Make, keep_alive: bool
) -> None:
    front = FaultProxy(s3_endpoint.url, keep_alive=keep_alive)
    async with front:
        storage = make(endpoint_url=front.url, max_in_flight=500, max_pool_connections=16)
        await storage.put("k", b"v")
        objects = await asyncio.gather(*(storage.get("k") for _ in range(500)))
        assert all(obj is not None and obj.data == b"v" for obj in objects)
        assert front.max_connections <= 16
        if keep_alive:
            assert front.connections <= 16
        state = storage._loops.get()
        assert state is not None and state.pool._count <= 16


async def test_the_default_pool_bounds_sockets_too(s3_endpoint: S3Endpoint, make: Make) -> None:
    front = FaultProxy(s3_endpoint.url, keep_alive=True)
    async with front:
        storage = make(endpoint_url=front.url, max_in_flight=500)
        await storage.put("k", b"v")
        await asyncio.gather(*(storage.get("k") for _ in range(300)))
        assert front.max_connections <= 64


async def test_a_body_whose_md5_is_not_its_etag_is_rejected(
    s3_endpoint: S3Endpoint, make: Make
) -> None:
    # Cut short with a Content-Length rewritten to match: only the MD5 shows it.
    async with FaultProxy(s3_endpoint.url) as front:
        storage = make(endpoint_url=front.url)
        data = bytes(range(256)) * 4
        version = await storage.put("k", data)
        front.inject(corrupt(100), times=1, when=lambda r: r.method == "GET")
        obj = await storage.get("k")
        assert obj is not None and obj.data == data and obj.version == version
        assert [r.fault is not None for r in front.requests if r.method == "GET"] == [True, False]
        front.inject(corrupt(1000), when=lambda r: r.method == "GET")
        with pytest.raises(StorageUnavailable, match="is corrupt") as info:
            await storage.get("k")
        assert "MD5 is not the ETag" in str(info.value)


# -- 1. proxies ------------------------------------------------------------------------------


@pytest.fixture
def proxy_env(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    """The environment without any proxy setting (the test sets its own)."""
    for name in list(os.environ):
        if name.lower() in ("http_proxy", "https_proxy", "all_proxy", "no_proxy"):
            monkeypatch.delenv(name)
    return monkeypatch


@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    return make_certificate(tmp_path_factory.mktemp("tls"))


def upstream(endpoint: S3Endpoint) -> tuple[str, int]:
    parts = urlsplit(endpoint.url)
    assert parts.hostname is not None and parts.port is not None
    return parts.hostname, parts.port


async def test_http_proxy_from_the_environment(
    s3_endpoint: S3Endpoint, make: Make, proxy_env: pytest.MonkeyPatch
) -> None:
    host, port = upstream(s3_endpoint)
    hidden = f"http://{HIDDEN_HOST}:{port}"
    async with ForwardProxy({HIDDEN_HOST: (host, port)}) as proxy:
        with pytest.raises(StorageUnavailable, match="cannot reach"):
            await make(endpoint_url=hidden).get("k")  # only the proxy can resolve it
        proxy_env.setenv("HTTP_PROXY", proxy.url)
        storage = make(endpoint_url=hidden)
        version = await storage.put("k", b"via proxy")
        obj = await storage.get("k")
        assert obj is not None and obj.version == version and obj.data == b"via proxy"
        assert (await storage.list()).keys == ["k"]
        assert [method for method, _, _ in proxy.requests] == ["PUT", "GET", "GET"]
        assert all(target.startswith(f"{hidden}/") for _, target, _ in proxy.requests)


async def test_https_proxy_tunnels_with_connect(
    s3_endpoint: S3Endpoint,
    make: Make,
    proxy_env: pytest.MonkeyPatch,
    certificate: tuple[Path, Path],
) -> None:
    cert, key = certificate
    tls = server_context(cert, key)
    async with FaultProxy(s3_endpoint.url, ssl_context=tls, keep_alive=True) as tls_front:
        tls_port = int(urlsplit(tls_front.url).port or 0)
        async with ForwardProxy({HIDDEN_HOST: ("127.0.0.1", tls_port)}) as proxy:
            proxy_env.setenv("HTTPS_PROXY", proxy.url)
            proxy_env.setenv("HTTP_PROXY", "http://127.0.0.1:9")  # the wrong scheme's
            hidden = f"https://{HIDDEN_HOST}:{tls_port}"
            storage = make(endpoint_url=hidden, aws_client_kwargs_verify=str(cert))
            await storage.put("k", b"tunnelled")
            obj = await storage.get("k")
            assert obj is not None and obj.data == b"tunnelled"
            assert [method for method, _, _ in proxy.requests] == ["CONNECT"]
            assert proxy.requests[0][1] == f"{HIDDEN_HOST}:{tls_port}"
            assert [r.method for r in tls_front.requests] == ["PUT", "GET"]
            untrusting = make(endpoint_url=hidden)
            with pytest.raises(StorageError, match="certificate"):
                await untrusting.get("k")


async def test_no_proxy_is_respected(
    s3_endpoint: S3Endpoint, make: Make, proxy_env: pytest.MonkeyPatch
) -> None:
    host, port = upstream(s3_endpoint)
    async with ForwardProxy({HIDDEN_HOST: (host, port)}) as proxy:
        proxy_env.setenv("HTTP_PROXY", proxy.url)
        proxy_env.setenv("NO_PROXY", f"example.org,{host}")
        await make().put("direct", b"v")  # the suite's endpoint, bypassing the proxy
        assert proxy.requests == []
        proxy_env.setenv("NO_PROXY", f".test,{host}")
        with pytest.raises(StorageUnavailable, match="cannot reach"):
            await make(endpoint_url=f"http://{HIDDEN_HOST}:{port}").get("direct")
        assert proxy.requests == []


@pytest.mark.parametrize("how", ["argument", "botocore-config"])
async def test_proxies_given_in_the_config(
    s3_endpoint: S3Endpoint, make: Make, proxy_env: pytest.MonkeyPatch, how: str
) -> None:
    host, port = upstream(s3_endpoint)
    async with ForwardProxy({HIDDEN_HOST: (host, port)}, credentials="user:p@ss w") as proxy:
        proxy_env.setenv("NO_PROXY", "*")  # not consulted for proxies given (as botocore)
        url = f"http://user:p%40ss%20w@127.0.0.1:{proxy.port}"
        if how == "argument":
            storage = make(endpoint_url=f"http://{HIDDEN_HOST}:{port}", proxies={"http": url})
        else:
            storage = make(
                endpoint_url=f"http://{HIDDEN_HOST}:{port}",
                aws_client_kwargs_config=Config(proxies={"http": url}),
            )
        await storage.put("k", b"v")
        assert [method for method, _, _ in proxy.requests] == ["PUT"]
        anonymous = make(endpoint_url=f"http://{HIDDEN_HOST}:{port}", proxies={"http": proxy.url})
        with pytest.raises(StorageError, match="asks for credentials") as info:
            await anonymous.get("k")
        assert "p@ss" not in str(info.value)


async def test_a_proxy_refusing_the_tunnel_says_so(
    make: Make, proxy_env: pytest.MonkeyPatch
) -> None:
    async with ForwardProxy(credentials="user:secret") as proxy:
        storage = make(endpoint_url="https://127.0.0.1:9", proxies={"https": proxy.url})
        with pytest.raises(StorageError, match="refused to open a tunnel: HTTP 407") as info:
            await storage.get("k")
        assert not isinstance(info.value, StorageUnavailable)  # not retried
        assert len(proxy.requests) == 1


def test_proxy_urls_that_are_not_supported_are_refused(proxy_env: pytest.MonkeyPatch) -> None:
    with pytest.raises(ConfigurationError, match="only http:// proxies"):
        S3Storage("b", endpoint_url="http://127.0.0.1:9", proxies={"http": "socks5://h:1080"})
    with pytest.raises(ConfigurationError, match="names no host"):
        S3Storage("b", endpoint_url="http://127.0.0.1:9", proxies={"http": "http://:8080"})


# -- 3. region redirects -----------------------------------------------------------------------

REDIRECT_MESSAGE = (
    "The bucket you are attempting to access must be addressed using the specified endpoint."
)


def not_signed_for(region: str) -> Callable[[Request], bool]:
    return lambda request: (
        f"/{region}/s3/aws4_request" not in request.headers.get("authorization", "")
    )


def redirect(kind: str, region: str) -> Any:
    if kind == "301":
        return error_reply(
            301, "PermanentRedirect", REDIRECT_MESSAGE, headers={"x-amz-bucket-region": region}
        )
    if kind == "400-header":
        return error_reply(
            400, "IllegalLocationConstraintException", "", headers={"x-amz-bucket-region": region}
        )
    body = (
        "<Error><Code>AuthorizationHeaderMalformed</Code><Message>The authorization header"
        f" is malformed; the region 'us-east-1' is wrong; expecting '{region}'</Message>"
        f"<Region>{region}</Region><RequestId>x</RequestId></Error>"
    )
    return error_reply(400, "AuthorizationHeaderMalformed", body=body)


@pytest.mark.parametrize("kind", ["301", "400-header", "400-body"])
async def test_a_region_redirect_is_followed_once_and_remembered(
    s3_endpoint: S3Endpoint, make: Make, kind: str
) -> None:
    async with FaultProxy(s3_endpoint.url) as front:
        front.inject(redirect(kind, "eu-west-1"), when=not_signed_for("eu-west-1"))
        storage = make(endpoint_url=front.url, region="us-east-1")
        version = await storage.put("k", b"v", if_absent=True)
        assert storage.region == "eu-west-1"
        obj = await storage.get("k")
        assert obj is not None and obj.version == version
        assert methods(front) == ["PUT", "PUT", "GET"]
        assert [r.fault is not None for r in front.requests] == [True, False, False]


async def test_a_redirected_probe_learns_the_region_from_the_header(
    s3_endpoint: S3Endpoint, make: Make
) -> None:
    async with FaultProxy(s3_endpoint.url) as front:
        front.inject(redirect("301", "eu-central-1"), when=not_signed_for("eu-central-1"))
        storage = make(endpoint_url=front.url, region="us-east-1")
        await storage.probe()
        assert storage.region == "eu-central-1" and methods(front) == ["HEAD", "HEAD"]


async def test_a_redirect_that_cannot_be_followed_names_the_regions(
    s3_endpoint: S3Endpoint, make: Make
) -> None:
    async with FaultProxy(s3_endpoint.url) as front:
        front.inject(error_reply(301, "PermanentRedirect", REDIRECT_MESSAGE))
        storage = make(endpoint_url=front.url, region="ap-south-1")
        with pytest.raises(StorageError, match="in another region, not 'ap-south-1'") as info:
            await storage.get("k")
        assert not isinstance(info.value, StorageUnavailable)  # not retried
        front.heal()
        front.inject(redirect("301", "eu-west-1"))  # redirects even when signed for it
        with pytest.raises(StorageError, match="signed for the bucket's region 'eu-west-1'"):
            await storage.get("k")
        assert methods(front) == ["GET", "GET", "GET"]


# -- 4. the AWS config file --------------------------------------------------------------------


@pytest.fixture
def aws_config(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, proxy_env: pytest.MonkeyPatch
) -> Callable[[str], None]:
    """``aws_config(text)``: the AWS config file from now on, nothing else in the environment."""
    for name in list(os.environ):
        if name.startswith("AWS_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-credentials"))
    path = tmp_path / "config"

    def write(text: str) -> None:
        path.write_text(text)
        monkeypatch.setenv("AWS_CONFIG_FILE", str(path))

    return write


def keyed(endpoint: S3Endpoint, bucket: str, **kwargs: Any) -> S3Storage:
    """A storage with keys but no endpoint or region: the config file supplies them."""
    keys = {"aws_access_key_id": endpoint.access_key, "aws_secret_access_key": endpoint.secret_key}
    return S3Storage(bucket, keys, **kwargs)


async def test_the_config_files_ca_bundle_region_and_endpoint_are_used(
    s3_endpoint: S3Endpoint,
    bucket: str,
    aws_config: Callable[[str], None],
    certificate: tuple[Path, Path],
) -> None:
    cert, key = certificate
    async with FaultProxy(s3_endpoint.url, ssl_context=server_context(cert, key)) as tls_front:
        aws_config(
            f"[default]\nregion = {s3_endpoint.region}\nendpoint_url = {tls_front.url}\n"
            f"ca_bundle = {cert}\n"
        )
        async with keyed(s3_endpoint, bucket, retries=FAST) as storage:
            assert storage.endpoint_url is None  # known once the file is read
            await storage.put("k", b"over tls")
            assert storage.endpoint_url == tls_front.url
            assert storage.region == s3_endpoint.region
        aws_config(f"[default]\nregion = {s3_endpoint.region}\nendpoint_url = {tls_front.url}\n")
        async with keyed(s3_endpoint, bucket, retries=FAST) as storage:
            with pytest.raises(StorageError, match="certificate"):
                await storage.get("k")
        assert [r.method for r in tls_front.requests] == ["PUT"]


async def test_a_services_section_names_the_s3_endpoint(
    s3_endpoint: S3Endpoint,
    bucket: str,
    aws_config: Callable[[str], None],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    aws_config(
        "[profile app]\nservices = local\nendpoint_url = http://127.0.0.1:9\n"
        "s3 =\n  addressing_style = path\n"
        f"[services local]\ns3 =\n  endpoint_url = {s3_endpoint.url}\n"
    )
    monkeypatch.setenv("AWS_PROFILE", "app")
    async with keyed(s3_endpoint, bucket, region=s3_endpoint.region) as storage:
        await storage.put("k", b"v")
        assert storage.endpoint_url == s3_endpoint.url


async def test_ignore_configured_endpoint_urls_is_honoured(
    s3_endpoint: S3Endpoint,
    bucket: str,
    aws_config: Callable[[str], None],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    aws_config(
        f"[default]\nignore_configured_endpoint_urls = true\nendpoint_url = {s3_endpoint.url}\n"
    )
    monkeypatch.setenv("AWS_ENDPOINT_URL_S3", s3_endpoint.url)
    storage = keyed(s3_endpoint, bucket, region="us-east-1")
    await storage._prepare()
    assert storage.endpoint_url is None and storage._target is not None
    assert storage._target.addressing.origin.host.endswith(".amazonaws.com")
    await storage.close()


async def test_max_attempts_from_the_config_file(
    s3_endpoint: S3Endpoint, bucket: str, aws_config: Callable[[str], None]
) -> None:
    aws_config(f"[default]\nmax_attempts = 2\nregion = {s3_endpoint.region}\n")
    async with FaultProxy(s3_endpoint.url) as front:
        front.inject(SLOWDOWN)
        async with keyed(s3_endpoint, bucket, endpoint_url=front.url) as storage:
            with pytest.raises(StorageUnavailable, match="2 attempts"):
                await storage.get("k")
            assert storage.retries.attempts == 2 and len(front.requests) == 2
        given = RetryPolicy(attempts=3, base_delay=0.001, max_delay=0.002)
        async with keyed(s3_endpoint, bucket, endpoint_url=front.url, retries=given) as storage:
            with pytest.raises(StorageUnavailable, match="3 attempts"):
                await storage.get("k")


async def test_a_missing_profile_is_a_configuration_error(
    s3_endpoint: S3Endpoint,
    bucket: str,
    aws_config: Callable[[str], None],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    aws_config("[default]\nregion = us-east-1\n")
    monkeypatch.setenv("AWS_PROFILE", "nobody")
    async with keyed(s3_endpoint, bucket, endpoint_url=s3_endpoint.url) as storage:
        with pytest.raises(ConfigurationError, match="nobody"):
            await storage.get("k")


async def test_aws_region_is_not_read_as_botocore_does_not(
    s3_endpoint: S3Endpoint,
    bucket: str,
    aws_config: Callable[[str], None],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    aws_config("[default]\n")
    monkeypatch.setenv("AWS_REGION", "eu-north-1")
    async with keyed(s3_endpoint, bucket, endpoint_url=s3_endpoint.url) as storage:
        await storage.list()
        assert storage.region == "us-east-1"


# -- 8. time limits on progress; Expect: 100-continue -------------------------------------------

MiB = 1024 * 1024


async def test_a_big_put_over_a_slow_link_is_not_cut_off(
    s3_endpoint: S3Endpoint, make: Make
) -> None:
    # 3 MiB at about 1 MiB/s: longer than read_timeout and than the call's
    # deadline, but it keeps moving, so one attempt stores it.
    data = os.urandom(3 * MiB)
    async with FaultProxy(s3_endpoint.url, read_rate=MiB) as front:
        storage = make(endpoint_url=front.url, read_timeout=1.0, deadline=1.5)
        started = time.monotonic()
        version = await storage.put("big", data)
        took = time.monotonic() - started
        assert [r.method for r in front.requests] == ["PUT"]
        assert len(front.requests[0].body) == len(data)
    assert took > 1.5  # it did outlast the deadline
    obj = await make().get("big")
    assert obj is not None and obj.version == version and obj.data == data


async def test_a_stalled_upload_fails_after_read_timeout(
    s3_endpoint: S3Endpoint, make: Make
) -> None:
    data = os.urandom(8 * MiB)
    async with FaultProxy(s3_endpoint.url) as front:
        front.inject(stall(MiB))
        storage = make(endpoint_url=front.url, read_timeout=0.5, deadline=30)
        storage.retries = RetryPolicy(attempts=1)
        started = time.monotonic()
        with pytest.raises(OutcomeUnknown, match=r"nothing moved for 0\.5 s"):
            await storage.put("big", data)
        assert time.monotonic() - started < 10
        assert len(front.requests) == 1


async def test_a_refused_big_put_does_not_upload_its_body(
    s3_endpoint: S3Endpoint, make: Make
) -> None:
    data = os.urandom(8 * MiB)
    async with FaultProxy(s3_endpoint.url) as front:
        storage = make(endpoint_url=front.url)
        await storage.put("small", b"v")
        front.inject(refuse_early(412, "PreconditionFailed"), when=lambda r: r.method == "PUT")
        with pytest.raises(PreconditionFailed):
            await storage.put("small", data, if_absent=True)
        refused = front.requests[-1]
        assert refused.headers.get("expect") == "100-continue"
        assert refused.late_bytes == 0  # the body never went out
        front.heal()
        version = await storage.put("big", data)  # accepted: 100 Continue, then the body
        assert front.requests[-1].headers.get("expect") == "100-continue"
        assert len(front.requests[-1].body) == len(data)
    obj = await make().get("big")
    assert obj is not None and obj.version == version


async def test_a_server_that_ignores_expect_gets_the_body_after_a_second(
    s3_endpoint: S3Endpoint, make: Make
) -> None:
    data = os.urandom(2 * MiB)
    async with FaultProxy(s3_endpoint.url, send_continue=False) as front:
        storage = make(endpoint_url=front.url)
        started = time.monotonic()
        await storage.put("big", data)
        assert 0.9 < time.monotonic() - started < 10
        assert len(front.requests[0].body) == len(data)


async def test_small_bodies_are_sent_without_expect(s3_endpoint: S3Endpoint, make: Make) -> None:
    async with FaultProxy(s3_endpoint.url) as front:
        storage = make(endpoint_url=front.url)
        await storage.put("k", os.urandom(MiB - 1))
        assert "expect" not in front.requests[0].headers


# -- 6. big values are not copied ------------------------------------------------------------


def test_a_100_mib_put_and_get_cost_no_copy_of_the_value(
    s3_endpoint: S3Endpoint, bucket: str
) -> None:
    """Peak memory above a process holding the value (``benchmarks/s3_memory.py``)."""
    figures = measure(
        "S3Storage", s3_endpoint.url, (s3_endpoint.access_key, s3_endpoint.secret_key), bucket, 100
    )
    assert figures["put_extra"] < 0.3 and figures["get_extra"] < 0.3, figures
    assert figures["put_extra_rss"] < 0.3 and figures["get_extra_rss"] < 0.3, figures
