"""The journeys of issue 25, walked end to end in headless Chromium at 1280x800 and at 390x844: an Owner from
login to their first event on the Events page; a Member, who sees the tokens and is refused their creation; an
Owner whose team has no Events API, who asks for it, and staff who enable it; staff in no team; an invitee.

Every page a journey reaches has no sideways scroll and no serious or critical axe-core violation, and each step
is photographed (`journey-<persona>-<step>-<width>.png`, into docs/screenshots/ with UPDATE_SCREENSHOTS=1; the
README shows the Owner's). The pages themselves are tested in depth beside their code (events/tokens/tests,
accounts/tests, events/explorer/tests, events/tests/test_site_look_browser.py): here, only what shows that the
walk goes on.
"""

import itertools
import re
from collections.abc import Callable, Iterator
from typing import Self

import pytest
from django.core import mail
from playwright.sync_api import Browser, ViewportSize, expect

from accounts.access import OWNER_ONLY_MESSAGE
from accounts.models import Membership, Role, Team
from conftest import PASSWORD, make_user
from events.tests.browser import (
    DESKTOP,
    PHONE,
    assert_accessible,
    assert_no_horizontal_scroll,
    logged_in_page,
    screenshot,
)
from events.tests.event_factories import drop_team_schemas, sync
from events.tokens.services import api_token_create
from events.tokens.tests.test_onboarding_browser import run_copied

pytest_plugins = ["events.tests.browser"]  # the browser fixture
pytestmark = pytest.mark.browser

SIZES = [pytest.param(DESKTOP, id="desktop"), pytest.param(PHONE, id="phone")]
OWNER, MEMBER, GLOBEX_OWNER, STAFF = "alice@acme.test", "bob@acme.test", "charlie@globex.test", "admin@canvas.test"
INVITEE = "dave@example.test"
INVITATION_LINK = re.compile(r"https?://[^/\s]+(/invitations/[A-Za-z0-9_-]{43}/)")


class Journey:
    """One walk through the site at one size, in a browser window of its own: each step's page is checked and
    photographed, numbered in the order the walk reached it."""

    def __init__(
        self, browser: Browser, base_url: str, persona: str, viewport: ViewportSize, steps: Iterator[int] | None = None
    ) -> None:
        self.browser, self.base_url, self.persona, self.viewport = browser, base_url, persona, viewport
        self.steps = steps or itertools.count(1)
        self.page = logged_in_page(browser, base_url, None, viewport=viewport)
        self.page.context.set_default_timeout(15_000)  # axe-core and the live server share a busy machine
        self.windows = [self]

    def another_window(self) -> Self:
        """Someone else's browser in the same walk (staff, an invitee): its steps carry on the numbering."""
        window = type(self)(self.browser, self.base_url, self.persona, self.viewport, self.steps)
        self.windows.append(window)
        return window

    def check(self) -> None:
        self.page.wait_for_load_state()  # a click's navigation is done before its stylesheets are in
        assert_no_horizontal_scroll(self.page)
        assert_accessible(self.page)

    def reached(self, step: str) -> None:
        """The page of a step: checked, and photographed as the window shows it."""
        self.check()
        name = f"journey-{self.persona}-{next(self.steps):02d}-{step}-{self.viewport['width']}"
        screenshot(self.page, name, docs=True, full_page=False)

    def log_in(self, email: str, *, at: str = "/accounts/login/", step: str = "") -> None:
        """Log in through the form at `at` (the app's or the admin's); the login page is photographed as `step`
        only where the journey is about it, and checked everywhere."""
        self.page.goto(at)
        if step:
            self.reached(step)
        else:
            self.check()
        self.page.fill('input[name="username"]', email)
        self.page.fill('input[name="password"]', PASSWORD)
        self.page.get_by_role("button", name="Log in").click()

    def follow_main_menu(self, link: str) -> None:
        """Follow a link of the header, as a phone's user does too: behind "Menu"."""
        target = self.page.get_by_role("navigation", name="Main").get_by_role("link", name=link, exact=True)
        if not target.is_visible():
            self.page.get_by_text("Menu", exact=True).click()
        target.click()

    def follow_settings_menu(self, link: str) -> None:
        self.page.get_by_role("navigation", name="Settings").get_by_role("link", name=link, exact=True).click()

    def close(self) -> None:
        for window in self.windows:
            window.page.context.close()


@pytest.fixture
def people(transactional_db) -> Iterator[None]:
    """Acme has the Events API, an Owner, a Member and a token; Globex's Owner has no API; staff are in no team."""
    acme = Team.objects.create(name="Acme", slug="acme", events_api_enabled=True)
    globex = Team.objects.create(name="Globex", slug="globex", events_api_enabled=False)
    owner = make_user(OWNER)
    Membership.objects.create(user=owner, team=acme, role=Role.OWNER)
    Membership.objects.create(user=make_user(MEMBER), team=acme, role=Role.MEMBER)
    Membership.objects.create(user=make_user(GLOBEX_OWNER), team=globex, role=Role.OWNER)
    make_user(STAFF, is_staff=True, is_superuser=True)
    api_token_create(team=acme, created_by=owner, name="Production stream")
    yield
    drop_team_schemas()


@pytest.fixture
def journey(browser, live_server, settings, people, plain_static_files) -> Iterator[Callable[..., Journey]]:
    settings.EVENTS_PUBLIC_URL = ""  # the examples aim at the live server itself
    started: list[Journey] = []

    def start(persona: str, viewport: ViewportSize) -> Journey:
        started.append(Journey(browser, live_server.url, persona, viewport))
        return started[-1]

    yield start
    for walk in started:
        walk.close()


@pytest.mark.parametrize("viewport", SIZES)
def test_an_owner_goes_from_login_to_their_first_event_on_the_events_page(journey, viewport):
    owner = journey("owner", viewport)
    page = owner.page
    owner.log_in(OWNER, step="login")
    expect(page).to_have_url(re.compile(r"/settings/events-api/$"))  # an Owner with the API lands on it
    owner.reached("events-api")

    page.get_by_label("Token name").fill("Checkout service")
    page.get_by_role("button", name="Create token").click()
    new_token = page.get_by_test_id("new-token")
    expect(new_token).to_be_focused()
    expect(new_token).to_be_in_viewport()
    expect(page.get_by_test_id("first-event")).to_contain_text("Waiting for your first event…")
    owner.reached("token-created")
    page.evaluate("window.stillTheSamePage = true")

    page.context.grant_permissions(["clipboard-read", "clipboard-write"])
    page.get_by_role("button", name="Copy", exact=True).click()
    expect(page.get_by_text("Copied to the clipboard.")).to_be_visible()
    plaintext = new_token.input_value()
    assert page.evaluate("navigator.clipboard.readText()") == plaintext
    curl = page.get_by_test_id("example-curl")
    curl.get_by_role("button", name=re.compile(r"^Copy")).click()
    expect(curl.get_by_role("button", name=re.compile(r"^Copied"))).to_be_visible()
    copied = page.evaluate("navigator.clipboard.readText()")
    assert plaintext in copied
    curl.scroll_into_view_if_needed()
    owner.reached("curl-copied")

    run_copied("curl", copied)

    status = page.get_by_test_id("first-event")
    expect(status).to_contain_text("Your first event arrived: Purchased an Item")
    assert page.evaluate("window.stillTheSamePage") is True  # no reload
    status.scroll_into_view_if_needed()
    owner.reached("first-event")

    sync()  # what `make run`'s sync process does within seconds: the chart and the catalog count the event

    page.get_by_test_id("first-event-link").click()
    expect(page).to_have_url(re.compile(r"/events/\?event=Purchased\+an\+Item$"))
    row = page.locator("#tail-rows tr", has_text="Purchased an Item")
    expect(row).to_have_count(1)
    expect(page.get_by_test_id("events-counted")).to_have_text("1")
    row.scroll_into_view_if_needed()
    owner.reached("events-page")


@pytest.mark.parametrize("viewport", SIZES)
def test_a_member_sees_the_tokens_and_a_forced_create_gets_the_403_with_a_way_back(journey, viewport):
    member = journey("member", viewport)
    page = member.page
    member.log_in(MEMBER)
    expect(page).to_have_url(re.compile(r"/settings/general/$"))
    member.reached("general")

    member.follow_settings_menu("Events API")
    expect(page.get_by_test_id("token-list")).to_contain_text("Production stream")
    expect(page.get_by_test_id("owners-only")).to_be_visible()
    expect(page.get_by_role("button", name="Create token")).to_have_count(0)
    expect(page.get_by_role("link", name=re.compile(r"^Revoke"))).to_have_count(0)
    member.reached("events-api")

    # What a Member gets by sending the Owners' form anyway: the page has no such form, so it is built here.
    with page.expect_navigation() as navigation:
        page.evaluate(
            """() => {
                const form = document.createElement("form");
                Object.assign(form, {method: "post", action: "/settings/tokens/"});
                form.append(document.querySelector("input[name=csrfmiddlewaretoken]").cloneNode());
                form.append(Object.assign(document.createElement("input"), {name: "name", value: "Mine now"}));
                document.body.append(form);
                form.submit();
            }"""
        )
    assert navigation.value is not None and navigation.value.status == 403
    expect(page.get_by_test_id("error-reason")).to_have_text(OWNER_ONLY_MESSAGE)
    member.reached("forbidden")

    page.get_by_test_id("home-link").click()
    expect(page).to_have_url(re.compile(r"/settings/general/$"))
    member.check()


@pytest.mark.parametrize("viewport", SIZES)
def test_an_owner_without_the_api_asks_for_it_and_creates_a_token_once_staff_enable_it(journey, viewport):
    owner = journey("globex", viewport)
    page = owner.page
    owner.log_in(GLOBEX_OWNER)
    expect(page).to_have_url(re.compile(r"/settings/general/$"))
    owner.check()
    owner.follow_main_menu("Events")
    status = page.get_by_test_id("live-status")
    expect(status).to_have_text("Not enabled")
    status.scroll_into_view_if_needed()
    owner.reached("events-not-enabled")

    owner.follow_main_menu("Settings")
    owner.follow_settings_menu("Events API")
    expect(page.get_by_role("button", name="Request access")).to_be_visible()
    owner.reached("request-access")
    page.get_by_label("What will you send? (optional)").fill("Checkout events from our shop")
    page.get_by_role("button", name="Request access").click()
    expect(page.get_by_test_id("access-requested")).to_contain_text("the Canvas team will get back to you")
    owner.reached("access-requested")

    staff = owner.another_window()
    staff.log_in(STAFF, at="/admin/", step="admin-login")
    expect(staff.page.get_by_role("heading", name="Site administration")).to_be_visible()
    staff.reached("admin")
    staff.page.get_by_role("link", name="Access requests").click()
    request = staff.page.get_by_role("row", name=re.compile("Globex"))
    expect(request).to_contain_text("Checkout events from our shop")
    staff.reached("access-requests")
    request.get_by_role("checkbox").check()
    staff.page.get_by_role("combobox", name="Action").select_option("enable_events_api")
    staff.page.get_by_role("button", name="Go").click()
    expect(staff.page.get_by_text("Events API enabled for 1 team(s).")).to_be_visible()
    staff.reached("api-enabled")

    page.reload()
    page.get_by_label("Token name").fill("Shop")
    page.get_by_role("button", name="Create token").click()
    expect(page.get_by_test_id("new-token")).to_be_focused()
    owner.reached("token-created")


@pytest.mark.parametrize("viewport", SIZES)
def test_staff_in_no_team_land_on_a_page_that_leads_to_the_admin(journey, viewport):
    staff = journey("staff", viewport)
    staff.log_in(STAFF)
    expect(staff.page.get_by_role("heading", name="You are Canvas staff")).to_be_visible()
    staff.reached("no-team")
    staff.page.get_by_role("button", name="Open the admin").click()
    expect(staff.page.get_by_role("heading", name="Site administration")).to_be_visible()
    staff.reached("admin")


@pytest.mark.parametrize("viewport", SIZES)
def test_an_invitee_opens_the_emailed_link_sets_a_password_and_lands_in_the_team(journey, viewport):
    owner = journey("invitee", viewport)
    page = owner.page
    owner.log_in(OWNER)
    expect(page).to_have_url(re.compile(r"/settings/events-api/$"))
    owner.check()
    owner.follow_settings_menu("Members")
    owner.reached("members")
    invite_form = page.locator("form.invite-form")
    invite_form.get_by_label("Email address").fill(INVITEE)
    invite_form.get_by_label("Role").select_option("member")
    invite_form.get_by_role("button", name="Send invitation").click()
    expect(page.get_by_role("status")).to_have_text(re.compile(f"Invitation sent to {INVITEE}"))
    owner.reached("invitation-sent")

    [email] = mail.outbox  # the live server runs in this process, with Django's test (locmem) email backend
    assert email.to == [INVITEE]
    invitee = owner.another_window()
    invitee.page.goto(INVITATION_LINK.search(str(email.body))[1])
    expect(invitee.page).to_have_url(re.compile(r"/invitations/accept/$"))
    expect(invitee.page.get_by_role("heading", name="Join Acme")).to_be_visible()
    invitee.reached("sign-up")
    invitee.page.get_by_label("Your name").fill("Dave Lee")
    invitee.page.get_by_label("Password", exact=True).fill("plum tree under a grey sky")
    invitee.page.get_by_label("Password confirmation").fill("plum tree under a grey sky")
    invitee.page.get_by_role("button", name="Create account and join Acme").click()

    expect(invitee.page).to_have_url(re.compile(r"/settings/general/$"))
    expect(invitee.page.get_by_role("status")).to_have_text("Welcome to Acme: you are a Member.")
    invitee.reached("joined")
