"""S3Storage behaviour beyond the shared contract, against a real S3-protocol server.

Requests go to moto (or the external server of ``make test-ceph``); where the
test needs to see or disturb the wire, through :class:`FaultProxy`.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest

from ssshelf.errors import (
    AccessDenied,
    BucketNotFound,
    ConfigurationError,
    DeleteFailed,
    InvalidArgument,
    InvalidKeyError,
    OutcomeUnknown,
    PreconditionFailed,
    StorageError,
    StorageUnavailable,
    UnsupportedOperation,
)
from ssshelf.storages import open_storage
from ssshelf.storages.base import MAX_KEY_BYTES
from ssshelf.storages.s3 import RetryPolicy, S3Storage
from ssshelf.storages.s3._compat import detect_flavor
from tests.fault_proxy import (
    CONFLICT,
    DROP_AFTER,
    DROP_BEFORE,
    INTERNAL_ERROR,
    SLOWDOWN,
    FaultProxy,
    Request,
    delay,
    error_reply,
    xml_reply,
)
from tests.s3_server import MotoServer, S3Endpoint, free_port, remove_buckets, unique_bucket_name

pytestmark = pytest.mark.s3

Factory = Callable[..., Awaitable[S3Storage]]

#: Retries that give up quickly, so fault tests take milliseconds.
FAST = RetryPolicy(attempts=6, base_delay=0.001, max_delay=0.01)
RGW_REQUEST_ID = "tx00000a1b2c3d4e5f60718-0065f0a1b2-1a2b-default"
ENCODING_KEYS = ["x!y", "x)y(z", "it's", "a*b", "k=v", "under_score", "dot.ted", "da-sh"]


@pytest.fixture
async def s3(s3_storage_factory: Factory) -> AsyncIterator[S3Storage]:
    """A storage on a fresh bucket, straight to the server."""
    storage = await s3_storage_factory()
    async with storage:
        yield storage


@pytest.fixture
async def proxy(s3_endpoint: S3Endpoint) -> AsyncIterator[FaultProxy]:
    async with FaultProxy(s3_endpoint.url) as fault_proxy:
        yield fault_proxy


@pytest.fixture
async def via_proxy(s3_endpoint: S3Endpoint, proxy: FaultProxy) -> AsyncIterator[Factory]:
    """``await via_proxy(**kwargs)``: a storage on a fresh bucket, through ``proxy``.

    The bucket is created directly, so ``proxy.requests`` holds only what
    the test does.  Retries default to :data:`FAST`.
    """
    created: list[S3Storage] = []

    async def make(**kwargs: Any) -> S3Storage:
        bucket = unique_bucket_name()
        async with s3_endpoint.storage(bucket) as admin:
            await admin.create_bucket()
        kwargs.setdefault("retries", FAST)
        storage = s3_endpoint.storage(bucket, endpoint_url=proxy.url, **kwargs)
        created.append(storage)
        return storage

    yield make
    for storage in created:
        await storage.close()
    if s3_endpoint.external:
        await remove_buckets(s3_endpoint, {storage.bucket for storage in created})


def is_put(request: Request) -> bool:
    return request.method == "PUT"


def methods(proxy: FaultProxy) -> list[str]:
    return [request.method for request in proxy.requests]


def skip_if_external(endpoint: S3Endpoint, reason: str) -> None:
    if endpoint.external:
        pytest.skip(reason)


# -- prefixes and keys ----------------------------------------------------------


async def test_prefixes_in_one_bucket_do_not_see_each_other(
    s3: S3Storage, s3_endpoint: S3Endpoint
) -> None:
    async with (
        s3_endpoint.storage(s3.bucket, prefix="app-a") as a,
        s3_endpoint.storage(s3.bucket, prefix="/app-b/") as b,
    ):
        assert b.prefix == "app-b"
        await a.put("k", b"from a")
        await b.put("k", b"from b")
        await b.put("only-b", b"")
        assert (await a.list()).keys == ["k"]
        assert (await b.list()).keys == ["k", "only-b"]
        obj = await a.get("k")
        assert obj is not None and obj.data == b"from a" and obj.key == "k"
        assert await a.get("only-b") is None
        await a.delete_many(["k", "only-b"])
        assert (await b.list()).keys == ["k", "only-b"]
    assert (await s3.list()).keys == ["app-b/k", "app-b/only-b"]


async def test_objects_live_under_prefix_slash(s3: S3Storage, s3_endpoint: S3Endpoint) -> None:
    async with s3_endpoint.storage(s3.bucket, prefix="tenant/7") as scoped:
        await scoped.put("x/y", b"1")
        assert (await scoped.list("x/", after="x/")).keys == ["x/y"]
    assert (await s3.list()).keys == ["tenant/7/x/y"]


async def test_max_key_length_subtracts_the_prefix(s3: S3Storage, s3_endpoint: S3Endpoint) -> None:
    assert s3.max_key_length == MAX_KEY_BYTES
    async with s3_endpoint.storage(s3.bucket, prefix="pré") as scoped:
        assert scoped.max_key_length == MAX_KEY_BYTES - len("pré/".encode())
        longest = "k" * scoped.max_key_length
        await scoped.put(longest, b"x")
        assert (await scoped.list()).keys == [longest]
        with pytest.raises(InvalidKeyError):
            await scoped.put(longest + "k", b"x")


@pytest.mark.parametrize("key", [*ENCODING_KEYS, "sp ace+plus%2F/ü"])
async def test_keys_with_encoding_characters_round_trip_under_a_prefix(
    s3: S3Storage, s3_endpoint: S3Endpoint, key: str
) -> None:
    async with s3_endpoint.storage(s3.bucket, prefix="p re+fix") as scoped:
        await scoped.put(key, key.encode())
        assert (await scoped.list()).keys == [key]
        assert (await scoped.list(key[:2], after=key[:1])).keys == [key]
        obj = await scoped.get(key)
        assert obj is not None and obj.data == key.encode()


async def test_list_reports_more_only_when_truncated(s3: S3Storage) -> None:
    await asyncio.gather(*(s3.put(f"t/{i}", b"") for i in range(5)))
    first = await s3.list("t/", limit=3)
    assert first.keys == ["t/0", "t/1", "t/2"] and first.next_after == "t/2"
    rest = await s3.list("t/", after=first.next_after, limit=3)
    assert rest.keys == ["t/3", "t/4"] and rest.next_after is None


# -- construction -----------------------------------------------------------------


@pytest.fixture
def aws_env(monkeypatch: pytest.MonkeyPatch, s3_endpoint: S3Endpoint) -> pytest.MonkeyPatch:
    """An environment where only the variables a test sets configure AWS."""
    for name in ("AWS_REGION", "AWS_DEFAULT_REGION", "AWS_PROFILE", "AWS_ENDPOINT_URL_S3"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", "/nonexistent/aws-config")
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent/aws-credentials")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", s3_endpoint.access_key)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", s3_endpoint.secret_key)
    monkeypatch.setenv("AWS_ENDPOINT_URL", s3_endpoint.url)
    return monkeypatch


async def test_no_arguments_reads_the_environment(
    aws_env: pytest.MonkeyPatch, s3: S3Storage
) -> None:
    aws_env.setenv("SSSHELF_BUCKET", s3.bucket)
    async with S3Storage() as storage:
        assert storage.bucket == s3.bucket
        assert storage.endpoint_url == s3.endpoint_url
        await storage.put("from-env", b"yes")
        assert storage.region == "us-east-1"
    obj = await s3.get("from-env")
    assert obj is not None and obj.data == b"yes"


async def test_region_comes_from_the_aws_chain(aws_env: pytest.MonkeyPatch, s3: S3Storage) -> None:
    aws_env.setenv("AWS_DEFAULT_REGION", "eu-west-3")
    async with S3Storage(s3.bucket) as storage:
        await storage.list()
        assert storage.region == "eu-west-3"


def test_missing_bucket_name_is_a_configuration_error(aws_env: pytest.MonkeyPatch) -> None:
    aws_env.delenv("SSSHELF_BUCKET", raising=False)
    with pytest.raises(ConfigurationError, match="SSSHELF_BUCKET"):
        S3Storage()


def test_bad_settings_are_rejected() -> None:
    with pytest.raises(InvalidArgument):
        S3Storage("b", max_in_flight=0)
    with pytest.raises(InvalidArgument):
        RetryPolicy(attempts=0)
    with pytest.raises(InvalidArgument):
        S3Storage("b", etag_quoting="sometimes")  # type: ignore[arg-type]
    with pytest.raises(ConfigurationError):
        S3Storage("b", prefix="p" * MAX_KEY_BYTES)


async def test_open_storage_s3_url(aws_env: pytest.MonkeyPatch, s3: S3Storage) -> None:
    aws_env.delenv("AWS_ENDPOINT_URL")
    url = f"s3://{s3.bucket}/some/prefix?endpoint={s3.endpoint_url}&region=us-east-1"
    storage = open_storage(url)
    assert isinstance(storage, S3Storage)
    async with storage:
        assert storage.prefix == "some/prefix" and storage.endpoint_url == s3.endpoint_url
        await storage.put("k", b"via url")
        assert storage.region == "us-east-1"
    assert (await s3.list()).keys == ["some/prefix/k"]


# -- lifecycle ----------------------------------------------------------------------


async def test_async_with_closes_and_close_is_idempotent(
    s3: S3Storage, s3_endpoint: S3Endpoint
) -> None:
    async with s3_endpoint.storage(s3.bucket) as storage:
        await storage.put("k", b"v")
    with pytest.raises(StorageError, match="closed"):
        await storage.get("k")
    await storage.close()


async def test_one_connection_pool_per_event_loop(s3: S3Storage) -> None:
    await asyncio.gather(*(s3.put(f"c/{i}", b"x") for i in range(40)))
    state = s3._loops.get()
    await asyncio.gather(*(s3.get(f"c/{i}") for i in range(40)))
    assert state is not None and s3._loops.get() is state
    assert len(s3._loops._states) == 1


# -- what goes on the wire -------------------------------------------------------


async def test_each_call_is_one_http_request(via_proxy: Factory, proxy: FaultProxy) -> None:
    storage = await via_proxy()
    await storage.put("a", b"1")
    await storage.put("b", b"2")
    proxy.requests.clear()
    await storage.list(limit=1)
    assert methods(proxy) == ["GET"] and "list-type=2" in proxy.requests[0].target
    assert "max-keys=1" in proxy.requests[0].target
    await storage.get("a")
    await storage.delete_many(["a", "b"])
    await storage.delete("a")
    assert methods(proxy) == ["GET", "GET", "POST", "DELETE"]


async def test_put_sends_no_expect_continue(via_proxy: Factory, proxy: FaultProxy) -> None:
    storage = await via_proxy()
    await storage.put("k", b"x" * 200)
    await storage.put("k", b"y" * 200, if_absent=False)
    puts = [r for r in proxy.requests if r.method == "PUT"]
    assert len(puts) == 2
    assert all("expect" not in r.headers for r in puts)


async def test_bad_input_makes_no_request(via_proxy: Factory, proxy: FaultProxy) -> None:
    storage = await via_proxy()
    with pytest.raises(InvalidKeyError):
        await storage.put("", b"x")
    with pytest.raises(InvalidArgument):
        await storage.put("k", b"x", if_absent=True, if_version="v")
    with pytest.raises(InvalidArgument):
        await storage.delete_many(["k"] * 1001)
    with pytest.raises(InvalidArgument):
        await storage.list(limit=0)
    with pytest.raises(InvalidKeyError):
        await storage.list("\ud800")
    assert proxy.requests == []


@pytest.mark.parametrize(
    "version",
    ['x"\r\nx-amz-meta-owner: mallory\r\nx: "', "v\nx", "v\x00", "v w", "ünï€", "\u20ac", ""],
    ids=["crlf", "lf", "nul", "space", "non-latin-1", "euro", "empty"],
)
async def test_versions_that_cannot_be_etags_are_refused_before_sending(
    via_proxy: Factory, proxy: FaultProxy, version: str
) -> None:
    storage = await via_proxy(flavor="aws")
    await storage.put("k", b"v")
    proxy.requests.clear()
    with pytest.raises(InvalidArgument, match="if_version"):
        await storage.put("k", b"w", if_version=version)
    with pytest.raises(InvalidArgument, match="if_version"):
        await storage.delete("k", if_version=version)
    assert proxy.requests == []
    obj = await storage.get("k")
    assert obj is not None and obj.data == b"v"


@pytest.mark.parametrize(
    ("bucket", "hint"),
    [
        ("B/sub", "prefix='sub'"),
        ("B?acl", "not valid"),
        ("b#frag", "not valid"),
        ("b c", "not valid"),
        ("b" * 256, "not valid"),
        ("arn:aws:s3:us-east-1:123456789012:accesspoint/ap", "ARNs are not supported"),
    ],
)
def test_bucket_names_that_are_not_names_are_refused(bucket: str, hint: str) -> None:
    with pytest.raises(ConfigurationError, match="bucket name") as info:
        S3Storage(bucket, endpoint_url="http://127.0.0.1:9")
    assert hint in str(info.value)


def test_bucket_names_botocore_accepts_are_accepted() -> None:
    for bucket in ("B", "legacy_Bucket.Name-1", "a" * 255, "my-bucket"):
        assert S3Storage(bucket, endpoint_url="http://127.0.0.1:9").bucket == bucket


async def test_in_flight_requests_are_bounded(via_proxy: Factory, proxy: FaultProxy) -> None:
    storage = await via_proxy(max_in_flight=3)
    proxy.inject(delay(0.2))
    await asyncio.gather(*(storage.get(f"k{i}") for i in range(15)))
    assert len(proxy.requests) == 15
    assert proxy.max_in_flight == 3


# -- retries ------------------------------------------------------------------------


async def test_throttling_and_server_errors_are_retried(
    via_proxy: Factory, proxy: FaultProxy
) -> None:
    storage = await via_proxy(retries=RetryPolicy(attempts=12, base_delay=0.001, max_delay=0.005))
    proxy.inject(SLOWDOWN, share=0.3)
    proxy.inject(INTERNAL_ERROR, share=0.1)
    proxy.inject(DROP_BEFORE, share=0.1)
    keys = [f"r/{i:02d}" for i in range(20)]
    versions = await asyncio.gather(*(storage.put(k, k.encode()) for k in keys))
    objects = await asyncio.gather(*(storage.get(k) for k in keys))
    assert [o.version if o else None for o in objects] == versions
    assert (await storage.list("r/")).keys == keys
    await storage.delete_many(keys)
    assert len(proxy.faulted()) > 5


async def test_lost_answers_of_idempotent_requests_are_retried(
    via_proxy: Factory, proxy: FaultProxy
) -> None:
    storage = await via_proxy()
    proxy.inject(DROP_AFTER, times=1, when=is_put)
    version = await storage.put("k", b"v")
    proxy.inject(DROP_AFTER, times=1, when=lambda r: r.method == "DELETE")
    obj = await storage.get("k")
    assert obj is not None and obj.version == version
    await storage.delete("k")
    assert await storage.get("k") is None
    assert methods(proxy).count("DELETE") == 2


async def test_timeouts_are_retried(via_proxy: Factory, proxy: FaultProxy) -> None:
    storage = await via_proxy(read_timeout=0.5)
    await storage.put("k", b"v")
    proxy.inject(delay(3.0), times=1)
    obj = await storage.get("k")
    assert obj is not None and obj.data == b"v"
    # The answer came from a retry, not from the delayed request: shown by the
    # requests the proxy saw, not by a clock a busy machine can slow down.
    gets = [r for r in proxy.requests if r.method == "GET"]
    assert len(gets) >= 2 and gets[0].fault is not None and gets[-1].fault is None


async def test_conditional_request_conflict_409_is_retried(
    via_proxy: Factory, proxy: FaultProxy
) -> None:
    storage = await via_proxy()
    v1 = await storage.put("k", b"one")
    proxy.inject(CONFLICT, times=2, when=is_put)
    v2 = await storage.put("k", b"two", if_version=v1)
    obj = await storage.get("k")
    assert obj is not None and obj.version == v2 and obj.data == b"two"
    assert methods(proxy).count("PUT") == 4


async def test_faults_that_never_stop_raise_storage_unavailable(
    via_proxy: Factory, proxy: FaultProxy
) -> None:
    storage = await via_proxy(retries=RetryPolicy(attempts=4, base_delay=0.001, max_delay=0.002))
    proxy.inject(SLOWDOWN)
    with pytest.raises(StorageUnavailable) as info:
        await storage.put("some/key", b"v")
    assert info.value.operation == "put" and info.value.key == "some/key"
    assert "SlowDown" in str(info.value) and "4 attempts" in str(info.value)
    assert len(proxy.requests) == 4


async def test_client_errors_are_not_retried(via_proxy: Factory, proxy: FaultProxy) -> None:
    storage = await via_proxy()
    proxy.inject(error_reply(400, "InvalidRequest", "no"), times=1)
    with pytest.raises(StorageError) as info:
        await storage.put("k", b"v")
    assert not isinstance(info.value, StorageUnavailable)
    assert "InvalidRequest" in str(info.value)
    assert len(proxy.requests) == 1


# -- the ambiguous conditional PUT --------------------------------------------------


async def test_create_whose_answer_was_lost_is_a_success(
    via_proxy: Factory, proxy: FaultProxy
) -> None:
    storage = await via_proxy()
    proxy.inject(DROP_AFTER, times=1, when=is_put)
    version = await storage.put("k", b"mine", if_absent=True)
    obj = await storage.get("k")
    assert obj is not None and obj.version == version and obj.data == b"mine"
    # first PUT landed, its retry got 412, one GET recognised our bytes
    assert methods(proxy) == ["PUT", "PUT", "GET", "GET"]


async def test_replace_whose_answer_was_lost_is_a_success(
    via_proxy: Factory, proxy: FaultProxy
) -> None:
    storage = await via_proxy()
    v1 = await storage.put("k", b"one")
    proxy.inject(DROP_AFTER, times=1, when=is_put)
    v2 = await storage.put("k", b"two", if_version=v1)
    assert v2 != v1
    obj = await storage.get("k")
    assert obj is not None and obj.version == v2


async def test_a_conflict_after_a_lost_answer_is_an_unknown_outcome(
    via_proxy: Factory, proxy: FaultProxy
) -> None:
    # The connection broke after the request was sent: the client cannot know
    # that it never reached the server, so the 412 of the retry may be its own.
    storage = await via_proxy()
    await storage.put("k", b"someone else's")
    proxy.inject(DROP_BEFORE, times=1, when=is_put)
    with pytest.raises(OutcomeUnknown) as info:
        await storage.put("k", b"mine", if_absent=True)
    assert not isinstance(info.value, PreconditionFailed)
    assert info.value.operation == "put" and info.value.key == "k"
    obj = await storage.get("k")
    assert obj is not None and obj.data == b"someone else's"


async def test_throttled_create_then_conflict_is_not_checked(
    via_proxy: Factory, proxy: FaultProxy
) -> None:
    storage = await via_proxy()
    await storage.put("k", b"same bytes")
    proxy.inject(SLOWDOWN, times=1, when=is_put)
    with pytest.raises(PreconditionFailed):
        await storage.put("k", b"same bytes", if_absent=True)
    assert methods(proxy) == ["PUT", "PUT", "PUT"]  # a 503 SlowDown never landed: no GET


async def test_plain_precondition_failure_costs_one_request(
    via_proxy: Factory, proxy: FaultProxy
) -> None:
    storage = await via_proxy()
    await storage.put("k", b"v")
    proxy.requests.clear()
    with pytest.raises(PreconditionFailed):
        await storage.put("k", b"v", if_absent=True)
    assert methods(proxy) == ["PUT"]


async def test_conditional_delete_whose_answer_was_lost_is_a_success(
    via_proxy: Factory, proxy: FaultProxy
) -> None:
    storage = await via_proxy(flavor="aws")
    version = await storage.put("k", b"v")
    proxy.inject(DROP_AFTER, times=1, when=lambda r: r.method == "DELETE")
    await storage.delete("k", if_version=version)
    assert await storage.get("k") is None


async def test_conditional_delete_of_a_missing_key_fails(s3: S3Storage) -> None:
    if not s3.supports_conditional_delete:
        pytest.skip("this server ignores If-Match on DELETE")
    with pytest.raises(PreconditionFailed) as info:
        await s3.delete("missing", if_version="0123")
    assert info.value.operation == "delete"


# -- delete_many ----------------------------------------------------------------------


async def test_delete_many_reports_keys_the_store_refused(
    via_proxy: Factory, proxy: FaultProxy
) -> None:
    storage = await via_proxy(prefix="pre")
    await storage.put("ok", b"")
    proxy.inject(
        xml_reply(
            200,
            '<?xml version="1.0" encoding="UTF-8"?><DeleteResult>'
            "<Error><Key>pre/locked</Key><Code>AccessDenied</Code>"
            "<Message>Access Denied</Message></Error></DeleteResult>",
        ),
        times=1,
        when=lambda r: r.method == "POST",
    )
    with pytest.raises(DeleteFailed) as info:
        await storage.delete_many(["ok", "locked"])
    assert info.value.failures == {"locked": "AccessDenied: Access Denied"}


async def test_delete_many_deletes_keys_xml_cannot_carry(
    via_proxy: Factory, proxy: FaultProxy
) -> None:
    storage = await via_proxy()
    keys = ["plain", "ctl\x01", "nonchar\uffff", "cr\rlf"]
    for key in keys:
        await storage.put(key, b"x")
    proxy.requests.clear()
    await storage.delete_many(keys)
    assert (await storage.list()).keys == []
    assert sorted(methods(proxy)[:-1]) == ["DELETE", "DELETE", "DELETE", "POST"]


# -- clear errors at first use -------------------------------------------------------


async def test_missing_bucket_names_bucket_and_endpoint(s3_endpoint: S3Endpoint) -> None:
    bucket = unique_bucket_name()
    async with s3_endpoint.storage(bucket) as storage:
        with pytest.raises(BucketNotFound) as info:
            await storage.get("k")
        for needle in (bucket, s3_endpoint.url, "create"):
            assert needle in str(info.value)
        with pytest.raises(BucketNotFound):
            await storage.probe()


async def test_unreachable_endpoint_says_to_check_it(s3_endpoint: S3Endpoint) -> None:
    endpoint = f"http://127.0.0.1:{free_port()}"
    policy = RetryPolicy(attempts=3, base_delay=0.001, max_delay=0.002)
    async with s3_endpoint.storage("bucket", endpoint_url=endpoint, retries=policy) as storage:
        with pytest.raises(StorageUnavailable) as info:
            await storage.put("k", b"v")
    message = str(info.value)
    assert endpoint in message and "running" in message and "3 attempts" in message
    assert info.value.operation == "put" and info.value.key == "k"


async def test_refused_credentials_say_what_to_check(s3_endpoint: S3Endpoint) -> None:
    secret = "not-a-real-secret-0123456789"
    kwargs = {"aws_access_key_id": "AKIAEXAMPLEWRONG", "aws_secret_access_key": secret}
    with contextlib.ExitStack() as stack:
        url = s3_endpoint.url
        if not s3_endpoint.external:  # moto checks credentials only when told to
            url = stack.enter_context(MotoServer(env={"INITIAL_NO_AUTH_ACTION_COUNT": "0"})).url
        async with S3Storage("bucket", kwargs, endpoint_url=url) as storage:
            with pytest.raises(AccessDenied) as info:
                await storage.get("k")
    message = str(info.value)
    assert url in message and "credentials" in message
    assert "aws_client_kwargs" in message
    assert secret not in message


# -- server quirks (Ceph RGW) ----------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "headers", "expected"),
    [
        (200, {"server": "AmazonS3", "x-amz-request-id": "4442587FB7D0A2F9"}, "aws"),
        (200, {"server": "amazon.com", "x-amzn-requestid": "Fd2GFti"}, "aws"),
        (200, {"x-amz-request-id": RGW_REQUEST_ID}, "ceph"),
        (404, {"server": "Ceph Object Gateway (pacific)"}, "ceph"),
        (200, {"x-rgw-object-count": "0", "x-amz-request-id": "abc"}, "ceph"),
        (503, {"x-amz-request-id": RGW_REQUEST_ID}, None),
        (200, {"content-type": "text/html"}, None),
    ],
)
def test_flavor_detection(status: int, headers: dict[str, str], expected: str | None) -> None:
    assert detect_flavor(status, headers) == expected


async def test_standard_server_gets_quoted_if_match(
    via_proxy: Factory, proxy: FaultProxy, s3_endpoint: S3Endpoint
) -> None:
    skip_if_external(s3_endpoint, "asserts what a standard (AWS-like) server is sent")
    storage = await via_proxy()
    assert storage.flavor is None and not storage.supports_conditional_delete
    v1 = await storage.put("k", b"one")
    assert storage.flavor == "aws" and storage.supports_conditional_delete
    v2 = await storage.put("k", b"two", if_version=v1)
    await storage.delete("k", if_version=v2)
    if_match = [r.headers["if-match"] for r in proxy.requests if "if-match" in r.headers]
    assert if_match == [f'"{v1}"', f'"{v2}"']
    assert await storage.get("k") is None


async def test_ceph_is_recognised_and_its_quirks_respected(
    via_proxy: Factory, proxy: FaultProxy
) -> None:
    proxy.response_headers["x-amz-request-id"] = RGW_REQUEST_ID
    storage = await via_proxy()
    v1 = await storage.put("k", b"one")
    assert storage.flavor == "ceph" and not storage.supports_conditional_delete
    v2 = await storage.put("k", b"two", if_version=v1)
    with pytest.raises(PreconditionFailed):
        await storage.put("k", b"three", if_version=v1)
    assert proxy.requests[-1].headers["if-match"] == v1
    with pytest.raises(UnsupportedOperation):
        await storage.delete("k", if_version=v2)
    obj = await storage.get("k")
    assert obj is not None and obj.version == v2
    assert methods(proxy) == ["PUT", "PUT", "PUT", "GET"]


async def test_first_conditional_request_learns_the_server_first(
    via_proxy: Factory, proxy: FaultProxy, s3_endpoint: S3Endpoint
) -> None:
    skip_if_external(s3_endpoint, "asserts what a standard (AWS-like) server is sent")
    storage = await via_proxy()
    assert storage.flavor is None
    with pytest.raises(PreconditionFailed):
        await storage.delete("missing", if_version="abc")
    assert methods(proxy) == ["HEAD", "DELETE"]
    assert storage.flavor == "aws"


async def test_explicit_knobs_override_detection(via_proxy: Factory, proxy: FaultProxy) -> None:
    storage = await via_proxy(etag_quoting="unquoted", conditional_delete=False)
    assert not storage.supports_conditional_delete
    v1 = await storage.put("k", b"one")
    await storage.put("k", b"two", if_version=v1)
    assert proxy.requests[-1].headers["if-match"] == v1
    with pytest.raises(UnsupportedOperation):
        await storage.delete("k", if_version=v1)
    ceph = await via_proxy(flavor="ceph")
    assert ceph.flavor == "ceph" and not ceph.supports_conditional_delete
    ceph.supports_conditional_delete = True
    assert ceph.supports_conditional_delete
