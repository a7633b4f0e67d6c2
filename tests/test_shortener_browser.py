"""End to end: a real headless Chromium drives the shortener served by uvicorn.

uvicorn runs ``python -m examples.url_shortener`` in a subprocess on a free
127.0.0.1 port over a fresh SQLite file.  The short link's target is on
``https://example.com``; Playwright answers that request itself, so nothing
leaves the machine.  Needs Debian's Chromium (``scripts/install-browser.sh``).
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
TARGET = "https://example.com/landing?from=e2e"


def chromium_path() -> str:
    for candidate in (
        "/usr/bin/chromium",
        shutil.which("chromium"),
        shutil.which("chromium-browser"),
    ):
        if candidate and os.access(candidate, os.X_OK):
            return candidate
    pytest.skip(
        "no Chromium here: run scripts/install-browser.sh as root (apt-get install chromium)"
    )


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@pytest.fixture
def server(tmp_path: Path) -> Iterator[str]:
    """The shortener under uvicorn; yields its base URL."""
    port = free_port()
    env = {**os.environ, "SSSHELF_URL": f"sqlite:///{tmp_path / 'links.db'}"}
    env.pop("SHORTENER_PUBLIC_URL", None)
    process = subprocess.Popen(
        [sys.executable, "-m", "examples.url_shortener", "--port", str(port)],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                with urllib.request.urlopen(f"{base}/healthz", timeout=1) as response:
                    if response.read() == b"ok":
                        break
            except (urllib.error.URLError, ConnectionError):
                pass
            if process.poll() is not None or time.monotonic() > deadline:
                output = process.stdout.read().decode() if process.stdout else ""
                raise AssertionError(f"the shortener did not start:\n{output}")
            time.sleep(0.1)
        yield base
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        if process.stdout:
            process.stdout.close()


def test_shorten_copy_follow_and_see_the_click_in_a_real_browser(server: str) -> None:
    executable = chromium_path()
    sync_api = pytest.importorskip("playwright.sync_api")
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)
        try:
            context = browser.new_context(viewport={"width": 1000, "height": 900})
            context.grant_permissions(["clipboard-read", "clipboard-write"], origin=server)
            landed: list[str] = []

            def fulfil(route: object) -> None:
                landed.append(route.request.url)  # type: ignore[attr-defined]
                route.fulfill(  # type: ignore[attr-defined]
                    status=200, content_type="text/html", body="<h1>Landed</h1>"
                )

            context.route("https://example.com/**", fulfil)
            page = context.new_page()
            page.goto(server + "/")
            assert "No links yet" in page.inner_text("body")

            page.fill("#url", TARGET)
            page.fill("#alias", "e2e-link")
            page.click("button[type=submit]")
            page.wait_for_selector("#short-link")
            short = f"{server}/e2e-link"
            assert page.inner_text("#short-link") == short
            assert page.url == f"{server}/?created=e2e-link"

            page.click("button[data-copy]")
            # A locator waits without evaluating script text in the page (its
            # policy forbids eval, which wait_for_function's polling uses).
            page.locator("button[data-copy]", has_text="Copied!").wait_for()
            assert page.evaluate("navigator.clipboard.readText()") == short

            first_row = page.locator("#recent tbody tr").first
            assert first_row.locator("td").nth(0).inner_text() == "e2e-link"
            assert first_row.locator("td").nth(2).inner_text() == "0"

            page.click("#short-link")
            page.wait_for_url(TARGET)
            assert page.inner_text("h1") == "Landed"
            assert landed == [TARGET]

            page.goto(server + "/")
            first_row = page.locator("#recent tbody tr").first
            assert first_row.locator("td").nth(2).inner_text() == "1"

            page.fill("#url", "https://example.com/second")
            page.fill("#alias", "E2E-Link")  # aliases ignore case
            page.click("button[type=submit]")
            assert "The alias 'E2E-Link' is already taken" in page.inner_text("#error")
            assert page.input_value("#url") == "https://example.com/second"

            page.goto(server + "/")
            page.fill("#url", short)  # a link to the shortener itself: a redirect loop
            page.click("button[type=submit]")
            assert "points back to this shortener" in page.inner_text("#error")
            assert page.locator("#recent tbody tr").count() == 1
        finally:
            browser.close()
