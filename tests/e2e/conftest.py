"""The browser tests' setup: one headless Chromium per test process (the dashboard server is tests/conftest.serving).

Chromium (with Playwright's driver) is launched once per pytest process and shared by the browser tests it runs;
each page a test opens has a browser context of its own (`Browser.new_page`: no cookies, storage or session
shared with another page), closed when the test ends.
"""
from __future__ import annotations

import os
from pathlib import Path

import pytest

from bench.serving import CHROMIUM, CHROMIUM_ARGS
from tests.conftest import serving  # noqa: F401  (the browser tests import it from here; the API tests use it too)


@pytest.fixture(scope="session")
def chromium() -> Path:
    """Debian's chromium; skipped where it is absent, unless CI is set (then its absence is a failure)."""
    if not CHROMIUM.exists():
        message = f"{CHROMIUM} is missing: apt-get install -y chromium"
        if os.environ.get("CI"):
            pytest.fail(message + " (CI is set, so the browser test is mandatory)")
        pytest.skip(message)
    return CHROMIUM


@pytest.fixture(scope="session")
def _chromium_browser(chromium):
    """The headless Chromium of this test process (Playwright driving the system browser)."""
    from playwright.sync_api import sync_playwright
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(chromium), args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()


@pytest.fixture
def browser(_chromium_browser):
    """The shared Chromium; every page a test opens with `browser.new_page(...)` lives in a context of its own,
    and all of them are closed when the test ends."""
    yield _chromium_browser
    for context in _chromium_browser.contexts:
        context.close()
