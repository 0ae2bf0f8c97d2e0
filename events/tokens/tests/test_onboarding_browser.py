"""An Owner's first two minutes in real headless Chromium: create a token, copy each example with its Copy button,
run what was copied against the live server, and watch "Waiting for your first event…" name the event, without a
reload, and link to it on the Events page."""

import os
import re
import subprocess
import sys
from collections.abc import Iterator
from datetime import timedelta

import pytest
from django.conf import settings as django_settings
from django.utils import timezone
from playwright.sync_api import Page, expect

from accounts.models import Role
from events.models import ApiToken, Event
from events.tests.browser import screenshot_path
from events.tokens.onboarding import EXAMPLES
from events.tokens.tests.test_settings_browser import create_token, log_in, person_in_team

pytest_plugins = ["events.tests.browser"]  # the browser fixture
pytestmark = pytest.mark.browser

# How each example is run, as a user would paste it: a shell for curl, the interpreters for the others.
RUNNERS = {
    "curl": ["bash", "-s"],
    "python-requests": [sys.executable, "-"],
    "node-axios": ["node", "-"],
    "python-segment": [sys.executable, "-"],
    "node-segment": ["node", "-"],
}


@pytest.fixture(autouse=True)
def _live_server_settings(settings, plain_static_files):
    settings.EVENTS_PUBLIC_URL = ""  # the examples aim at the live server itself


@pytest.fixture
def page(browser, live_server) -> Iterator[Page]:
    context = browser.new_context(
        base_url=live_server.url,
        viewport={"width": 1280, "height": 800},
        permissions=["clipboard-read", "clipboard-write"],
    )
    context.set_default_timeout(15_000)
    page = context.new_page()
    yield page
    context.close()


def run_copied(key: str, code: str) -> None:
    # Node finds axios and Segment's library in the project's node_modules; loopback must not go through a proxy.
    environment = {
        **os.environ,
        "NODE_PATH": str(django_settings.BASE_DIR / "node_modules"),
        "NO_PROXY": "127.0.0.1,localhost",
        "no_proxy": "127.0.0.1,localhost",
    }
    finished = subprocess.run(
        RUNNERS[key],
        input=code,
        cwd=django_settings.BASE_DIR,
        env=environment,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert finished.returncode == 0, finished.stderr
    assert "Refused" not in finished.stdout + finished.stderr


def test_an_owner_runs_each_copied_example_and_sees_the_first_event_arrive(page, live_server, transactional_db):
    person_in_team("alice@acme.test", Role.OWNER)
    log_in(page, "alice@acme.test")
    create_token(page, "First stream")
    plaintext = page.get_by_test_id("new-token").input_value()
    token = ApiToken.objects.get(name="First stream")
    status = page.get_by_test_id("first-event")
    expect(status).to_contain_text("Waiting for your first event…")
    page.evaluate("window.stillTheSamePage = true")
    page.get_by_test_id("onboarding").scroll_into_view_if_needed()
    page.screenshot(path=screenshot_path("onboarding-waiting-1280.png"))

    tabs = page.get_by_role("tab")
    expect(tabs).to_have_count(len(EXAMPLES))
    for number, example in enumerate(EXAMPLES, start=1):
        page.get_by_role("tab", name=example.label, exact=True).click()
        panel = page.get_by_role("tabpanel")
        expect(panel).to_have_count(1)
        panel.get_by_role("button", name=re.compile(r"^Copy")).click()
        expect(panel.get_by_role("button", name=re.compile(r"^Copied"))).to_be_visible()
        copied = page.evaluate("navigator.clipboard.readText()")
        assert plaintext in copied and live_server.url in copied, example.key

        run_copied(example.key, copied)

        events = Event.objects.filter(token=token).order_by("received_at")
        assert events.count() == number, example.key
        latest = events.last()
        assert latest.event == "Purchased an Item"
        assert abs(latest.timestamp - timezone.now()) < timedelta(minutes=5), "the example sent a fixed time"
        if number == 1:
            first = latest
            expect(status).to_contain_text("Your first event arrived: Purchased an Item")
            assert page.evaluate("window.stillTheSamePage") is True

    for width, height in [(1280, 800), (390, 844)]:
        page.set_viewport_size({"width": width, "height": height})
        component = page.get_by_test_id("onboarding")
        overflowing = component.evaluate(
            "section => [section, ...section.querySelectorAll('pre')].filter(e => e.scrollWidth > e.clientWidth).length"
        )
        assert overflowing == 0, f"code is cut at {width} px"
        component.scroll_into_view_if_needed()
        page.screenshot(path=screenshot_path(f"onboarding-first-event-{width}.png"))

    page.get_by_test_id("first-event-link").click()
    expect(page).to_have_url(re.compile(r"/events/\?event=Purchased\+an\+Item$"))
    expect(page.locator(f'tr[data-event-id="{first.id}"]')).to_be_visible()


def test_the_examples_tabs_work_from_the_keyboard(page, transactional_db):
    person_in_team("alice@acme.test", Role.OWNER)
    log_in(page, "alice@acme.test")

    first_tab = page.get_by_role("tab", name=EXAMPLES[0].label, exact=True)
    first_tab.focus()
    page.keyboard.press("ArrowRight")

    second_tab = page.get_by_role("tab", name=EXAMPLES[1].label, exact=True)
    expect(second_tab).to_be_focused()
    expect(second_tab).to_have_attribute("aria-selected", "true")
    expect(page.get_by_role("tabpanel")).to_contain_text("import requests")
    page.keyboard.press("End")
    expect(page.get_by_role("tab", name=EXAMPLES[-1].label, exact=True)).to_be_focused()
    assert page.get_by_test_id("first-event").count() == 0  # no token was created: nothing to watch


def test_after_ten_minutes_without_an_event_the_status_offers_to_check_again(page, transactional_db):
    person_in_team("alice@acme.test", Role.OWNER)
    page.clock.install()
    log_in(page, "alice@acme.test")
    create_token(page, "Quiet stream")
    status = page.get_by_test_id("first-event")
    expect(status).to_contain_text("Waiting for your first event…")

    page.clock.fast_forward("10:01")

    expect(status).to_contain_text("No event yet after 10 minutes")
    status.get_by_role("button", name="Check again").click()
    expect(status).to_contain_text("Waiting for your first event…")
    expect(status.get_by_role("button", name="Check again")).to_be_hidden()


def test_without_javascript_every_example_is_shown(browser, live_server, transactional_db):
    person_in_team("alice@acme.test", Role.OWNER)
    context = browser.new_context(
        base_url=live_server.url, java_script_enabled=False, viewport={"width": 390, "height": 844}
    )
    no_script = context.new_page()
    log_in(no_script, "alice@acme.test")

    expect(no_script.get_by_role("tablist")).to_be_hidden()
    for example in EXAMPLES:
        expect(no_script.get_by_test_id(f"example-{example.key}").locator("pre")).to_be_visible()
        expect(no_script.get_by_role("heading", name=example.label, exact=True)).to_be_visible()
    context.close()
