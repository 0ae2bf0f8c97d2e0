"""Headless Chromium for the browser tests (Playwright): only those tests import this module."""

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, sync_playwright

# Debian's Chromium, headless; the flags keep it from calling home (this machine has no network but registries).
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


def screenshot_path(name: str) -> Path:
    """The README's screenshots are refreshed with UPDATE_SCREENSHOTS=1; other runs write under var/."""
    folder = "docs/screenshots" if os.environ.get("UPDATE_SCREENSHOTS") else "var/screenshots"
    path = Path(__file__).resolve().parents[2] / folder / name
    path.parent.mkdir(parents=True, exist_ok=True)
    return path


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    # Module scope, not session: Playwright's running loop and the environment variable below must not outlive
    # the browser tests (other modules start Playwright themselves, or run `check --deploy` in a subprocess).
    # Playwright's sync API keeps an event loop running in this thread, and Django refuses ORM calls from a
    # thread with a running loop unless told it is safe: here it is, the loop only drives the browser.
    with pytest.MonkeyPatch.context() as patch, sync_playwright() as playwright:
        patch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
        browser = playwright.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS, headless=True)
        yield browser
        browser.close()
