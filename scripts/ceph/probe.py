"""Probe an S3-protocol server for the behaviour ssshelf's S3 backend relies on.

Raw botocore, no ssshelf code: run it against the Ceph cluster that
``scripts/ceph/start.sh DIR`` starts (``source DIR/env`` first) or any other
endpoint given by the same SSSHELF_TEST_S3_* variables::

    .venv/bin/python scripts/ceph/probe.py

Prints one line a finding; docs/ceph.md records what Ceph answered.
"""

from __future__ import annotations

import os
import sys
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import botocore.session
from botocore.config import Config
from botocore.exceptions import ClientError

ENDPOINT = os.environ["SSSHELF_TEST_S3_ENDPOINT"]
ACCESS = os.environ["SSSHELF_TEST_S3_ACCESS_KEY"]
SECRET = os.environ["SSSHELF_TEST_S3_SECRET_KEY"]
REGION = os.environ.get("SSSHELF_TEST_S3_REGION", "us-east-1")


def client(access: str = ACCESS, secret: str = SECRET, **config: Any) -> Any:
    cfg = Config(
        s3={"addressing_style": "path"},
        retries={"max_attempts": 1},
        max_pool_connections=32,
        **config,
    )
    c = botocore.session.get_session().create_client(
        "s3",
        endpoint_url=ENDPOINT,
        region_name=REGION,
        aws_access_key_id=access,
        aws_secret_access_key=secret,
        config=cfg,
    )
    c.meta.events.register("after-call.s3", remember_body)
    return c


def with_headers(c: Any, op: str, headers: dict[str, str]) -> Callable[[], None]:
    """Add raw headers to every ``op`` request of ``c``; returns the remover."""

    def add(request: Any, **_: Any) -> None:
        for name, value in headers.items():
            request.headers[name] = value

    event = f"before-sign.s3.{op}"
    c.meta.events.register(event, add)
    return lambda: c.meta.events.unregister(event, add)


#: The raw body of the last error response any client received.
LAST_BODY: list[bytes] = [b""]


def remember_body(http_response: Any, **_: Any) -> None:
    if http_response.status_code >= 300:  # never consume a successful GetObject's stream
        LAST_BODY[0] = http_response.content


def outcome(fn: Callable[[], Any]) -> str:
    """``ok`` or ``HTTP <status> <Code>: <Message>`` for one call."""
    try:
        fn()
        return "ok"
    except ClientError as e:
        r = e.response
        status = r["ResponseMetadata"].get("HTTPStatusCode")
        err = r.get("Error", {})
        return f"HTTP {status} {err.get('Code')!s}: {err.get('Message', '')!s}".rstrip(": ")


def raw(fn: Callable[[], Any]) -> str:
    """``outcome`` plus the raw response body (for error bodies)."""
    LAST_BODY[0] = b""
    result = outcome(fn)
    if result == "ok":
        return result
    return f"{result}\n{'':<59}body: {LAST_BODY[0].decode(errors='replace')}"


def show(name: str, value: object) -> None:
    print(f"{name:<58} {value}")


def main() -> int:
    s3 = client()
    bucket = f"probe-{uuid.uuid4().hex[:12]}"
    s3.create_bucket(Bucket=bucket)
    try:
        probe(s3, bucket)
    finally:
        keys = [
            o["Key"]
            for p in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket)
            for o in p.get("Contents", [])
        ]
        for k in keys:
            s3.delete_object(Bucket=bucket, Key=k)
        s3.delete_bucket(Bucket=bucket)
    return 0


def probe(s3: Any, bucket: str) -> None:
    b = bucket
    r = s3.put_object(Bucket=b, Key="k", Body=b"one")
    headers = r["ResponseMetadata"]["HTTPHeaders"]
    etag1 = r["ETag"]
    show("Server header on PutObject", headers.get("server"))
    show("ETag as returned (quoted?)", etag1)
    show("x-amz-request-id", headers.get("x-amz-request-id"))
    got = s3.get_object(Bucket=b, Key="k")
    show("GetObject body / ETag", (got["Body"].read(), got["ETag"]))
    show(
        "empty-body put+get",
        outcome(lambda: s3.put_object(Bucket=b, Key="empty", Body=b""))
        + " / "
        + repr(s3.get_object(Bucket=b, Key="empty")["Body"].read()),
    )
    show("GetObject missing key", raw(lambda: s3.get_object(Bucket=b, Key="nope")))
    show("HeadObject missing key", outcome(lambda: s3.head_object(Bucket=b, Key="nope")))

    # If-None-Match: *
    show(
        "PUT If-None-Match * on new key",
        outcome(lambda: s3.put_object(Bucket=b, Key="new", Body=b"x", IfNoneMatch="*")),
    )
    seen: dict[str, Any] = {}
    hook = lambda http_response, **_: seen.update(http_response.headers)  # noqa: E731
    s3.meta.events.register("after-call.s3.PutObject", hook)
    show(
        "PUT If-None-Match * on existing key",
        raw(lambda: s3.put_object(Bucket=b, Key="new", Body=b"y", IfNoneMatch="*")),
    )
    s3.meta.events.unregister("after-call.s3.PutObject", hook)
    show("  its response headers", {k: v for k, v in seen.items() if k.lower() != "date"})
    show("  body after failed create", s3.get_object(Bucket=b, Key="new")["Body"].read())

    # If-Match on PUT, quoted vs unquoted.
    bare1 = etag1.strip('"')
    s3.put_object(Bucket=b, Key="k", Body=b"one")
    show(
        "PUT If-Match quoted current ETag",
        outcome(lambda: s3.put_object(Bucket=b, Key="k", Body=b"two", IfMatch=etag1)),
    )
    s3.put_object(Bucket=b, Key="k", Body=b"one")
    show(
        "PUT If-Match unquoted current ETag",
        outcome(lambda: s3.put_object(Bucket=b, Key="k", Body=b"two", IfMatch=bare1)),
    )
    show("  body now", s3.get_object(Bucket=b, Key="k")["Body"].read())
    show(
        "PUT If-Match unquoted stale ETag",
        outcome(lambda: s3.put_object(Bucket=b, Key="k", Body=b"three", IfMatch=bare1)),
    )
    show(
        "PUT If-Match quoted stale ETag",
        outcome(lambda: s3.put_object(Bucket=b, Key="k", Body=b"three", IfMatch=etag1)),
    )
    show(
        "PUT If-Match on missing key",
        outcome(lambda: s3.put_object(Bucket=b, Key="missing", Body=b"x", IfMatch=bare1)),
    )
    show("  missing key exists after?", outcome(lambda: s3.head_object(Bucket=b, Key="missing")))
    show(
        "PUT If-Match garbage value",
        outcome(lambda: s3.put_object(Bucket=b, Key="k", Body=b"x", IfMatch="some-version")),
    )

    # If-Match on DELETE.
    s3.put_object(Bucket=b, Key="d", Body=b"one")
    show(
        "DELETE If-Match stale (botocore IfMatch param)",
        outcome(lambda: s3.delete_object(Bucket=b, Key="d", IfMatch='"0000"')),
    )
    show("  key still there?", outcome(lambda: s3.head_object(Bucket=b, Key="d")))
    s3.put_object(Bucket=b, Key="d", Body=b"one")
    show(
        "DELETE If-Match stale unquoted",
        outcome(lambda: s3.delete_object(Bucket=b, Key="d", IfMatch="0000")),
    )
    show("  key still there?", outcome(lambda: s3.head_object(Bucket=b, Key="d")))
    show(
        "DELETE If-Match on missing key",
        outcome(lambda: s3.delete_object(Bucket=b, Key="gone", IfMatch="0000")),
    )
    show(
        "DELETE missing key (unconditional)",
        outcome(lambda: s3.delete_object(Bucket=b, Key="gone")),
    )

    # Races: 16 creators with If-None-Match *, 16 updaters with one If-Match.
    def create(i: int) -> str:
        return outcome(
            lambda: s3.put_object(Bucket=b, Key="race", Body=str(i).encode(), IfNoneMatch="*")
        )

    with ThreadPoolExecutor(16) as pool:
        results = list(pool.map(create, range(16)))
    show("16 concurrent If-None-Match * creators", summarize(results))
    base = s3.put_object(Bucket=b, Key="race2", Body=b"base")["ETag"].strip('"')

    def update(i: int) -> str:
        return outcome(
            lambda: s3.put_object(Bucket=b, Key="race2", Body=f"u{i}".encode(), IfMatch=base)
        )

    with ThreadPoolExecutor(16) as pool:
        results = list(pool.map(update, range(16)))
    show("16 concurrent If-Match (unquoted) updaters", summarize(results))

    # Errors.
    show(
        "NoSuchBucket (GetObject)", raw(lambda: s3.get_object(Bucket="no-such-bucket-zz", Key="k"))
    )
    show(
        "NoSuchBucket (PutObject)",
        outcome(lambda: s3.put_object(Bucket="no-such-bucket-zz", Key="k", Body=b"")),
    )
    show(
        "NoSuchBucket (ListObjectsV2)",
        outcome(lambda: s3.list_objects_v2(Bucket="no-such-bucket-zz")),
    )
    show("unknown access key", raw(lambda: client(access="nobody").list_objects_v2(Bucket=b)))
    show("wrong secret key", raw(lambda: client(secret="wrong").list_objects_v2(Bucket=b)))
    show(
        "wrong secret key on GetObject",
        outcome(lambda: client(secret="wrong").get_object(Bucket=b, Key="k")),
    )
    show("CreateBucket that exists (own)", outcome(lambda: s3.create_bucket(Bucket=b)))

    # Listing.
    keys = [
        "p/b",
        "p/a",
        "p/é",
        "p/Z",
        "p/a/b",
        "p/a-",
        "q/a",
        "o/z",
        "p/\U0001f600",
        "p/\uffff",
        "p/\ufb01",
    ]
    for k in keys:
        s3.put_object(Bucket=b, Key=k, Body=b"")
    listed = [o["Key"] for o in s3.list_objects_v2(Bucket=b, Prefix="p/").get("Contents", [])]
    utf8 = sorted((k for k in keys if k.startswith("p/")), key=lambda k: k.encode())
    utf16 = sorted((k for k in keys if k.startswith("p/")), key=lambda k: k.encode("utf-16-be"))
    show("ListObjectsV2 unicode order", [ascii(k) for k in listed])
    show("  == UTF-8 byte order?", listed == utf8)
    show("  == UTF-16 code-unit order?", listed == utf16)
    r = s3.list_objects_v2(Bucket=b, Prefix="p/", StartAfter="p/a")
    show("StartAfter=p/a", [ascii(o["Key"]) for o in r.get("Contents", [])][:4])
    r = s3.list_objects_v2(Bucket=b, Prefix="p/", StartAfter="a")
    show("StartAfter before the prefix (a)", len(r.get("Contents", [])))
    r = s3.list_objects_v2(Bucket=b, Prefix="p/", StartAfter="z")
    show("StartAfter after the prefix (z)", len(r.get("Contents", [])))
    r = s3.list_objects_v2(Bucket=b, Prefix="p/", StartAfter="p/\U0001f600")
    show("StartAfter = last key", len(r.get("Contents", [])))
    for k in ["e/0", "e/1", "e/2", "e/3"]:
        s3.put_object(Bucket=b, Key=k, Body=b"")
    r = s3.list_objects_v2(Bucket=b, Prefix="e/", MaxKeys=4)
    show("MaxKeys=4 on exactly 4 keys: IsTruncated", r["IsTruncated"])
    r = s3.list_objects_v2(Bucket=b, Prefix="e/", MaxKeys=2)
    show("MaxKeys=2 of 4: IsTruncated / token?", (r["IsTruncated"], "NextContinuationToken" in r))
    r2 = s3.list_objects_v2(
        Bucket=b, Prefix="e/", MaxKeys=2, ContinuationToken=r["NextContinuationToken"]
    )
    show("  next page via ContinuationToken", [o["Key"] for o in r2.get("Contents", [])])
    show("MaxKeys=1000 accepted", outcome(lambda: s3.list_objects_v2(Bucket=b, MaxKeys=1000)))

    odd = [
        "with space",
        "uni/cöde/ключ/鍵",
        "plus+sign",
        "percent%20sign",
        "colon:semi;comma,",
        "enc/sa!sb!/i11/x)00zFF!/pk!w123",
        "tilde~and*star'quote(paren)",
    ]
    bad = []
    for k in odd:
        s3.put_object(Bucket=b, Key=k, Body=k.encode())
        ls = [o["Key"] for o in s3.list_objects_v2(Bucket=b, Prefix=k).get("Contents", [])]
        body = s3.get_object(Bucket=b, Key=k)["Body"].read()
        if ls != [k] or body != k.encode():
            bad.append((k, ls, body))
    show("odd keys round-trip (put/list/get)", bad if bad else "ok")
    for n in (1024, 1025):
        show(
            f"{n}-byte key put",
            outcome(lambda n=n: s3.put_object(Bucket=b, Key="m" * n, Body=b"x")),
        )
    show(
        "1024-byte key listed",
        [len(o["Key"]) for o in s3.list_objects_v2(Bucket=b, Prefix="mmm").get("Contents", [])],
    )

    # DeleteObjects (botocore sends a checksum header rather than Content-MD5 by default).
    for i in range(3):
        s3.put_object(Bucket=b, Key=f"dm/{i}", Body=b"x")
    show(
        "DeleteObjects (default botocore checksums)",
        outcome(
            lambda: s3.delete_objects(
                Bucket=b,
                Delete={"Objects": [{"Key": "dm/0"}, {"Key": "dm/missing"}], "Quiet": True},
            )
        ),
    )
    r = s3.delete_objects(Bucket=b, Delete={"Objects": [{"Key": "dm/1"}], "Quiet": False})
    show("  non-quiet result", {k: v for k, v in r.items() if k != "ResponseMetadata"})
    legacy = client(request_checksum_calculation="when_required")
    show(
        "DeleteObjects (checksum when_required)",
        outcome(
            lambda: legacy.delete_objects(
                Bucket=b, Delete={"Objects": [{"Key": "dm/2"}], "Quiet": True}
            )
        ),
    )
    show(
        "remaining dm/ keys",
        [o["Key"] for o in s3.list_objects_v2(Bucket=b, Prefix="dm/").get("Contents", [])],
    )

    # Keys with characters XML 1.0 cannot carry: fine in a URL, not in a
    # DeleteObjects body.
    for k in ["x/\uffff", "x/\x01"]:
        s3.put_object(Bucket=b, Key=k, Body=b"")
        show(
            f"DeleteObjects with key {k!a}",
            raw(
                lambda k=k: s3.delete_objects(
                    Bucket=b, Delete={"Objects": [{"Key": k}], "Quiet": True}
                )
            ),
        )
        show(f"  DeleteObject {k!a}", outcome(lambda k=k: s3.delete_object(Bucket=b, Key=k)))
    head = s3.head_bucket(Bucket=b)["ResponseMetadata"]["HTTPHeaders"]
    show("HeadBucket headers", {k: v for k, v in head.items() if k != "date"})
    show("CreateBucket 2-letter name", outcome(lambda: s3.create_bucket(Bucket="ab")))

    # Two puts of identical bytes share an ETag (MD5).
    e1 = s3.put_object(Bucket=b, Key="same", Body=b"same")["ETag"]
    e2 = s3.put_object(Bucket=b, Key="same", Body=b"same")["ETag"]
    show("identical bytes give identical ETag", e1 == e2)
    remove = with_headers(s3, "PutObject", {"If-Match": "*"})
    show(
        "PUT If-Match * on existing key",
        outcome(lambda: s3.put_object(Bucket=b, Key="same", Body=b"x")),
    )
    show(
        "PUT If-Match * on missing key",
        outcome(lambda: s3.put_object(Bucket=b, Key="nobody-here", Body=b"x")),
    )
    remove()


def summarize(results: list[str]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for r in results:
        counts[r] = counts.get(r, 0) + 1
    return counts


if __name__ == "__main__":
    sys.exit(main())
