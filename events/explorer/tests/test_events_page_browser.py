"""The Events page in real headless Chromium: the live tail updates without a reload, raw JSON, chart, filters.

Also saves docs/screenshots/events-page.png for the README.
"""

import random
import re
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from django.test import Client
from django.utils import timezone
from playwright.sync_api import Page, expect

from accounts.models import Membership, Role, Team
from conftest import make_user
from events.explorer.selectors import CATALOG_PAGE_SIZE, TAIL_LIMIT
from events.models import CatalogEvent
from events.tests.browser import assert_no_horizontal_scroll, screenshot_path
from events.tests.event_factories import drop_team_schemas, store_event, sync

pytest_plugins = ["events.tests.browser"]  # the browser fixture
pytestmark = pytest.mark.browser

SCREENSHOT = "events-page.png"
POLL_MS = 1000  # static/js/events.js polls the tail this often
ANSWER_TIMEOUT_MS = 30_000  # for the server's answer to a poll, on a busy machine
PAGE_CLOCK_START = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)


@pytest.fixture
def acme_owner(transactional_db):
    team = Team.objects.create(name="Acme", slug="acme", events_api_enabled=True)
    user = make_user("alice@acme.test")
    Membership.objects.create(user=user, team=team, role=Role.OWNER)
    yield team, user
    drop_team_schemas()


@pytest.fixture
def page(browser, live_server, settings, plain_static_files, acme_owner) -> Iterator[Page]:
    _, user = acme_owner
    client = Client()
    client.force_login(user)
    context = browser.new_context(base_url=live_server.url, viewport={"width": 1280, "height": 900})
    context.add_cookies(
        [{"name": settings.SESSION_COOKIE_NAME, "value": client.cookies[settings.SESSION_COOKIE_NAME].value,
          "url": live_server.url}]
    )  # fmt: skip
    context.set_default_timeout(10_000)
    page = context.new_page()
    failed = []
    page.on("response", lambda response: failed.append(response.url) if response.status >= 400 else None)
    page.on("pageerror", lambda error: failed.append(str(error)))
    yield page
    context.close()
    assert failed == [], "the page was tested with missing assets or script errors"


def a_day_of_events(team: Team) -> None:
    """A realistic day: a storefront's events over the last 24 hours, busier in the afternoon."""
    rng = random.Random(6)
    now = timezone.now()
    kinds: list[tuple[str, int, Callable[[], dict[str, Any]]]] = [
        ("Product Viewed", 10, lambda: {"product_id": f"sku-{rng.randint(100, 140)}", "price": rng.choice([19, 49.5])}),
        ("Product Added", 4, lambda: {"product_id": f"sku-{rng.randint(100, 140)}", "quantity": rng.randint(1, 3)}),
        ("Order Completed", 2, lambda: {"revenue": f"{rng.randint(20, 300)}.95", "shippingMethod": "2-day"}),
        ("Signed Up", 1, lambda: {"plan": rng.choice(["free", "pro"]), "referrer": {"source": "newsletter"}}),
    ]
    events: list[tuple[int, str, dict[str, Any], dict[str, str]]] = []
    for hours_ago in range(24):
        busy = 1 + (hours_ago in range(2, 9))
        for name, weight, make_properties in kinds:
            for _ in range(rng.randint(0, weight) * busy):
                events.append((hours_ago, name, make_properties(), {"user_id": f"user-{rng.randint(1, 60)}"}))
        if hours_ago % 3 == 0:
            events.append(
                (hours_ago, "Pricing", {"url": "/pricing", "title": "Pricing"}, {"type": "page", "name": "Pricing"})
            )
    stamped = [
        (now - timedelta(hours=h, minutes=rng.randint(0, 59), seconds=rng.randint(0, 59)), name, properties, fields)
        for h, name, properties, fields in events
    ]
    for timestamp, name, properties, fields in sorted(stamped, key=lambda item: item[0]):  # as they arrived
        store_event(team, name, properties, timestamp=timestamp, received_at=timestamp, **fields)
    store_event(team, "identify", {"email": "ann@acme.test", "plan": "pro"}, type="identify")
    sync()


def test_new_events_appear_in_the_live_tail_within_one_poll_without_a_reload(page, acme_owner):
    team, _ = acme_owner
    a_day_of_events(team)
    # The page's timers run on a clock that stands still until the test moves it: no poll before it says so.
    page.clock.install(time=PAGE_CLOCK_START)
    page.clock.pause_at(PAGE_CLOCK_START + timedelta(hours=1))
    page.goto("/events/")
    expect(page.get_by_role("heading", name="Events", exact=True)).to_be_visible()
    rows_before = page.locator("#tail-rows tr").count()

    store_event(team, "Checkout Started", {"cart_value": "129.90", "items": 3}, user_id="user-new")
    with page.expect_response(re.compile(r"/events/tail\.json"), timeout=ANSWER_TIMEOUT_MS):
        page.clock.run_for(POLL_MS)
    new_row = page.locator("#tail-rows tr", has_text="Checkout Started")
    expect(new_row).to_be_visible(timeout=ANSWER_TIMEOUT_MS)
    expect(page.get_by_test_id("live-status")).to_have_text("Live")
    page.clock.resume()  # the chart's animation and the rest of the page run on time again
    assert page.locator("#tail-rows tr").first.text_content().count("Checkout Started") == 1
    assert page.locator("#tail-rows tr").count() == rows_before + 1

    new_row.click()
    raw = page.get_by_test_id("raw-json")
    expect(raw.locator("code")).to_contain_text('"event": "Checkout Started"')
    expect(raw.locator("code")).to_contain_text('"cart_value": "129.90"')

    # The volume chart is drawn by Chart.js (vendored), from the catalog's hourly counts.
    page.wait_for_function("document.getElementById('volume-chart').getBoundingClientRect().height > 100")
    assert page.evaluate("Boolean(window.Chart && window.Chart.getChart('volume-chart'))")
    legend = page.evaluate("window.Chart.getChart('volume-chart').data.datasets.map(d => d.label)")
    assert legend[0] == "Product Viewed"

    catalog = page.get_by_test_id("catalog")
    catalog.locator("summary", has_text="Order Completed").click()
    expect(catalog.get_by_text("shipping_method")).to_be_visible()
    expect(page.locator("#warehouse")).to_contain_text("team_acme")
    page.locator("#tail-rows tr").nth(1).scroll_into_view_if_needed()
    new_row.click()
    page.evaluate("window.scrollTo(0, 0)")
    page.screenshot(path=screenshot_path(SCREENSHOT), full_page=True)


def test_filters_narrow_the_tail_and_the_export(page, acme_owner):
    team, _ = acme_owner
    store_event(team, "Signed Up", {"plan": "pro"})
    store_event(team, "Product Viewed", {"product_id": "sku-1"})
    page.goto("/events/")
    page.get_by_role("combobox", name="Event name").fill("Signed Up")
    page.get_by_role("button", name="Apply").click()
    expect(page).to_have_url(re.compile(r"event=Signed\+Up"))
    expect(page.locator("#tail-rows tr")).to_have_count(1)
    expect(page.locator("#tail-rows")).to_contain_text("Signed Up")
    expect(page.get_by_test_id("export-csv")).to_have_attribute("href", re.compile(r"export\.csv\?event=Signed\+Up"))

    store_event(team, "Product Viewed", {"product_id": "sku-2"})  # filtered out of the live tail too
    store_event(team, "Signed Up", {"plan": "free"})
    expect(page.locator("#tail-rows tr")).to_have_count(2, timeout=ANSWER_TIMEOUT_MS)  # at a later poll
    expect(page.locator("#tail-rows")).not_to_contain_text("Product Viewed")


def test_the_catalog_is_searched_and_paged_from_the_keyboard(page, acme_owner):
    team, _ = acme_owner
    now = timezone.now()
    CatalogEvent.objects.bulk_create(
        CatalogEvent(team=team, type="track", name=name, count=count, first_seen_at=now, last_seen_at=now)
        for count, name in enumerate([f"Viewed product {i}" for i in range(30)] + ["Order Completed"])
    )
    page.goto("/events/")
    search = page.get_by_role("searchbox", name="Search event names")
    search.focus()
    page.keyboard.type("viewed")
    page.keyboard.press("Enter")
    expect(page).to_have_url(re.compile(r"catalog-q=viewed"))
    catalog = page.get_by_test_id("catalog")
    expect(catalog.locator("details")).to_have_count(CATALOG_PAGE_SIZE)
    expect(catalog).not_to_contain_text("Order Completed")
    expect(page.get_by_test_id("catalog-summary")).to_contain_text("30 of 31 names contain “viewed” · page 1 of 2")

    next_page = page.get_by_role("navigation", name="Catalog pages").get_by_role("link", name="Next")
    next_page.focus()
    page.keyboard.press("Enter")
    expect(catalog.locator("details")).to_have_count(30 - CATALOG_PAGE_SIZE)
    expect(page.get_by_role("searchbox", name="Search event names")).to_have_value("viewed")
    first = catalog.locator("summary").first
    first.focus()
    page.keyboard.press("Enter")  # a name opens from the keyboard too
    expect(catalog.locator("details").first).to_have_attribute("open", "")


def test_the_counters_follow_the_filters_and_the_tail(page, acme_owner):
    team, _ = acme_owner
    store_event(team, "Signed Up", {"plan": "pro"}, user_id="ann")
    store_event(team, "Signed Up", {"plan": "free"}, user_id="bob")
    store_event(team, "Order Completed", {"plan": "pro"}, user_id="ann")
    sync()
    page.goto("/events/")
    counted, names = page.get_by_test_id("events-counted"), page.get_by_test_id("event-names")
    expect(counted).to_have_text("3")
    expect(names).to_have_text("2")

    page.get_by_text("Search by user or property").click()
    page.get_by_label("User id").fill("ann")
    page.get_by_role("button", name="Apply").click()
    expect(page).to_have_url(re.compile(r"user=ann"))
    expect(counted).to_have_text("2")
    expect(page.locator("#tail-rows tr")).to_have_count(2)

    page.get_by_label("Property").fill("plan")
    page.get_by_label("Value").fill("pro")
    page.get_by_role("combobox", name="Event name").fill("Signed Up")
    page.get_by_role("button", name="Apply").click()
    expect(counted).to_have_text("1")
    expect(names).to_have_text("1")

    # A matching event arrives: the tail shows it, says so to screen readers, and the counters follow.
    store_event(team, "Signed Up", {"plan": "pro"}, user_id="ann")
    store_event(team, "Signed Up", {"plan": "free"}, user_id="ann")  # not this search
    expect(page.locator("#tail-rows tr")).to_have_count(2, timeout=ANSWER_TIMEOUT_MS)
    announcer = page.get_by_test_id("tail-announcer")
    expect(announcer).to_have_attribute("aria-live", "polite")
    expect(announcer).to_have_text("1 new event: Signed Up")
    expect(counted).to_have_text("2", timeout=ANSWER_TIMEOUT_MS)


def test_the_counters_and_the_catalogs_age_move_when_the_sync_runs(page, acme_owner):
    """As under `make run`, where the sync runs beside the server: the page follows without a reload."""
    team, _ = acme_owner
    store_event(team, "Signed Up")
    sync()
    page.goto("/events/")
    counted = page.get_by_test_id("events-counted")
    expect(counted).to_have_text("1")
    updated = page.get_by_test_id("catalog-updated").locator("time")
    synced_at = updated.get_attribute("datetime")

    store_event(team, "Order Completed")
    expect(page.locator("#tail-rows tr")).to_have_count(2, timeout=ANSWER_TIMEOUT_MS)
    sync()
    expect(counted).to_have_text("2", timeout=ANSWER_TIMEOUT_MS)  # the catalog's count, at the next refresh
    expect(page.get_by_test_id("event-names")).to_have_text("2")
    expect(updated).not_to_have_attribute("datetime", synced_at)
    expect(updated).to_have_text(re.compile(r"now|second"))


def test_the_tail_dates_last_years_events_and_pages_back(page, acme_owner):
    team, _ = acme_owner
    long_ago = timezone.now() - timedelta(days=400)  # in another year, whenever the test runs
    store_event(team, "Purchased an Item", timestamp=long_ago, received_at=long_ago + timedelta(seconds=2))
    for index in range(TAIL_LIMIT + 2):
        store_event(team, "Page Viewed", {"n": index})
    page.goto("/events/")
    rows = page.locator("#tail-rows tr")
    expect(rows).to_have_count(TAIL_LIMIT)
    latest = rows.first.locator("td.time")
    expect(latest).to_contain_text("received")
    assert str(timezone.now().year) not in latest.text_content()  # this year's dates go without one

    page.get_by_test_id("older-events").click()
    expect(rows).to_have_count(TAIL_LIMIT + 3)
    oldest = rows.last.locator("td.time")
    expect(oldest).to_contain_text(str(long_ago.year))
    expect(oldest.locator("time").first).to_have_attribute("datetime", re.compile(rf"^{long_ago:%Y-%m-%dT%H:%M}"))
    expect(page.get_by_test_id("older-events")).to_be_hidden()
    expect(rows.nth(TAIL_LIMIT).locator("a")).to_be_focused()  # the keyboard carries on where the new rows start


def test_a_team_without_the_api_is_not_shown_live(browser, live_server, settings, plain_static_files, acme_owner):
    team, user = acme_owner
    team.events_api_enabled = False
    team.save()
    page = _page_for(browser, live_server, settings, user, width=1280, height=800)
    page.goto("/events/")
    expect(page.get_by_test_id("live-status")).to_have_text("Not enabled")
    expect(page.locator("#tail-rows")).to_contain_text("your team's Events API is not enabled")
    page.context.close()


def _page_for(browser, live_server, settings, user, *, width: int, height: int) -> Page:
    client = Client()
    client.force_login(user)
    context = browser.new_context(base_url=live_server.url, viewport={"width": width, "height": height})
    context.add_cookies(
        [{"name": settings.SESSION_COOKIE_NAME, "value": client.cookies[settings.SESSION_COOKIE_NAME].value,
          "url": live_server.url}]
    )  # fmt: skip
    context.set_default_timeout(10_000)
    return context.new_page()


LONG_USER_ID = "a-rather-long-user-identifier-0042"


@pytest.mark.parametrize("width, height", [(1280, 800), (390, 844)])
def test_the_events_page_fits_the_screen(browser, live_server, settings, plain_static_files, acme_owner, width, height):
    team, user = acme_owner
    a_day_of_events(team)
    long_ago = timezone.now() - timedelta(days=400)
    store_event(team, "Purchased an Item", {"revenue": "39.95"}, timestamp=long_ago, user_id=LONG_USER_ID)
    page = _page_for(browser, live_server, settings, user, width=width, height=height)
    page.goto(f"/events/?user={LONG_USER_ID}")
    expect(page.locator("#tail-rows tr")).to_have_count(1)
    page.goto("/events/")
    page.get_by_test_id("catalog").locator("summary", has_text="Order Completed").click()
    expect(page.get_by_test_id("catalog").get_by_text("shipping_method")).to_be_visible()
    assert_no_horizontal_scroll(page)
    page.screenshot(path=screenshot_path(f"events-page-{width}.png"), full_page=True)
    page.context.close()
