"""Members by invitation, access requests and the no-team page in real headless Chromium, at 1280 and 390 px."""

import re
from collections.abc import Iterator

import pytest
from django.core import mail
from playwright.sync_api import Page, ViewportSize, expect

from accounts.models import Membership, Role, Team
from conftest import PASSWORD, make_user
from events.models import AccessRequest
from events.tests.browser import assert_no_horizontal_scroll, screenshot_path

pytest_plugins = ["events.tests.browser"]  # the browser fixture
pytestmark = pytest.mark.browser

WIDTHS: dict[str, ViewportSize] = {"desktop": {"width": 1280, "height": 800}, "phone": {"width": 390, "height": 844}}
INVITATION_LINK = re.compile(r"https?://[^/\s]+(/invitations/[A-Za-z0-9_-]{43}/)")
NEW_PASSWORD = "plum tree under a grey sky"


@pytest.fixture
def page(browser, live_server, plain_static_files) -> Iterator[Page]:
    context = browser.new_context(base_url=live_server.url, viewport=WIDTHS["desktop"])
    context.set_default_timeout(10_000)
    yield context.new_page()
    context.close()


def log_in(page: Page, email: str) -> None:
    page.goto("/accounts/login/")
    page.fill('input[name="username"]', email)
    page.fill('input[name="password"]', PASSWORD)
    page.get_by_role("button", name="Log in").click()
    expect(page).to_have_url(re.compile(r"/settings/([a-z-]+/)?$"))  # a user in no team stays on /settings/


def look(page: Page, name: str, *, full_page: bool = False) -> None:
    """Screenshot the page at both widths; the page itself must never scroll sideways."""
    for width, viewport in WIDTHS.items():
        page.set_viewport_size(viewport)
        assert_no_horizontal_scroll(page)
        page.screenshot(path=screenshot_path(f"{name}-{width}.png"), full_page=full_page)
    page.set_viewport_size(WIDTHS["desktop"])


def test_an_owner_invites_and_a_new_user_joins_through_the_link(page, browser, live_server, transactional_db):
    team = Team.objects.create(name="Acme", slug="acme", events_api_enabled=True)
    Membership.objects.create(user=make_user("alice@acme.test"), team=team, role=Role.OWNER)
    log_in(page, "alice@acme.test")
    page.goto("/settings/members/")

    invite_form = page.locator("form.invite-form")
    invite_form.get_by_label("Email address").fill("dave@example.test")
    invite_form.get_by_label("Role").select_option("member")
    invite_form.get_by_role("button", name="Send invitation").click()

    expect(page.get_by_role("status")).to_have_text(re.compile("Invitation sent to dave@example.test"))
    expect(page.get_by_test_id("invitations")).to_contain_text("invited by alice@acme.test")
    for width, viewport in WIDTHS.items():
        page.set_viewport_size(viewport)
        page.locator(".settings-page article").screenshot(path=screenshot_path(f"members-invitations-{width}.png"))

    [email] = mail.outbox
    path = INVITATION_LINK.search(str(email.body))[1]
    invitee = browser.new_page(base_url=live_server.url, viewport=WIDTHS["desktop"])
    invitee.set_default_timeout(10_000)
    invitee.goto(path)
    expect(invitee).to_have_url(re.compile(r"/invitations/accept/$"))
    expect(invitee.get_by_role("heading", name="Join Acme")).to_be_visible()
    look(invitee, "invitation-sign-up")

    invitee.get_by_label("Your name").fill("Dave Lee")
    invitee.get_by_label("Password", exact=True).fill(NEW_PASSWORD)
    invitee.get_by_label("Password confirmation").fill(NEW_PASSWORD)
    invitee.get_by_role("button", name="Create account and join Acme").click()

    expect(invitee).to_have_url(re.compile(r"/settings/general/$"))
    expect(invitee.get_by_role("status")).to_have_text("Welcome to Acme: you are a Member.")
    assert Membership.objects.get(team=team, user__email="dave@example.test").role == Role.MEMBER

    invitee.goto(path)  # the link worked once
    expect(invitee.get_by_role("heading", name="This invitation was already used")).to_be_visible()
    look(invitee, "invitation-used")
    invitee.context.close()


def test_removing_a_member_asks_for_confirmation(page, transactional_db):
    team = Team.objects.create(name="Acme", slug="acme", events_api_enabled=True)
    Membership.objects.create(user=make_user("alice@acme.test"), team=team, role=Role.OWNER)
    Membership.objects.create(user=make_user("bob@acme.test", full_name="Bob Stone"), team=team, role=Role.MEMBER)
    log_in(page, "alice@acme.test")
    page.goto("/settings/members/")

    page.get_by_role("button", name="Remove bob@acme.test").click()
    expect(page.get_by_role("heading", name="Remove bob@acme.test from Acme?")).to_be_visible()
    look(page, "member-remove-confirm")
    page.get_by_role("button", name="Remove from Acme").click()

    expect(page.get_by_role("status")).to_have_text("bob@acme.test removed from the team.")
    assert not Membership.objects.filter(user__email="bob@acme.test").exists()


def test_an_owner_requests_access_and_staff_enable_it(page, live_server, transactional_db):
    team = Team.objects.create(name="Globex", slug="globex", events_api_enabled=False)
    Membership.objects.create(user=make_user("owner@globex.test"), team=team, role=Role.OWNER)
    make_user("admin@canvas.test", is_staff=True, is_superuser=True)
    log_in(page, "owner@globex.test")
    page.goto("/settings/events-api/")

    notice = page.get_by_test_id("api-not-enabled")
    notice.screenshot(path=screenshot_path("request-access-desktop.png"))
    page.get_by_label("What will you send? (optional)").fill("Checkout events from our shop")
    page.get_by_role("button", name="Request access").click()

    expect(page.get_by_test_id("access-requested")).to_contain_text("the Canvas team will get back to you")
    notice.screenshot(path=screenshot_path("request-access-pending-desktop.png"))

    staff = page.context.browser.new_page(base_url=live_server.url, viewport=WIDTHS["desktop"])
    staff.set_default_timeout(10_000)
    log_in(staff, "admin@canvas.test")
    expect(staff.get_by_role("heading", name="You are Canvas staff")).to_be_visible()
    expect(staff.get_by_text("1 team is waiting for the Events API.")).to_be_visible()
    look(staff, "no-team-staff")
    staff.get_by_role("button", name="See access requests").click()
    staff.get_by_role("row", name=re.compile("Globex")).get_by_role("checkbox").check()
    staff.locator('select[name="action"]').select_option("enable_events_api")
    staff.get_by_role("button", name="Go").click()
    expect(staff.get_by_text("Events API enabled for 1 team(s).")).to_be_visible()
    staff.context.close()

    assert AccessRequest.objects.get().resolved_at is not None
    page.reload()
    expect(page.get_by_role("button", name="Create token")).to_be_visible()


def test_a_user_without_a_team_is_told_how_to_get_one(page, transactional_db):
    make_user("loner@example.test")
    log_in(page, "loner@example.test")
    expect(page.get_by_role("heading", name="You are not a member of any team yet")).to_be_visible()
    look(page, "no-team-user")
