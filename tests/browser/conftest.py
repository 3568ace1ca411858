"""Browser tests: Playwright's sync API driving Debian's Chromium (headless) against `live_server`.

Chromium comes from apt (`make install-dev` installs it), never from `playwright install`. Without
`/usr/bin/chromium` every test here is skipped with the reason.

Playwright's sync API keeps an asyncio loop "running" in the main thread while it is started, which
makes Django refuse ORM calls from the test body (SynchronousOnlyOperation). So the browser lives
for one module only, with DJANGO_ALLOW_ASYNC_UNSAFE set just as long, and the qcluster child process
is started with it blanked out (it has no event loop and must keep Django's real checks).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser, BrowserContext, Page, Playwright, ViewportSize, expect, sync_playwright

from project.cluster import ROOT

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    # Without these Chromium keeps calling Google hosts that this closed network refuses.
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
VIEWPORT: ViewportSize = {"width": 1366, "height": 860}
PHONE: ViewportSize = {"width": 390, "height": 844}
SCREENSHOTS = ROOT / "test-artifacts" / "screenshots"
PASSWORD = "a-long-browser-test-password"
TIMEOUT_MS = 15_000

expect.set_options(timeout=TIMEOUT_MS)


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "browser: drives a real Chromium")


@pytest.fixture(scope="module")
def playwright() -> Iterator[Playwright]:
    if not CHROMIUM.exists():
        pytest.skip(f"{CHROMIUM} is missing: `apt-get install -y chromium` (make install-dev does it)")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
        with sync_playwright() as pw:
            yield pw


@pytest.fixture(scope="module")
def browser(playwright: Playwright) -> Iterator[Browser]:
    browser = playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS)
    try:
        yield browser
    finally:
        browser.close()


@pytest.fixture
def context(browser: Browser) -> Iterator[BrowserContext]:
    context = browser.new_context(viewport=VIEWPORT, accept_downloads=True)
    context.set_default_timeout(TIMEOUT_MS)
    try:
        yield context
    finally:
        context.close()


@pytest.fixture
def page(context: BrowserContext) -> Iterator[Page]:
    """A page that fails the test on any JavaScript error (uncaught exception or console error)."""
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(f"uncaught: {exc}"))
    page.on("console", lambda msg: errors.append(f"console: {msg.text}") if msg.type == "error" else None)
    yield page
    # A 404 or 400 page the test asked for logs "Failed to load resource"; anything else is a real error.
    real = [
        e for e in errors if not re.search(r"Failed to load resource: the server responded with a status of 40[04]", e)
    ]
    assert not real, f"JavaScript errors on the page: {real}"


@pytest.fixture
def qcluster_env() -> dict[str, str]:
    """The cluster must not inherit the async-unsafe escape hatch the browser tests need (see above)."""
    return {"DJANGO_ALLOW_ASYNC_UNSAFE": ""}


@pytest.fixture
def screenshot() -> Any:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)

    def take(page: Page, name: str) -> Path:
        path = SCREENSHOTS / f"{name}.png"
        page.screenshot(path=str(path), full_page=True)
        return path

    return take


def login(page: Page, base_url: str, username: str, password: str = PASSWORD) -> None:
    """Log in through the real login form and wait for the searches list."""
    page.goto(f"{base_url}/accounts/login/")
    page.fill("#id_username", username)
    page.fill("#id_password", password)
    with page.expect_navigation():
        page.get_by_role("button", name="Log in").click()
    expect(page).to_have_url(f"{base_url}/")
    expect(page.locator("h1")).to_have_text("Searches")


@pytest.fixture
def base_url(live_server: Any) -> str:
    return str(live_server.url)


@pytest.fixture
def user(django_user_model: Any) -> Any:
    return django_user_model.objects.create_user("alice", password=PASSWORD)


@pytest.fixture
def logged_in(page: Page, base_url: str, user: Any) -> Page:
    login(page, base_url, user.username)
    return page
