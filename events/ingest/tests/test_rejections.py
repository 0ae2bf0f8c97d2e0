"""The refused-events log (events/ingest/rejections.py), through both adapters: every refusal once a token is
recognised is logged against that token; refusals nothing else limits (429s, a revoked token's 401s, a disabled
team's 403s) are counted in one row per burst, written at most COUNT_WRITES_PER_SECOND times a second per worker."""

import json
from datetime import UTC, datetime, timedelta

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor
from django.test import Client

from events.ingest import errors
from events.ingest.pipeline import EVENT_BODY_LIMIT
from events.ingest.rejections import BURST_GAP, COUNT_WRITES_PER_SECOND, KEEP_PER_TEAM
from events.ingest.validation import MAX_BATCH_EVENTS
from events.models import ApiToken, Event, RejectedEvent
from events.tokens import services

START = datetime(2026, 6, 1, 12, 0, 0, 500_000, tzinfo=UTC)
FLOOD = 500


def bad_event() -> bytes:
    return json.dumps({"version": 2, "type": "event", "event": "Signed Up"}).encode()


@pytest.fixture
def frozen(time_machine):
    """The wall clock stopped at START: a flood arrives within one rate-limit window."""
    time_machine.move_to(START, tick=False)
    return time_machine


@pytest.fixture
def revoked_token(acme_token, alice, frozen, django_capture_on_commit_callbacks):
    """(ApiToken, plaintext) of Acme's token, revoked by Alice on START (every worker knows at once)."""
    token, plaintext = acme_token
    with django_capture_on_commit_callbacks(execute=True):
        services.api_token_revoke(token=token, by=alice)
    token.refresh_from_db()
    return token, plaintext


def logged() -> list[tuple]:
    return list(RejectedEvent.objects.order_by("id").values_list("status", "token_id", "endpoint", "count"))


TOO_MANY_EVENTS = json.dumps({"batch": [{"type": "track", "event": "x", "userId": "u"}] * (MAX_BATCH_EVENTS + 1)})


@pytest.mark.parametrize(
    "path, body, content_type, status, code",
    [
        pytest.param(
            "/v1/event", b"version=1", "application/x-www-form-urlencoded", 415, errors.UNSUPPORTED_MEDIA_TYPE, id="415"
        ),
        pytest.param(
            "/v1/event", b"x" * (EVENT_BODY_LIMIT + 1), "application/json", 413, errors.BODY_TOO_LARGE, id="413-body"
        ),
        pytest.param("/v1/batch", TOO_MANY_EVENTS, "application/json", 413, errors.BODY_TOO_LARGE, id="413-batch"),
        pytest.param("/v1/event", bad_event(), "application/json", 400, errors.INVALID_PAYLOAD, id="400"),
    ],
)
def test_each_refusal_of_a_recognised_token_is_logged_against_it(
    client, answered_by, acme_token, path, body, content_type, status, code
):
    token, plaintext = acme_token

    response = client.post(path, body, content_type=content_type, headers={"X-Auth-Token": plaintext})

    answered_by(response)
    assert response.status_code == status
    assert response.json()["error"]["code"] == code[0]
    entry = RejectedEvent.objects.get()
    assert (entry.status, entry.token_id, entry.token_hint, entry.endpoint, entry.count) == (
        status,
        token.id,
        token.hint,
        path,
        1,
    )
    assert entry.errors  # why, in the API's own words or with the JSON paths
    assert plaintext[4:36] not in str(entry.errors) + entry.payload


def test_bad_events_are_still_listed_one_by_one(post_event, acme_token):
    token, plaintext = acme_token

    for _ in range(3):
        assert post_event(bad_event(), token=plaintext).status_code == 400

    assert logged() == [(400, token.id, "/v1/event", 1)] * 3
    assert RejectedEvent.objects.first().errors == [{"path": "/version", "message": "Must be the integer 1."}]


def test_a_flood_of_429s_is_one_counted_row_of_bounded_writes(
    post_event, acme_token, doc_event_body, settings, frozen, django_assert_num_queries
):
    token, plaintext = acme_token
    settings.EVENTS_RATE_LIMIT_PER_SECOND = 0  # every request is refused, however long the flood takes
    for _ in range(COUNT_WRITES_PER_SECOND):
        assert post_event(doc_event_body, token=plaintext).status_code == 429
    assert logged() == [(429, token.id, "/v1/event", COUNT_WRITES_PER_SECOND)]  # a few are counted exactly

    with django_assert_num_queries(0):  # past them, counted in the worker, not written one by one
        statuses = {post_event(doc_event_body, token=plaintext).status_code for _ in range(FLOOD)}

    assert statuses == {429}
    assert logged() == [(429, token.id, "/v1/event", COUNT_WRITES_PER_SECOND)]

    # A second later the burst goes on: its next 429 writes the worker's count into the same row.
    frozen.move_to(START + timedelta(seconds=1), tick=False)
    assert post_event(doc_event_body, token=plaintext).status_code == 429

    assert logged() == [(429, token.id, "/v1/event", COUNT_WRITES_PER_SECOND + FLOOD + 1)]
    entry = RejectedEvent.objects.get()
    assert (entry.received_at, entry.last_received_at) == (START, START + timedelta(seconds=1))
    assert entry.errors == [{"path": "", "message": errors.RATE_LIMITED[1]}]
    assert not Event.objects.exists()


def test_a_revoked_token_is_refused_as_unknown_and_logged_by_name(client, answered_by, revoked_token):
    token, plaintext = revoked_token

    response = client.post(
        "/v1/event", bad_event(), content_type="application/json", headers={"X-Auth-Token": plaintext}
    )

    answered_by(response)
    assert response.status_code == 401
    assert response.json()["error"]["code"] == errors.UNKNOWN_TOKEN[0]  # the client learns nothing more
    assert logged() == [(401, token.id, "/v1/event", 1)]
    assert RejectedEvent.objects.get().payload == ""  # the body is not read, let alone kept


def test_replaying_a_revoked_token_cannot_grow_the_log(post_event, revoked_token, django_assert_num_queries):
    token, plaintext = revoked_token
    for _ in range(COUNT_WRITES_PER_SECOND):
        assert post_event(bad_event(), token=plaintext).status_code == 401

    with django_assert_num_queries(0):
        statuses = {post_event(bad_event(), token=plaintext).status_code for _ in range(FLOOD)}

    assert statuses == {401}
    assert logged() == [(401, token.id, "/v1/event", COUNT_WRITES_PER_SECOND)]


def test_a_burst_ends_after_a_quiet_hour_and_the_next_starts_a_row(post_event, revoked_token, frozen):
    token, plaintext = revoked_token
    post_event(bad_event(), token=plaintext)
    frozen.move_to(START + timedelta(minutes=59), tick=False)
    post_event(bad_event(), token=plaintext)

    frozen.move_to(START + timedelta(minutes=59) + BURST_GAP, tick=False)
    post_event(bad_event(), token=plaintext)

    assert logged() == [(401, token.id, "/v1/event", 2), (401, token.id, "/v1/event", 1)]


def test_a_disabled_teams_token_is_counted_too(
    post_event, acme, alice, acme_token, doc_event_body, django_capture_on_commit_callbacks
):
    token, plaintext = acme_token
    with django_capture_on_commit_callbacks(execute=True):
        services.events_api_set_enabled(team=acme, enabled=False, by=alice)

    assert post_event(doc_event_body, token=plaintext).status_code == 403

    assert logged() == [(403, token.id, "/v1/event", 1)]


def test_counted_rows_are_capped_with_the_rest(post_event, acme, acme_token, revoked_token, frozen):
    _, plaintext = revoked_token
    for minute in range(KEEP_PER_TEAM + 5):  # each an hour and more apart: a burst each
        frozen.move_to(START + minute * (BURST_GAP + timedelta(seconds=1)), tick=False)
        post_event(bad_event(), token=plaintext)

    assert RejectedEvent.objects.filter(team=acme).count() == KEEP_PER_TEAM


def test_the_log_names_tokens_and_their_revocation_for_members_only(
    client, acme_token, revoked_token, bob, charlie, globex_token, doc_event_body, settings
):
    """End to end: what the adapters logged is what a Member reads; another team sees none of it."""
    token, plaintext = revoked_token
    for _ in range(3):
        client.post("/v1/event", doc_event_body, content_type="application/json", headers={"X-Auth-Token": plaintext})
    _, globex_plaintext = globex_token
    client.post("/v1/event", b"{}", content_type="text/plain", headers={"X-Auth-Token": globex_plaintext})

    member = Client()
    member.force_login(bob)
    page = member.get("/settings/events-api/").content.decode()
    log = page[page.index('data-testid="refused-events"') :]
    assert "Production stream" in log
    assert token.hint in log
    assert "401" in log and "Unauthorized" in log
    assert f"revoked on {START:%Y-%m-%d}" in log
    assert "Globex stream" not in page and "415" not in log

    outsider = Client()
    outsider.force_login(charlie)
    page = outsider.get("/settings/events-api/").content.decode()
    assert "Production stream" not in page and token.hint not in page
    assert "Globex stream" in page[page.index('data-testid="refused-events"') :]


@pytest.mark.django_db(transaction=True)
def test_refusals_logged_before_the_release_get_their_token_when_it_migrates(acme, alice, acme_token):
    token, _ = acme_token
    twin, _ = services.api_token_create(team=acme, created_by=alice, name="Twin")
    ApiToken.objects.filter(pk=twin.pk).update(hint="cnv_…same")
    services.api_token_create(team=acme, created_by=alice, name="Other twin")
    ApiToken.objects.filter(name="Other twin").update(hint="cnv_…same")
    before = [("events", "0011_daily_event_volume_for_the_30_day_chart")]
    executor = MigrationExecutor(connection)
    executor.migrate(before)
    OldRejectedEvent = executor.loader.project_state(before).apps.get_model("events", "RejectedEvent")
    for hint in [token.hint, "cnv_…same"]:
        OldRejectedEvent.objects.create(
            team_id=acme.pk, token_hint=hint, endpoint="/v1/event", status=400, received_at=START, errors=[]
        )

    executor = MigrationExecutor(connection)
    executor.migrate(executor.loader.graph.leaf_nodes())

    assert list(RejectedEvent.objects.order_by("id").values_list("token_id", "last_received_at", "count")) == [
        (token.id, START, 1),
        (None, START, 1),  # two of the team's tokens share that hint: which one sent it is not known
    ]
