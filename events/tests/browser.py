"""Headless Chromium for the browser tests (Playwright): only those tests import this module.

Besides the `browser` fixture, the checks every page must pass (issue 25): `assert_no_horizontal_scroll` and
`assert_accessible` (axe-core from node_modules), at the two sizes PHONE and DESKTOP; and `screenshot`.
"""

import json
import os
from collections.abc import Iterator
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from django.conf import settings as django_settings
from django.test import Client
from playwright.sync_api import Browser, Page, ViewportSize, sync_playwright

if TYPE_CHECKING:
    from accounts.models import User

ROOT = Path(__file__).resolve().parents[2]
PHONE: ViewportSize = {"width": 390, "height": 844}
DESKTOP: ViewportSize = {"width": 1280, "height": 800}
AXE_SCRIPT = ROOT / "node_modules" / "axe-core" / "axe.min.js"
# What a page may not have: axe-core's two worst levels (moderate and minor findings are left to judgement).
BLOCKING_IMPACTS = ("serious", "critical")

# Debian's Chromium, headless; the flags keep it from calling home (this machine has no network but registries).
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


def screenshot_path(name: str, *, docs: bool = True) -> Path:
    """Where a screenshot goes: the README's (`docs`) into docs/screenshots/ when UPDATE_SCREENSHOTS=1 asks to
    refresh them, everything else under var/screenshots/."""
    folder = "docs/screenshots" if docs and os.environ.get("UPDATE_SCREENSHOTS") else "var/screenshots"
    path = ROOT / folder / name
    path.parent.mkdir(parents=True, exist_ok=True)
    return path


def screenshot(page: Page, name: str, *, docs: bool = False, full_page: bool = True) -> Path:
    """The page (or only what the window shows) as `name`.png; see screenshot_path for where."""
    path = screenshot_path(f"{name}.png", docs=docs)
    page.screenshot(path=path, full_page=full_page)
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


@pytest.fixture
def plain_static_files(settings) -> None:
    """live_server serves /static/ through Django's finders, which do not know the hashed names the manifest
    storage (DEBUG off) puts in pages: plain names instead, or the browser would get 404 for CSS and JS."""
    settings.STORAGES = {
        **settings.STORAGES,
        "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
    }


def logged_in_page(
    browser: Browser, base_url: str, user: "User | None", *, viewport: ViewportSize = DESKTOP, dark: bool = False
) -> Page:
    """A new page at `viewport`, with `user`'s session (or none), in the system's light or dark colour scheme.
    Close it with page.context.close()."""
    context = browser.new_context(
        base_url=base_url, viewport=viewport, color_scheme="dark" if dark else "light", reduced_motion="reduce"
    )
    context.set_default_timeout(10_000)
    if user is not None:
        client = Client()
        client.force_login(user)
        session_cookie = client.cookies[django_settings.SESSION_COOKIE_NAME].value
        context.add_cookies([{"name": django_settings.SESSION_COOKIE_NAME, "value": session_cookie, "url": base_url}])
    return context.new_page()


def assert_no_horizontal_scroll(page: Page) -> None:
    """Nothing sticks out sideways: the page is no wider than the window (issue 25: none at 390 px)."""
    widths = page.evaluate(_WIDTHS_SCRIPT)
    assert widths["page"] <= widths["window"], (
        f"{page.url} is {widths['page']} px wide in a {widths['window']} px window; sticking out: {widths['culprits']}"
    )


# The page's and the window's widths, and the outermost elements that stick out past the window's right edge
# (not those inside a box that scrolls or clips them), to name the culprit in the failure.
_WIDTHS_SCRIPT = """() => {
    // Whether a box between the element and the page clips it; an absolutely positioned element escapes every
    // box up to its containing block (its nearest positioned ancestor).
    const clipped = (element) => {
        let escaping = getComputedStyle(element).position === "absolute";
        for (let e = element.parentElement; e && e !== document.body; e = e.parentElement) {
            const style = getComputedStyle(e);
            if (escaping && style.position === "static") continue;
            escaping = false;
            if (style.overflowX !== "visible") return true;
        }
        return false;
    };
    const out = [...document.body.querySelectorAll("*")].filter(
        (e) => e.getBoundingClientRect().right > window.innerWidth + 1 && !clipped(e));
    const outermost = out.filter((e) => !out.includes(e.parentElement));
    return {
        page: document.documentElement.scrollWidth,
        window: window.innerWidth,
        culprits: outermost.slice(0, 5).map((e) => e.outerHTML.slice(0, 160)),
    };
}"""


@cache
def _axe_source() -> str:
    return AXE_SCRIPT.read_text()


def assert_accessible(page: Page) -> None:
    """axe-core finds no serious or critical violation on the page as it is now.

    The script goes in through page.evaluate: the site's CSP refuses inline <script> tags (add_script_tag),
    and the tests keep that CSP on rather than open a context that bypasses it."""
    if not page.evaluate("() => typeof window.axe !== 'undefined'"):
        page.evaluate(_axe_source())
    violations = page.evaluate(
        "async () => (await axe.run(document, {resultTypes: ['violations']})).violations"
        ".map(v => ({id: v.id, impact: v.impact, help: v.help, nodes: v.nodes.map(n => n.target.join(' ')),"
        " why: v.nodes[0].failureSummary.split('\\n').slice(1, 2).join(' ')}))"
    )
    blocking = [v for v in violations if v["impact"] in BLOCKING_IMPACTS]
    assert blocking == [], f"axe-core on {page.url}:\n" + "\n".join(
        f"- {v['impact']} {v['id']}: {v['help']} at {json.dumps(v['nodes'][:5])} (first: {v['why']})" for v in blocking
    )
