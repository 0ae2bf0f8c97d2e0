"""Fixtures for the Events API tests: tokens for the personas' teams and a client that posts events."""

import os
import re
from pathlib import Path

import pytest
from playwright.sync_api import Browser, sync_playwright

from events import services, tokens

# The example body of the Events API page (`POST /v1/event`), byte for byte.
DOC_EVENT_BODY = b"""{
  "version": 1,
  "type": "event",
  "event": "Purchased an Item",
  "properties": {
    "revenue": "39.95",
    "shippingMethod": "2-day"
  },
  "timestamp": "2012-12-02T00:30:08.276Z"
}"""


@pytest.fixture
def doc_event_body() -> bytes:
    return DOC_EVENT_BODY


@pytest.fixture
def acme_token(acme, alice):
    """(ApiToken, plaintext) of a live token of Acme, created by its Owner."""
    return services.api_token_create(team=acme, created_by=alice, name="Production stream")


@pytest.fixture
def globex_token(globex, charlie):
    return services.api_token_create(team=globex, created_by=charlie, name="Globex stream")


# A JSON escape of an ASCII character, as a reader would write it out (backslashes doubled in a row's text too).
_ASCII_ESCAPE = re.compile(r"\\+u00([0-7][0-9A-Fa-f])")
_OVERLAPPING_TOKEN = re.compile(f"(?=({tokens.TOKEN_PATTERN.pattern}))")


@pytest.fixture
def find_tokens():
    """A function: every string in a text that passes the token checksum, also when spelled with JSON escapes
    (what nothing stored or logged may hold)."""

    def find(text: str) -> list[str]:
        written_out = _ASCII_ESCAPE.sub(lambda match: chr(int(match[1], 16)), text)
        candidates = _OVERLAPPING_TOKEN.findall(written_out)  # `cnv_` + 35 characters + a token holds a token
        return [found for found in candidates if tokens.is_well_formed(found)]

    return find


@pytest.fixture
def post_event(client):
    """POST a body to the Events API as an event stream does: JSON, with the token in X-Auth-Token."""

    def post(body: bytes, *, token: str | None, path: str = "/v1/event", **extra):
        headers = {"X-Auth-Token": token} if token is not None else {}
        return client.post(path, body, content_type="application/json", headers=headers, **extra)

    return post


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
def browser() -> Browser:
    # Module scope, not session: Playwright's running loop and the environment variable below must not outlive
    # the browser tests (other modules start Playwright themselves, or run `check --deploy` in a subprocess).
    # Playwright's sync API keeps an event loop running in this thread, and Django refuses ORM calls from a
    # thread with a running loop unless told it is safe: here it is, the loop only drives the browser.
    with pytest.MonkeyPatch.context() as patch, sync_playwright() as playwright:
        patch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
        browser = playwright.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS, headless=True)
        yield browser
        browser.close()
