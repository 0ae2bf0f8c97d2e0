"""Every page of the site, in headless Chromium, as an Owner, a Member and another team's Owner, on a phone
and on a desktop (and in dark mode for the Owner): no sideways scroll, axe-core clean, a one-row header.

Screenshots of each go under var/screenshots/look/; the README's few (DOCS_SCREENSHOTS) are refreshed in
docs/screenshots/ with UPDATE_SCREENSHOTS=1.
"""

import re
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from playwright.sync_api import Page, expect

from accounts.access import OWNER_ONLY_MESSAGE
from accounts.models import Membership, Role, Team, User
from conftest import make_user
from events.models import CatalogEvent
from events.tests.browser import (
    DESKTOP,
    PHONE,
    assert_accessible,
    assert_no_horizontal_scroll,
    logged_in_page,
    screenshot,
)
from events.tests.event_factories import drop_team_schemas, store_event, sync
from events.tokens.services import api_token_create

pytest_plugins = ["events.tests.browser"]  # the browser fixture
pytestmark = pytest.mark.browser

SIZES = {"phone": PHONE, "desktop": DESKTOP}
# The README's screenshots of the look, by the name each page's screenshot has here.
DOCS_SCREENSHOTS = {
    "look/owner-settings-events-api-phone": "phone-settings",
    "look/owner-events-desktop-dark": "dark-events",
    "look/owner-menu-phone": "phone-menu",
    "look/member-forbidden-phone": "error-403-phone",
}


def shoot(page: Page, name: str) -> None:
    screenshot(page, name)
    if name in DOCS_SCREENSHOTS:
        screenshot(page, DOCS_SCREENSHOTS[name], docs=True, full_page=False)  # the first screen


@dataclass
class Site:
    owner: User
    member: User
    other_owner: User  # Globex's, whose Events API is off
    token_id: int
    catalog_entry_id: int


@pytest.fixture
def site(transactional_db, plain_static_files) -> Iterator[Site]:
    acme = Team.objects.create(name="Acme Corporation International", slug="acme", events_api_enabled=True)
    globex = Team.objects.create(name="Globex", slug="globex", events_api_enabled=False)
    owner, member, other_owner = (make_user(e) for e in ("alice@acme.test", "bob@acme.test", "charlie@globex.test"))
    Membership.objects.create(user=owner, team=acme, role=Role.OWNER)
    Membership.objects.create(user=member, team=acme, role=Role.MEMBER)
    Membership.objects.create(user=other_owner, team=globex, role=Role.OWNER)
    token, _ = api_token_create(team=acme, created_by=owner, name="Production stream of the checkout service")
    long_value = "a-rather-long-value-without-any-space-" * 4
    store_event(acme, "Order Completed", {"revenue": "39.95", "shippingMethod": "2-day", "note": long_value})
    store_event(acme, "Product Viewed", {"product_id": "sku-120", "price": 49.5}, user_id=long_value)
    store_event(acme, "A very long event name that someone chose for their checkout funnel step")
    sync()
    entry = CatalogEvent.objects.get(team=acme, name="Order Completed")
    yield Site(owner, member, other_owner, token.pk, entry.pk)
    drop_team_schemas()


def pages_of(persona: str, site: Site) -> list[tuple[str, str, int]]:
    """(name, path, status) of each page the persona can reach; the error pages are reached on purpose."""
    common = [
        ("settings-general", "/settings/general/", 200),
        ("settings-members", "/settings/members/", 200),
        ("settings-events-api", "/settings/events-api/", 200),
        ("settings-warehouse", "/settings/warehouse/", 200),
        ("events", "/events/", 200),
        ("password-change", "/accounts/password/", 200),
        ("password-changed", "/accounts/password/done/", 200),
        ("not-found", "/no-such-page/", 404),
        ("method-not-allowed", "/teams/acme/switch/", 405),  # a form's address, opened
    ]
    if persona == "owner":
        return [
            *common,
            ("catalog-event", f"/events/catalog/{site.catalog_entry_id}/", 200),
            ("token", f"/settings/tokens/{site.token_id}/", 200),
            ("token-revoke", f"/settings/tokens/{site.token_id}/revoke/confirm/", 200),
        ]
    if persona == "member":
        return [*common, ("catalog-event", f"/events/catalog/{site.catalog_entry_id}/", 200)]
    return common


def check_page(page: Page, name: str) -> list[str]:
    """The checks every page passes; the failures, to report every page's at once."""
    problems = []
    for check in (assert_no_horizontal_scroll, assert_accessible, assert_header_on_one_row):
        try:
            check(page)
        except AssertionError as failure:
            problems.append(f"{name}: {failure}")
    return problems


def assert_header_on_one_row(page: Page) -> None:
    brand = page.locator("header .brand").bounding_box()
    last = page.locator("header nav > :last-child").bounding_box()
    assert brand and last, "the header has its brand and its menu"
    assert abs((brand["y"] + brand["height"] / 2) - (last["y"] + last["height"] / 2)) < 8, (
        f"the header of {page.url} wraps: brand at {brand}, menu at {last}"
    )


@pytest.mark.parametrize(
    ("persona", "size", "dark"),
    [
        pytest.param("owner", "phone", False, id="owner-phone"),
        pytest.param("owner", "desktop", False, id="owner-desktop"),
        pytest.param("owner", "phone", True, id="owner-phone-dark"),
        pytest.param("owner", "desktop", True, id="owner-desktop-dark"),
        pytest.param("member", "phone", False, id="member-phone"),
        pytest.param("member", "desktop", False, id="member-desktop"),
        pytest.param("other_owner", "phone", False, id="other-owner-phone"),
        pytest.param("other_owner", "desktop", False, id="other-owner-desktop"),
    ],
)
def test_every_page_fits_the_screen_and_passes_axe(browser, live_server, site, persona, size, dark):
    page = logged_in_page(browser, live_server.url, getattr(site, persona), viewport=SIZES[size], dark=dark)
    problems = []
    page.on("response", lambda r: problems.append(f"missing {r.url}") if "/static/" in r.url and r.status >= 400 else 0)
    page.on("pageerror", lambda error: problems.append(f"script error: {error}"))
    page.on("console", lambda m: problems.append(m.text) if "Content Security Policy" in m.text else None)
    for name, path, status in pages_of(persona, site):
        response = page.goto(path)
        assert response is not None and response.status == status, f"{path} answered {response and response.status}"
        problems += check_page(page, f"{path} ({name})")
        shoot(page, f"look/{persona}-{name}-{size}{'-dark' if dark else ''}")
    page.context.close()
    assert problems == [], "\n".join(problems)


@pytest.mark.parametrize("size", SIZES)
def test_login_page_fits_the_screen_and_passes_axe(browser, live_server, site, size):
    page = logged_in_page(browser, live_server.url, None, viewport=SIZES[size])
    page.goto("/accounts/login/")
    problems = check_page(page, "login")
    shoot(page, f"look/login-{size}")
    page.context.close()
    assert problems == [], "\n".join(problems)


@pytest.mark.parametrize("size", SIZES)
def test_the_new_token_page_fits_the_screen_and_passes_axe(browser, live_server, site, size):
    page = logged_in_page(browser, live_server.url, site.owner, viewport=SIZES[size])
    page.goto("/settings/events-api/")
    create_button = page.get_by_role("button", name="Create token")
    page.locator("form", has=create_button).get_by_label("Token name").fill("Staging stream")
    create_button.click()
    expect(page.get_by_test_id("new-token")).to_be_visible()
    problems = check_page(page, "token created")
    shoot(page, f"look/owner-token-created-{size}")
    page.context.close()
    assert problems == [], "\n".join(problems)


@pytest.mark.parametrize("size", SIZES)
def test_members_forced_post_gets_the_styled_403_with_the_reason_and_a_way_back(browser, live_server, site, size):
    page = logged_in_page(browser, live_server.url, site.member, viewport=SIZES[size])
    page.goto("/settings/")
    # What a Member gets by sending an Owner's form anyway: the page has no such form, so it is built here.
    with page.expect_navigation() as navigation:
        page.evaluate(
            """() => {
                const form = Object.assign(document.createElement("form"), {method: "post", action: "/settings/team/"});
                form.append(document.querySelector("input[name=csrfmiddlewaretoken]").cloneNode());
                form.append(Object.assign(document.createElement("input"), {name: "name", value: "Taken over"}));
                document.body.append(form);
                form.submit();
            }"""
        )
    assert navigation.value is not None and navigation.value.status == 403
    expect(page.get_by_role("heading", level=1)).to_have_text(re.compile(r"You can.t do that here"))
    expect(page.get_by_test_id("error-reason")).to_have_text(OWNER_ONLY_MESSAGE)
    problems = check_page(page, "403")
    shoot(page, f"look/member-forbidden-{size}")
    page.get_by_test_id("home-link").click()
    expect(page.get_by_role("heading", name="Settings", level=1)).to_be_visible()
    page.context.close()
    assert problems == [], "\n".join(problems)


@pytest.mark.parametrize("dark", [False, True], ids=["light", "dark"])
def test_the_phone_menu_opens_and_leads_to_each_page(browser, live_server, site, dark):
    page = logged_in_page(browser, live_server.url, site.owner, viewport=PHONE, dark=dark)
    page.goto("/settings/")
    events_link = page.get_by_role("link", name="Events", exact=True)
    expect(events_link).to_be_hidden()
    page.get_by_text("Menu", exact=True).click()
    expect(events_link).to_be_visible()
    page.get_by_role("navigation", name="Main").get_by_text("alice@acme.test").click()
    expect(page.get_by_role("link", name="Change password")).to_be_visible()
    problems = check_page(page, "menu open")
    shoot(page, f"look/owner-menu-phone{'-dark' if dark else ''}")
    events_link.click()
    expect(page).to_have_url(f"{live_server.url}/events/")
    page.context.close()
    assert problems == [], "\n".join(problems)


@pytest.mark.parametrize("dark", [False, True], ids=["light", "dark"])
def test_keyboard_users_skip_to_the_content_and_see_where_the_focus_is(browser, live_server, site, dark):
    page = logged_in_page(browser, live_server.url, site.owner, viewport=DESKTOP, dark=dark)
    page.goto("/settings/")
    page.keyboard.press("Tab")
    skip_link = page.get_by_role("link", name="Skip to content")
    expect(skip_link).to_be_focused()
    expect(skip_link).to_be_in_viewport()
    page.keyboard.press("Enter")
    page.keyboard.press("Tab")  # the first link of the page's content, past the header
    focused = page.evaluate(
        "() => ({inHeader: Boolean(document.activeElement.closest('header')),"
        " outline: getComputedStyle(document.activeElement).outlineStyle})"
    )
    page.context.close()
    assert focused == {"inHeader": False, "outline": "solid"}


def test_the_header_stays_one_row_from_phone_to_desktop(browser, live_server, site):
    page = logged_in_page(browser, live_server.url, site.owner, viewport=PHONE)
    page.goto("/settings/")
    problems = []
    for width in (320, 390, 600, 768, 820, 1024, 1025, 1100, 1280):
        page.set_viewport_size({"width": width, "height": 800})
        for check in (assert_header_on_one_row, assert_no_horizontal_scroll):
            try:
                check(page)
            except AssertionError as failure:
                problems.append(f"{width} px: {failure}")
    page.context.close()
    assert problems == [], "\n".join(problems)
