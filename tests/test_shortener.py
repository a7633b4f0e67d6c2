"""The URL shortener through its ASGI app (httpx ASGITransport, no network)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar

import httpx
import pytest

from examples.url_shortener import create_app
from examples.url_shortener import links as links_module
from examples.url_shortener.app import MAX_BODY
from examples.url_shortener.manager import LinkManager
from ssshelf import Collection
from ssshelf.errors import StorageUnavailable
from ssshelf.storages.base import Storage
from ssshelf.storages.inmemory import InMemoryStorage
from ssshelf.storages.sqlite import SQLiteStorage
from ssshelf.storages.wrapper import StorageWrapper
from ssshelf.testing import CountingStorage

T = TypeVar("T")
BASE = "http://127.0.0.1:8000"
Client = httpx.AsyncClient


def client_for(manager: LinkManager, **kwargs: Any) -> Client:
    app = create_app(manager, **kwargs)
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=BASE)


@pytest.fixture
async def client(local_storage: Storage) -> AsyncIterator[Client]:
    async with client_for(LinkManager(local_storage)) as client:
        yield client


async def shorten(client: Client, url: str, alias: str | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {"url": url}
    if alias is not None:
        body["alias"] = alias
    response = await client.post("/api/links", json=body)
    assert response.status_code == 201, response.text
    link: dict[str, Any] = response.json()
    return link


# -- creating links ------------------------------------------------------------


async def test_creating_a_link_returns_its_short_url(client: Client) -> None:
    response = await client.post("/api/links", json={"url": "https://example.com/a?b=c#d"})
    assert response.status_code == 201
    link = response.json()
    assert len(link["code"]) == 7 and link["alias"] is None
    assert link["short_url"] == f"{BASE}/{link['code']}"
    assert link["url"] == "https://example.com/a?b=c#d"
    assert (link["clicks"], link["last_click_at"]) == (0, None)
    assert response.headers["location"] == f"/api/links/{link['code']}"


async def test_a_custom_alias_is_the_code_and_is_unique(client: Client) -> None:
    link = await shorten(client, "https://example.com/docs", alias="docs")
    assert (link["code"], link["short_url"]) == ("docs", f"{BASE}/docs")
    again = await client.post("/api/links", json={"url": "https://other.example", "alias": "docs"})
    assert again.status_code == 409
    assert again.json() == {"error": "The alias 'docs' is already taken; choose another."}
    stored = (await client.get("/api/links/docs")).json()
    assert stored["url"] == "https://example.com/docs", "the first link is untouched"


async def test_an_alias_cannot_take_over_a_generated_code(client: Client) -> None:
    link = await shorten(client, "https://example.com/first")
    taken = await client.post(
        "/api/links", json={"url": "https://evil.example", "alias": link["code"]}
    )
    assert taken.status_code == 409
    assert (await client.get(f"/{link['code']}")).headers["location"] == "https://example.com/first"


async def test_a_generated_code_never_equals_an_alias(
    client: Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    await shorten(client, "https://example.com/alias", alias="aaaaaaa")
    codes = iter("a" * 7 + "b" * 7)
    monkeypatch.setattr(links_module.secrets, "choice", lambda alphabet: next(codes))
    link = await shorten(client, "https://example.com/generated")
    assert link["code"] == "bbbbbbb"


async def test_a_generated_code_that_exists_is_drawn_again(
    client: Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    codes = iter("c" * 7 + "c" * 7 + "d" * 7)
    monkeypatch.setattr(links_module.secrets, "choice", lambda alphabet: next(codes))
    assert (await shorten(client, "https://example.com/1"))["code"] == "ccccccc"
    assert (await shorten(client, "https://example.com/2"))["code"] == "ddddddd"


async def test_hosts_and_paths_are_stored_as_ascii(client: Client) -> None:
    link = await shorten(client, "  HTTPS://bücher.example:8443/straße?q=ä  ")
    assert link["url"] == "https://xn--bcher-kva.example:8443/stra%C3%9Fe?q=%C3%A4"
    link = await shorten(client, "http://[::1]:8080/x")
    assert link["url"] == "http://[::1]:8080/x"


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"url": "javascript:alert(1)"}, "Only http:// and https:// links"),
        ({"url": "ftp://example.com/f"}, "Only http:// and https:// links"),
        ({"url": "data:text/html,<script>"}, "Only http:// and https:// links"),
        ({"url": "//example.com"}, "Only http:// and https:// links"),
        ({"url": "https://"}, "no host name"),
        ({"url": "https://user:pw@example.com"}, "user name or password"),
        ({"url": "https://example.com\\@evil.com"}, "user name or password"),
        ({"url": "https://exa_mple.com/"}, "invalid host name"),
        ({"url": "https://example.com:99999/"}, "invalid host or port"),
        ({"url": "https://example.com/a b"}, "spaces or control characters"),
        ({"url": "https://example.com/\r\nSet-Cookie: x"}, "spaces or control characters"),
        ({"url": "https://example.com/" + "a" * 2048}, "too long"),
        ({"url": "https://example.com/" + "é" * 700}, "too long"),
        ({"url": ""}, "Enter the URL"),
        ({"url": 42}, "Enter the URL"),
        ({}, "Enter the URL"),
        ({"url": "https://example.com", "alias": "a"}, "An alias is 3-40"),
        ({"url": "https://example.com", "alias": "has space"}, "An alias is 3-40"),
        ({"url": "https://example.com", "alias": "-dash"}, "An alias is 3-40"),
        ({"url": "https://example.com", "alias": "x" * 41}, "An alias is 3-40"),
        ({"url": "https://example.com", "alias": "API"}, "is reserved"),
        ({"url": "https://example.com", "alias": 7}, "must be text"),
        (["https://example.com"], "Send a JSON object"),
    ],
)
async def test_unsafe_or_malformed_input_is_refused(
    client: Client, body: object, message: str
) -> None:
    response = await client.post("/api/links", json=body)
    assert response.status_code == 400
    assert message in response.json()["error"]
    assert (await client.get("/api/links")).json()["links"] == []


async def test_invalid_json_oversized_and_cross_site_requests_are_refused(client: Client) -> None:
    bad = await client.post(
        "/api/links", content=b"{nope", headers={"content-type": "application/json"}
    )
    assert (bad.status_code, bad.json()) == (400, {"error": "Invalid JSON."})
    big = await client.post("/api/links", content=b"x" * (MAX_BODY + 1))
    assert big.status_code == 413

    async def chunks() -> AsyncIterator[bytes]:
        for _ in range(MAX_BODY // 1024 + 2):
            yield b"x" * 1024

    streamed = await client.post("/api/links", content=chunks())
    assert streamed.status_code == 413, "a body without Content-Length is cut off too"
    cross = await client.post(
        "/api/links",
        json={"url": "https://example.com"},
        headers={"origin": "https://evil.example"},
    )
    assert cross.status_code == 403
    same = await client.post(
        "/api/links", json={"url": "https://example.com"}, headers={"origin": BASE}
    )
    assert same.status_code == 201


@pytest.mark.parametrize(
    "url",
    [
        f"{BASE}/docs",
        "http://127.0.0.1:8000",
        "HTTPS://127.0.0.1:8000/api/links?x=1",
    ],
)
async def test_a_link_to_the_shortener_itself_is_refused(client: Client, url: str) -> None:
    response = await client.post("/api/links", json={"url": url})
    assert response.status_code == 400
    assert response.json()["error"] == (
        "That link points back to this shortener (127.0.0.1); "
        "shorten the address it leads to instead."
    )
    form = await client.post("/", data={"url": url})
    assert form.status_code == 400 and "points back to this shortener" in form.text
    assert (await client.get("/api/links")).json()["links"] == []


async def test_the_public_host_counts_as_the_shortener_too(local_storage: Storage) -> None:
    async with client_for(LinkManager(local_storage), public_url="https://sho.rt") as client:
        for url in ("https://sho.rt/abc", "http://SHO.RT/", f"{BASE}/x"):
            response = await client.post("/api/links", json={"url": url})
            assert response.status_code == 400, url
        other = ["http://127.0.0.1:3000/", "https://sho.rt.example/", "https://example.com/"]
        for url in other:  # another port, another host: not the shortener
            assert (await shorten(client, url))["url"] == url


async def test_a_stored_link_to_the_shortener_is_not_followed(local_storage: Storage) -> None:
    manager = LinkManager(local_storage)
    await manager.add_item(
        {
            "pk": "selfish",
            "url": f"{BASE}/selfish",
            "alias": None,
            "created_at": "2024-01-01T00:00:00+00:00",
            "clicks": 0,
        }
    )
    async with client_for(manager) as client:
        assert (await client.get("/selfish")).status_code == 404


async def test_aliases_ignore_case_and_keep_their_spelling(client: Client) -> None:
    link = await shorten(client, "https://example.com/mine", alias="Mine")
    assert (link["code"], link["alias"], link["short_url"]) == ("Mine", "Mine", f"{BASE}/Mine")
    for spelling in ("Mine", "mine", "MINE", "mInE"):
        response = await client.get(f"/{spelling}")
        assert (response.status_code, response.headers["location"]) == (302, link["url"])
        assert (await client.get(f"/api/links/{spelling}")).json()["alias"] == "Mine"
    taken = await client.post("/api/links", json={"url": "https://evil.example", "alias": "MINE"})
    assert taken.status_code == 409
    assert taken.json() == {"error": "The alias 'MINE' is already taken; choose another."}
    assert (await client.get("/api/links/mine")).json()["clicks"] == 4
    page = await client.get("/")
    assert f'<a href="{BASE}/Mine">Mine</a>' in page.text


async def test_a_generated_code_never_equals_an_alias_in_any_case(
    client: Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    await shorten(client, "https://example.com/alias", alias="aaaaaaa")
    codes = iter("A" * 7 + "b" * 7)
    monkeypatch.setattr(links_module.secrets, "choice", lambda alphabet: next(codes))
    link = await shorten(client, "https://example.com/generated")
    assert link["code"] == "bbbbbbb"


async def test_aliases_stored_with_their_case_still_resolve(local_storage: Storage) -> None:
    """Links stored while aliases kept their case: found as spelled, and by any
    spelling once ``reindex by_alias`` has moved them to the lower-cased form."""

    class CaseKept(Collection):
        unique = True

        def key(self, item: dict[str, Any]) -> str | None:
            alias: str | None = item.get("alias")
            return alias

    class Before(LinkManager):
        by_alias = CaseKept()

    await Before(local_storage).add_item(
        {
            "pk": "k7Qx2mZ",
            "url": "https://example.com/old",
            "alias": "OldOne",
            "created_at": "2024-01-01T00:00:00+00:00",
            "clicks": 0,
            "last_click_at": None,
        }
    )
    manager = LinkManager(local_storage)
    async with client_for(manager) as client:
        assert (await client.get("/api/links/OldOne")).json()["alias"] == "OldOne"
        assert (await client.get("/api/links/oldone")).status_code == 404  # held as spelled
        report = await manager.reindex("by_alias")
        assert (report.reindexed, report.failed) == (1, 0)
        for spelling in ("oldone", "OLDONE", "OldOne"):
            response = await client.get(f"/{spelling}")
            assert response.headers["location"] == "https://example.com/old", spelling
        assert (await client.get("/api/links/OldOne")).json()["clicks"] == 3
        taken = await client.post(
            "/api/links", json={"url": "https://x.example", "alias": "oldONE"}
        )
        assert taken.status_code == 409
    assert (await manager.check(grace=0)).ok


# -- following links -------------------------------------------------------------


async def test_following_a_link_redirects_and_counts_the_click(client: Client) -> None:
    link = await shorten(client, "https://example.com/target", alias="tgt")
    generated = await shorten(client, "https://example.com/other")
    for code in ("tgt", "tgt", generated["code"]):
        response = await client.get(f"/{code}")
        assert response.status_code == 302
        assert response.headers["cache-control"] == "no-store"
    assert (await client.get("/tgt")).headers["location"] == link["url"]
    stats = (await client.get("/api/links/tgt")).json()
    assert stats["clicks"] == 3 and stats["last_click_at"] is not None
    assert (await client.get(f"/api/links/{generated['code']}")).json()["clicks"] == 1


async def test_head_requests_do_not_count(client: Client) -> None:
    await shorten(client, "https://example.com/t", alias="headless")
    response = await client.head("/headless")
    assert (response.status_code, response.headers["location"]) == (302, "https://example.com/t")
    assert (await client.get("/api/links/headless")).json()["clicks"] == 0


@pytest.mark.parametrize("code", ["nope", "%3Cscript%3E", "a.b", "x" * 41])
async def test_unknown_or_invalid_codes_get_an_escaped_404(client: Client, code: str) -> None:
    response = await client.get(f"/{code}")
    assert response.status_code == 404
    assert "No such link" in response.text
    assert "<script>" not in response.text
    assert (await client.get(f"/api/links/{code}")).status_code == 404


async def test_only_stored_targets_that_still_validate_are_redirected_to(
    local_storage: Storage,
) -> None:
    manager = LinkManager(local_storage)
    await manager.add_item(
        {
            "pk": "planted",
            "url": "javascript:alert(1)",
            "alias": None,
            "created_at": "2024-01-01T00:00:00+00:00",
            "clicks": 0,
        }
    )
    async with client_for(manager) as client:
        assert (await client.get("/planted")).status_code == 404


# -- the recent list ---------------------------------------------------------------


async def test_recent_links_page_newest_first(client: Client) -> None:
    made = [await shorten(client, f"https://example.com/{n}") for n in range(25)]
    first = (await client.get("/api/links", params={"limit": 10})).json()
    assert [x["url"] for x in first["links"]] == [m["url"] for m in made[::-1][:10]]
    seen, after = list(first["links"]), first["after"]
    while after:
        page = (await client.get("/api/links", params={"limit": 10, "after": after})).json()
        seen += page["links"]
        after = page["after"]
    assert [x["code"] for x in seen] == [m["code"] for m in reversed(made)]


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"limit": "0"}, "limit must be between 1 and 100"),
        ({"limit": "101"}, "limit must be between 1 and 100"),
        ({"limit": "ten"}, "limit must be a number"),
        ({"after": "has space"}, "cursor is not valid"),
        ({"after": "x" * 1025}, "cursor is not valid"),
        ({"after": "zzz"}, "That page cursor is not one of ours"),
        ({"after": "Utvtpxuu/k7Qx2mZ"}, "That page cursor is not one of ours"),
        ({"after": "s1!/k7Qx2mZ!00"}, "That page cursor is not one of ours"),  # not a time
    ],
)
async def test_bad_paging_parameters_are_400(
    client: Client, params: dict[str, str], message: str
) -> None:
    response = await client.get("/api/links", params=params)
    assert response.status_code == 400 and message in response.json()["error"]


# -- the HTML page ---------------------------------------------------------------


async def test_the_form_creates_a_link_and_shows_it_with_a_copy_button(client: Client) -> None:
    posted = await client.post("/", data={"url": "https://example.com/<b>&", "alias": "form-link"})
    assert (posted.status_code, posted.headers["location"]) == (303, "/?created=form-link")
    page = await client.get(posted.headers["location"])
    assert page.status_code == 200
    assert f'<a id="short-link" href="{BASE}/form-link">{BASE}/form-link</a>' in page.text
    assert f'data-copy="{BASE}/form-link"' in page.text
    assert "https://example.com/&lt;b&gt;&amp;" in page.text
    assert "<b>" not in page.text
    assert '<table id="recent">' in page.text


async def test_form_errors_keep_what_was_typed(client: Client) -> None:
    bad = await client.post("/", data={"url": 'ftp://x"><script>', "alias": "ok-alias"})
    assert bad.status_code == 400
    assert "Only http:// and https:// links" in bad.text
    assert 'value="ftp://x&quot;&gt;&lt;script&gt;"' in bad.text
    assert 'value="ok-alias"' in bad.text
    await shorten(client, "https://example.com", alias="taken")
    taken = await client.post("/", data={"url": "https://example.org", "alias": "taken"})
    assert taken.status_code == 409 and "already taken" in taken.text
    assert "<script>" not in bad.text


async def test_form_refuses_cross_site_oversized_and_non_utf8_posts(client: Client) -> None:
    cross = await client.post(
        "/", data={"url": "https://example.com"}, headers={"origin": "https://evil.example"}
    )
    assert cross.status_code == 403
    opaque = await client.post("/", data={"url": "https://example.com"}, headers={"origin": "null"})
    assert opaque.status_code == 403
    same = await client.post("/", data={"url": "https://example.com"}, headers={"origin": BASE})
    assert same.status_code == 303
    big = await client.post("/", content=b"url=" + b"a" * MAX_BODY)
    assert big.status_code == 413 and "too large" in big.text
    binary = await client.post(
        "/", content=b"url=\xff", headers={"content-type": "application/x-www-form-urlencoded"}
    )
    assert binary.status_code == 400 and "not valid UTF-8" in binary.text


async def test_the_page_lists_recent_links_with_a_pager(client: Client) -> None:
    empty = await client.get("/")
    assert "No links yet" in empty.text
    for n in range(21):
        await shorten(client, f"https://example.com/{n}")
    page = await client.get("/")
    assert page.text.count("<tr><td>") == 20
    assert "https://example.com/20" in page.text and "https://example.com/0<" not in page.text
    older = page.text.split('<a href="/?after=', 1)[1].split('"', 1)[0]
    second = await client.get(f"/?after={older}")
    assert second.text.count("<tr><td>") == 1
    assert "https://example.com/0" in second.text and "« Newest" in second.text
    assert (await client.get("/?after=bad%20cursor")).status_code == 400
    foreign = await client.get("/?after=zzz")
    assert foreign.status_code == 400 and "not one of ours" in foreign.text
    assert "created" not in (await client.get("/?created=nothing-here")).text.split("<h2>")[0]


async def test_pages_carry_security_headers(client: Client) -> None:
    for path in ("/", "/api/links", "/static/app.js", "/missing-code"):
        response = await client.get(path)
        assert "script-src 'self'" in response.headers["content-security-policy"]
        assert response.headers["x-content-type-options"] == "nosniff"
        assert response.headers["x-frame-options"] == "DENY"
        assert response.headers["referrer-policy"] == "same-origin", "no-referrer nulls Origin"
    assert (await client.get("/healthz")).text == "ok"


async def test_public_url_sets_the_short_link_base(local_storage: Storage) -> None:
    async with client_for(LinkManager(local_storage), public_url="https://sho.rt") as client:
        assert (await shorten(client, "https://example.com"))["short_url"].startswith(
            "https://sho.rt/"
        )


# -- failures and lifecycle --------------------------------------------------------


class Unavailable(StorageWrapper):
    async def _call(self, kind: str, key: str | None, request: Callable[[], Awaitable[T]]) -> T:
        raise StorageUnavailable("store down", operation=kind, key=key)


async def test_a_store_outage_is_a_503_not_a_crash() -> None:
    async with client_for(LinkManager(Unavailable(InMemoryStorage()))) as client:
        response = await client.post("/api/links", json={"url": "https://example.com"})
        assert response.status_code == 503
        assert response.json() == {"error": "The link store is unavailable; try again shortly."}
        assert (await client.get("/abcdefg")).status_code == 503


async def test_the_app_owns_and_closes_a_store_it_opened(tmp_path: Path) -> None:
    app = create_app(url=f"sqlite:///{tmp_path / 'links.db'}")
    transport = httpx.ASGITransport(app=app)
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=transport, base_url=BASE) as client,
    ):
        await shorten(client, "https://example.com", alias="kept")
    reopened = LinkManager(SQLiteStorage(tmp_path / "links.db"))
    async with reopened:
        assert (await reopened.by_alias.get_item("kept"))["url"] == "https://example.com"


# -- concurrency: no lost clicks -------------------------------------------------------


def second_connection(storage: Storage, request: pytest.FixtureRequest) -> Storage | None:
    """Another connection to the same store, as a second process would have."""
    if isinstance(storage, SQLiteStorage):
        return SQLiteStorage(storage.path)
    if type(storage).__name__ == "S3Storage":
        endpoint = request.getfixturevalue("s3_endpoint")
        other: Storage = endpoint.storage(storage.bucket)  # type: ignore[attr-defined]
        return other
    return None  # in memory: the apps share the one store


async def test_100_concurrent_redirects_count_100_clicks(storage: Storage) -> None:
    counting = CountingStorage(storage)
    async with client_for(LinkManager(counting)) as client:
        link = await shorten(client, "https://example.com/hot", alias="hot")
        counting.reset()
        responses = await asyncio.gather(*(client.get("/hot") for _ in range(100)))
        assert {r.status_code for r in responses} == {302}
        assert (await client.get("/api/links/hot")).json()["clicks"] == 100
        assert counting.counts["put"] < 20, "clicks in flight together share a write"
        assert link["clicks"] == 0


async def test_two_app_processes_lose_no_clicks(
    storage: Storage, request: pytest.FixtureRequest
) -> None:
    other = second_connection(storage, request)
    first, second = client_for(LinkManager(storage)), client_for(LinkManager(other or storage))
    try:
        link = await shorten(first, "https://example.com/shared")
        code = link["code"]
        responses = await asyncio.gather(
            *(client.get(f"/{code}") for _ in range(50) for client in (first, second))
        )
        assert [r.status_code for r in responses] == [302] * 100
        stats = (await second.get(f"/api/links/{code}")).json()
        assert stats["clicks"] == 100
    finally:
        await first.aclose()
        await second.aclose()
        if other is not None:
            await other.close()


async def test_clicks_on_a_link_removed_meanwhile_are_404(local_storage: Storage) -> None:
    manager = LinkManager(local_storage)
    async with client_for(manager) as client:
        await shorten(client, "https://example.com/gone", alias="gone")
        pk = (await manager.by_alias.get_item("gone"))["pk"]
        real_get = manager.by_alias.get_item

        async def then_remove(value: Any) -> Any:
            found = await real_get(value)
            await manager.remove_item(pk)
            return found

        manager.by_alias.get_item = then_remove  # type: ignore[method-assign]
        assert (await client.get("/gone")).status_code == 404
        manager.by_alias.get_item = real_get  # type: ignore[method-assign]


async def test_aliases_are_remembered_within_bounds(local_storage: Storage) -> None:
    counting = CountingStorage(local_storage)
    manager = LinkManager(counting)
    app = create_app(manager)
    app.state.links.alias_cache_size = 2
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url=BASE) as client:
        for alias in ("one", "two", "three"):
            await shorten(client, f"https://example.com/{alias}", alias=alias)
            await client.get(f"/{alias}")
        counting.reset()
        assert (await client.get("/three")).status_code == 302
        assert counting.total == 2, "a remembered alias: read and write the item"
        counting.reset()
        assert (await client.get("/one")).status_code == 302
        assert counting.total == 5, "forgotten (only two are kept): looked up again"
        pk = (await manager.by_alias.get_item("two"))["pk"]
        await manager.remove_item(pk)
        assert (await client.get("/two")).status_code == 404
        assert (await client.get("/two")).status_code == 404


def test_links_json_round_trips_through_the_cli_export(tmp_path: Path) -> None:
    """The shortener's manager works with the ssshelf CLI (same store, same classes)."""
    from ssshelf.cli import main

    url = f"sqlite:///{tmp_path / 'links.db'}"

    async def seed() -> None:
        async with LinkManager(url) as manager, client_for(manager) as client:
            await shorten(client, "https://example.com/cli", alias="cli")

    asyncio.run(seed())
    out = tmp_path / "links.jsonl"
    spec = "examples.url_shortener.manager:LinkManager"
    assert main(["export", "--url", url, "--manager", spec, "-o", str(out)]) == 0
    exported = [json.loads(line) for line in out.read_text().splitlines()]
    assert [(x["alias"], x["url"]) for x in exported] == [("cli", "https://example.com/cli")]
