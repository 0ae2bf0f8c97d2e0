"""Settings → Events API in real headless Chromium: what an Owner, a Member and a team without the API see."""

import re
from collections.abc import Iterator
from datetime import timedelta

import pytest
from django.utils import timezone
from playwright.sync_api import Page, expect

from accounts.models import Membership, Role, Team
from conftest import PASSWORD, make_user
from events.ingest.errors import RATE_LIMITED, ApiError
from events.models import ApiToken, RejectedEvent
from events.tests.browser import assert_no_horizontal_scroll, screenshot_path
from events.tokens import lookup, services
from events.tokens.authentication import authenticate_token

pytest_plugins = ["events.tests.browser"]  # the browser fixture
pytestmark = pytest.mark.browser

TOKEN_FORMAT = re.compile(r"cnv_[0-9A-Za-z]{38}")


@pytest.fixture
def page(browser, live_server, plain_static_files) -> Iterator[Page]:
    context = browser.new_context(base_url=live_server.url, viewport={"width": 1280, "height": 900})
    context.set_default_timeout(10_000)
    page = context.new_page()
    missing_assets = []
    page.on("response", lambda response: missing_assets.append(response.url) if response.status >= 400 else None)
    yield page
    context.close()
    assert [url for url in missing_assets if "/static/" in url] == [], "the page was tested without its CSS or JS"


VIEWPORTS = [
    pytest.param({"width": 1280, "height": 800}, id="1280x800"),
    pytest.param({"width": 390, "height": 844}, id="390x844"),
]
TOKEN_PAGE = re.compile(r"/settings/tokens/\d+/$")


def person_in_team(email: str, role: Role, *, api_enabled: bool = True) -> Team:
    team = Team.objects.create(name="Acme", slug="acme", events_api_enabled=api_enabled)
    Membership.objects.create(user=make_user(email), team=team, role=role)
    return team


def log_in(page: Page, email: str) -> None:
    page.goto("/accounts/login/")
    page.fill('input[name="username"]', email)
    page.fill('input[name="password"]', PASSWORD)
    page.get_by_role("button", name="Log in").click()
    expect(page).to_have_url(re.compile(r"/settings/[a-z-]+/$"))


def create_token(page: Page, name: str) -> None:
    page.goto("/settings/events-api/")
    page.get_by_label("Token name").fill(name)
    page.get_by_role("button", name="Create token").click()


def test_owner_creates_a_token_sees_it_once_and_revokes_it(page, transactional_db):
    team = person_in_team("alice@acme.test", Role.OWNER)
    log_in(page, "alice@acme.test")
    expect(page).to_have_url(re.compile(r"/settings/events-api/$"))  # an Owner with the API lands on it

    create_token(page, "Production stream")

    new_token = page.get_by_test_id("new-token")
    plaintext = new_token.input_value()
    assert TOKEN_FORMAT.fullmatch(plaintext)
    assert authenticate_token(plaintext).team_id == team.pk
    expect(page.get_by_text("Shown once: copy it now.")).to_be_visible()
    expect(page).to_have_url(TOKEN_PAGE)  # the address a reload will GET
    page.get_by_role("link", name="Done: back to Events API").click()
    expect(page).to_have_url(re.compile(r"/settings/events-api/$"))
    page.go_back()  # Back does not bring the plaintext back either
    expect(page.get_by_test_id("token-detail")).to_be_visible()
    assert page.get_by_test_id("new-token").count() == 0

    reloaded = page.reload()
    assert reloaded is not None and reloaded.status == 200
    expect(page.get_by_text("This token was shown once when it was created.")).to_be_visible()
    assert page.get_by_test_id("new-token").count() == 0
    assert plaintext not in page.content()
    assert ApiToken.objects.filter(team=team).count() == 1

    page.get_by_role("button", name="Revoke this token").click()
    expect(page.get_by_text("Revocation is permanent")).to_be_visible()
    page.get_by_role("button", name="Revoke permanently").click()

    expect(page).to_have_url(re.compile(r"/settings/events-api/$"))
    expect(page.get_by_text("revoked. It stops working at once.")).to_be_visible()
    expect(page.get_by_test_id("revoked-token")).to_contain_text("Production stream")
    expect(page.get_by_test_id("revoked-token")).to_contain_text("by alice@acme.test")
    expect(page.get_by_test_id("token-list").get_by_role("button", name="Revoke")).to_have_count(0)
    with pytest.raises(ApiError) as refused:
        authenticate_token(plaintext)
    assert refused.value.status_code == 401


@pytest.mark.parametrize("viewport", VIEWPORTS)
def test_the_new_token_is_first_in_view_focused_copied_and_gone_after_a_reload(page, transactional_db, viewport):
    person_in_team("alice@acme.test", Role.OWNER)
    page.set_viewport_size(viewport)
    page.context.grant_permissions(["clipboard-read", "clipboard-write"])
    log_in(page, "alice@acme.test")

    create_token(page, "Production stream")

    new_token = page.get_by_test_id("new-token")
    expect(new_token).to_be_focused()
    box = new_token.bounding_box()
    assert box is not None
    assert box["y"] >= 0 and box["y"] + box["height"] <= page.evaluate("window.innerHeight")
    copy = page.get_by_role("button", name="Copy", exact=True).first
    copy_box = copy.bounding_box()
    assert copy_box is not None and copy_box["y"] + copy_box["height"] <= page.evaluate("window.innerHeight")
    assert_no_horizontal_scroll(page)
    width = viewport["width"]
    page.screenshot(path=screenshot_path(f"settings-token-created-{width}.png"))

    copy.click()

    expect(page.get_by_role("status").filter(has_text="Copied to the clipboard.")).to_have_count(1)
    plaintext = new_token.input_value()
    assert page.evaluate("navigator.clipboard.readText()") == plaintext

    reloaded = page.reload()

    assert reloaded is not None and reloaded.status == 200
    expect(page).to_have_url(TOKEN_PAGE)
    expect(page.get_by_test_id("token-detail")).to_be_visible()
    assert page.get_by_test_id("new-token").count() == 0
    assert plaintext not in page.content()
    assert_no_horizontal_scroll(page)
    page.screenshot(path=screenshot_path(f"settings-token-page-{width}.png"))


def test_the_token_name_field_is_a_few_tab_presses_from_the_top(page, transactional_db):
    person_in_team("alice@acme.test", Role.OWNER)
    log_in(page, "alice@acme.test")
    page.goto("/settings/events-api/")

    presses = 0
    while presses < 20 and page.evaluate("document.activeElement.id") != "id_token_name":
        page.keyboard.press("Tab")
        presses += 1

    assert page.evaluate("document.activeElement.id") == "id_token_name"
    assert presses < 8


@pytest.mark.parametrize("viewport", VIEWPORTS)
def test_every_settings_page_fits_the_screen(page, transactional_db, viewport):
    team = person_in_team("alice@acme.test", Role.OWNER)
    services.api_token_create(team=team, created_by=team.memberships.get().user, name="Production stream")
    page.set_viewport_size(viewport)
    log_in(page, "alice@acme.test")

    for path in ["/settings/events-api/", "/settings/general/", "/settings/members/", "/settings/warehouse/"]:
        page.goto(path)
        navigation = page.get_by_role("navigation", name="Settings")
        expect(navigation).to_be_visible()
        expect(navigation.locator('[aria-current="page"]')).to_have_count(1)
        assert_no_horizontal_scroll(page)
        name = path.split("/")[2]
        page.screenshot(path=screenshot_path(f"settings-{name}-{viewport['width']}.png"), full_page=True)


def test_member_cannot_create_token(page, transactional_db):
    person_in_team("bob@acme.test", Role.MEMBER)
    log_in(page, "bob@acme.test")
    expect(page).to_have_url(re.compile(r"/settings/general/$"))

    page.get_by_role("navigation", name="Settings").get_by_role("link", name="Events API").click()

    expect(page.get_by_test_id("owners-only")).to_be_visible()
    expect(page.get_by_role("button", name="Create token")).to_have_count(0)
    expect(page.locator('input[name="name"]')).to_have_count(0)


def test_team_without_the_api_cannot_create_token(page, transactional_db):
    person_in_team("alice@acme.test", Role.OWNER, api_enabled=False)
    log_in(page, "alice@acme.test")
    expect(page).to_have_url(re.compile(r"/settings/general/$"))

    page.goto("/settings/events-api/")

    expect(page.get_by_text("Ask the Canvas team to enable the Events API")).to_be_visible()
    expect(page.get_by_role("button", name="Create token")).to_have_count(0)


@pytest.mark.parametrize("width, height", [(1280, 800), (390, 844)], ids=["desktop", "phone"])
def test_a_member_reads_the_refused_events_log_by_token_name(page, transactional_db, live_server, width, height):
    team = person_in_team("bob@acme.test", Role.MEMBER)
    owner = make_user("alice@acme.test")
    Membership.objects.create(user=owner, team=team, role=Role.OWNER)
    live, live_plaintext = services.api_token_create(team=team, created_by=owner, name="Production stream")
    old, old_plaintext = services.api_token_create(team=team, created_by=owner, name="Old laptop")
    services.api_token_revoke(token=old, by=owner)
    lookup.clear_local()
    send = f"{live_server.url}/v1/event"
    assert page.request.post(send, data="{}", headers={"X-Auth-Token": live_plaintext}).status == 415
    json_headers = {"X-Auth-Token": live_plaintext, "Content-Type": "application/json"}
    assert page.request.post(send, data='{"version": 2}', headers=json_headers).status == 400
    assert page.request.post(send, data="{}", headers={"X-Auth-Token": old_plaintext}).status == 401
    # What a rate-limited stream leaves behind after a minute of 429s (the counting is tested in events.ingest).
    RejectedEvent.objects.create(
        team=team, token=live, token_hint=live.hint, endpoint="/v1/batch", status=429, count=1234,
        errors=[{"path": "", "message": RATE_LIMITED[1]}],
        received_at=timezone.now() - timedelta(minutes=1),
    )  # fmt: skip

    page.set_viewport_size({"width": width, "height": height})
    log_in(page, "bob@acme.test")
    page.goto("/settings/events-api/")
    log = page.get_by_test_id("refused-events")

    expect(log.get_by_role("row")).to_have_count(5)  # the header and four refusals
    expect(log.get_by_role("row", name=re.compile("Old laptop"))).to_contain_text(
        f"revoked on {old.revoked_at:%Y-%m-%d}"
    )
    expect(log.get_by_role("row", name=re.compile("415"))).to_contain_text("Production stream")
    expect(log.get_by_role("row", name="Must be the integer 1.")).to_contain_text("400")
    expect(log.get_by_test_id("refusal-count")).to_have_text("\N{MULTIPLICATION SIGN} 1234")
    expect(page.get_by_test_id("revoked-token")).to_contain_text("Old laptop")
    page.locator("#events-api").screenshot(path=screenshot_path(f"settings-refused-events-{width}.png"))
