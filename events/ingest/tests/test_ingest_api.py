"""POST /v1/event (events/ingest/views.py): what an accepted event answers and exactly what is stored."""

import gzip
import json
from datetime import UTC, datetime, timedelta

import redis
from django.conf import settings as django_settings

from events.ingest import errors
from events.models import Event, EventType, RejectedEvent
from events.tokens import lookup, services

DOC_TIMESTAMP = datetime(2012, 12, 2, 0, 30, 8, 276000, tzinfo=UTC)


def event_body(**fields) -> bytes:
    return json.dumps({"version": 1, "type": "event", "event": "Signed Up", **fields}).encode()


def test_it_stores_the_docs_example_exactly(post_event, acme, acme_token, doc_event_body):
    token, plaintext = acme_token
    before = datetime.now(UTC)

    response = post_event(doc_event_body, token=plaintext)

    after = datetime.now(UTC)
    assert response.status_code == 200
    assert response["Content-Type"] == "application/json"
    event = Event.objects.get()
    assert response.json() == {"id": event.id, "duplicate": False}
    assert event.team_id == acme.id
    assert event.token_id == token.id
    assert event.type == EventType.TRACK
    assert event.event == "Purchased an Item"
    assert event.properties == {"revenue": "39.95", "shippingMethod": "2-day"}
    assert event.timestamp == DOC_TIMESTAMP
    assert event.original_timestamp == DOC_TIMESTAMP
    assert event.sent_at is None
    assert before <= event.received_at <= after
    assert event.message_id is None
    assert (event.user_id, event.anonymous_id, event.context) == (None, None, None)


def test_sent_at_corrects_the_client_clock(post_event, acme_token):
    """Segment's rule: the client's clock is off by sentAt - received_at, so the timestamp moves by as much."""
    _, plaintext = acme_token
    client_clock_ahead = timedelta(hours=3, milliseconds=250)
    sent_at = datetime.now(UTC) + client_clock_ahead
    happened = sent_at - timedelta(minutes=5, microseconds=17)

    response = post_event(
        event_body(timestamp=happened.isoformat(), sentAt=sent_at.isoformat(), messageId="skewed"), token=plaintext
    )

    assert response.status_code == 200
    event = Event.objects.get()
    assert event.timestamp == event.received_at - timedelta(minutes=5, microseconds=17)
    assert event.original_timestamp == happened
    assert event.sent_at == sent_at
    assert event.message_id == "skewed"


def test_offsets_are_kept_as_the_same_instant(post_event, acme_token):
    _, plaintext = acme_token

    post_event(event_body(timestamp="2012-12-02T01:30:08.276+01:00"), token=plaintext)

    assert Event.objects.get().timestamp == DOC_TIMESTAMP


def test_without_a_timestamp_the_event_happened_when_received(post_event, acme_token):
    _, plaintext = acme_token

    response = post_event(event_body(), token=plaintext)

    assert response.status_code == 200
    event = Event.objects.get()
    assert event.timestamp == event.received_at
    assert event.original_timestamp is None
    assert event.properties == {}


def test_the_trailing_slash_is_served_without_a_redirect(post_event, acme_token, doc_event_body):
    _, plaintext = acme_token

    response = post_event(doc_event_body, token=plaintext, path="/v1/event/")

    assert response.status_code == 200
    assert response.json() == {"id": Event.objects.get().id, "duplicate": False}


def test_a_resent_message_id_is_a_duplicate_and_stores_nothing(post_event, acme_token):
    _, plaintext = acme_token
    first = post_event(event_body(messageId="m-1", properties={"try": 1}), token=plaintext).json()

    again = post_event(event_body(messageId="m-1", properties={"try": 2}), token=plaintext)

    assert again.status_code == 200
    assert again.json() == {"id": first["id"], "duplicate": True}
    assert first["duplicate"] is False
    assert list(Event.objects.values_list("id", "properties")) == [(first["id"], {"try": 1})]


def test_message_ids_are_deduplicated_per_team(post_event, acme, globex, acme_token, globex_token):
    acme_answer = post_event(event_body(messageId="m-1"), token=acme_token[1]).json()
    globex_answer = post_event(event_body(messageId="m-1"), token=globex_token[1]).json()

    assert acme_answer["duplicate"] is False
    assert globex_answer["duplicate"] is False
    assert acme_answer["id"] != globex_answer["id"]
    assert sorted(Event.objects.values_list("team_id", "message_id")) == sorted([(acme.id, "m-1"), (globex.id, "m-1")])


def test_a_gzip_body_is_accepted(post_event, acme_token, doc_event_body):
    _, plaintext = acme_token

    response = post_event(gzip.compress(doc_event_body), token=plaintext, HTTP_CONTENT_ENCODING="gzip")

    assert response.status_code == 200
    assert Event.objects.get().properties == {"revenue": "39.95", "shippingMethod": "2-day"}


def test_a_cold_token_costs_a_look_up_a_last_used_update_and_the_insert(
    post_event, acme_token, doc_event_body, django_assert_num_queries
):
    _, plaintext = acme_token

    with django_assert_num_queries(3) as captured:
        assert post_event(doc_event_body, token=plaintext).status_code == 200

    statements = [query["sql"].split(None, 1)[0] for query in captured.captured_queries]
    assert statements == ["SELECT", "UPDATE", "WITH"]  # the event and its messageId's claim in one statement


def test_one_ingest_with_a_warm_token_costs_one_query(
    post_event, acme_token, doc_event_body, django_assert_num_queries
):
    _, plaintext = acme_token
    post_event(doc_event_body, token=plaintext)

    with django_assert_num_queries(1) as captured:
        assert post_event(doc_event_body, token=plaintext).status_code == 200

    stored = captured.captured_queries[0]["sql"]
    assert stored.startswith("WITH ") and "INSERT INTO events_event " in stored


def test_a_token_another_worker_looked_up_costs_no_query(
    post_event, acme_token, doc_event_body, django_assert_num_queries
):
    _, plaintext = acme_token
    post_event(doc_event_body, token=plaintext)
    lookup.clear_local()  # as in a worker process that has not seen this token: only Redis knows it

    with django_assert_num_queries(1):
        assert post_event(doc_event_body, token=plaintext).status_code == 200


def test_an_accepted_event_carries_the_rate_limit_headers(post_event, acme_token, doc_event_body):
    _, plaintext = acme_token

    response = post_event(doc_event_body, token=plaintext)

    assert response["RateLimit-Limit"] == str(django_settings.EVENTS_RATE_LIMIT_PER_SECOND)
    assert response["RateLimit-Remaining"] == str(django_settings.EVENTS_RATE_LIMIT_PER_SECOND - 1)
    assert response["RateLimit-Reset"] == "1"
    assert "Retry-After" not in response


def test_past_the_limit_it_answers_429_counted_in_redis(post_event, acme_token, doc_event_body, settings, time_machine):
    _, plaintext = acme_token
    settings.EVENTS_RATE_LIMIT_PER_SECOND = 3

    time_machine.move_to(datetime(2026, 6, 1, 12, 0, 0, 500_000, tzinfo=UTC), tick=False)  # all in one second
    answers = [post_event(doc_event_body, token=plaintext) for _ in range(4)]

    assert [answer.status_code for answer in answers] == [200, 200, 200, 429]
    assert [answer["RateLimit-Remaining"] for answer in answers] == ["2", "1", "0", "0"]
    refused = answers[-1]
    assert refused.json()["error"]["code"] == errors.RATE_LIMITED[0]
    assert refused.json()["error"]["message"] == errors.RATE_LIMITED[1]
    assert refused["Retry-After"] == "1"
    assert refused["RateLimit-Limit"] == "3"
    assert refused["RateLimit-Reset"] == "1"
    assert Event.objects.count() == 3
    # The counter lives in Redis, where every worker and app server counts against the same limit.
    shared = redis.Redis.from_url(settings.REDIS_URL)
    counts = [shared.get(key) for key in shared.scan_iter() if shared.type(key) == b"string"]
    assert b"4" in counts


def test_refused_requests_count_against_the_limit_too(post_event, acme_token, settings, time_machine):
    """Each refusal writes a row to the refused-events log: a tenant sending only bad events is limited all the
    same, and is told so before the body is read (its 429s are counted in one row)."""
    _, plaintext = acme_token
    settings.EVENTS_RATE_LIMIT_PER_SECOND = 3

    time_machine.move_to(datetime(2026, 6, 1, 12, 0, 0, 500_000, tzinfo=UTC), tick=False)  # all in one second
    answers = [post_event(b'{"version": 2}', token=plaintext) for _ in range(5)]

    assert [answer.status_code for answer in answers] == [400, 400, 400, 429, 429]
    assert [answer["RateLimit-Remaining"] for answer in answers] == ["2", "1", "0", "0", "0"]
    assert sorted(RejectedEvent.objects.values_list("status", "count")) == [(400, 1), (400, 1), (400, 1), (429, 2)]


def test_a_token_stops_working_once_its_team_api_is_disabled(
    post_event, acme, alice, acme_token, doc_event_body, django_capture_on_commit_callbacks
):
    _, plaintext = acme_token
    assert post_event(doc_event_body, token=plaintext).status_code == 200

    with django_capture_on_commit_callbacks(execute=True):
        services.events_api_set_enabled(team=acme, enabled=False, by=alice)
    response = post_event(doc_event_body, token=plaintext)

    assert response.status_code == 403
    assert response.json()["error"]["code"] == errors.API_DISABLED[0]
    assert Event.objects.count() == 1


def test_a_token_stops_working_once_revoked(
    post_event, alice, acme_token, doc_event_body, django_capture_on_commit_callbacks
):
    token, plaintext = acme_token
    assert post_event(doc_event_body, token=plaintext).status_code == 200

    with django_capture_on_commit_callbacks(execute=True):
        services.api_token_revoke(token=token, by=alice)
    response = post_event(doc_event_body, token=plaintext)

    assert response.status_code == 401
    assert response.json()["error"]["code"] == errors.UNKNOWN_TOKEN[0]
    assert response["WWW-Authenticate"] == 'X-Auth-Token realm="Canvas Events"'
    assert Event.objects.count() == 1
