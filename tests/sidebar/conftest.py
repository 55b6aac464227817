"""Shared set-up of the sidebar's browser tests: a fresh workspace per test, the panel open
(``lab`` and ``browser`` come from tests/browser_lab.py)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from playwright.sync_api import Browser, Locator, Page, expect

from tests.browser_lab import TIMEOUT_MS, Lab

TAB = '.jp-SideBar .lm-TabBar-tab[data-id="nbsession-sidebar"]'


def open_lab(browser: Browser, url: str, token: str, width: int = 1300) -> Page:
    """JupyterLab at ``url`` in a fresh workspace, with the sidebar open."""
    page = browser.new_page(viewport={"width": width, "height": 900 if width > 1000 else 700})
    page.set_default_timeout(TIMEOUT_MS)
    page.goto(f"{url}lab?reset&token={token}")
    tab = page.locator(TAB)
    expect(tab).to_be_visible(timeout=TIMEOUT_MS)
    tab.click()
    expect(page.locator("#nbsession-sidebar")).to_be_visible()
    return page


@pytest.fixture
def page(lab: Lab, browser: Browser) -> Iterator[Page]:
    page = open_lab(browser, lab.url, lab.token)
    try:
        yield page
    finally:
        page.close()


def session_row(page: Page, session_id: str) -> Locator:
    """The session's row in the panel's list."""
    return page.locator(f'#nbsession-sidebar li[data-session-id="{session_id}"]')
