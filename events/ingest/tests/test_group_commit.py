"""Concurrent single events share transactions, and each answer follows the commit of its own row."""

from concurrent.futures import ThreadPoolExecutor

import orjson
import pytest
import requests
from django.db import connection

from events.ingest import group_commit
from events.models import Event

# A committer that waited for company would wait this long; one that did not answers within NOT_WAITING_SECONDS
# even on a busy machine.
PATIENCE_SECONDS = 120
NOT_WAITING_SECONDS = 30

pytestmark = [pytest.mark.live, pytest.mark.django_db(transaction=True)]


def test_concurrent_events_are_committed_together_and_each_is_answered_after_its_commit(ingest_live_server, acme_token):
    token, plaintext = acme_token
    session = requests.Session()

    def send(i: int) -> dict:
        body = {"version": 1, "type": "event", "event": "Concurrent", "properties": {"i": i}, "messageId": f"gc-{i}"}
        response = session.post(
            f"{ingest_live_server.url}/v1/event",
            data=orjson.dumps(body),
            headers={"Content-Type": "application/json", "X-Auth-Token": plaintext},
            timeout=30,
        )
        answer = response.json()
        # Committed before the answer: a fresh connection can already see the row.
        answer["visible"] = Event.objects.filter(pk=answer["id"]).exists()
        connection.close()  # this pool thread's own connection
        return answer

    committer = group_commit.committer()
    commits_before, rows_before = committer.commits, committer.rows
    with ThreadPoolExecutor(16) as pool:
        answers = list(pool.map(send, range(200)))

    assert all(a["visible"] and a["duplicate"] is False for a in answers)
    assert Event.objects.filter(team=token.team, event="Concurrent").count() == 200
    assert committer.rows - rows_before == 200
    # Grouping happened: fewer transactions than events.
    assert committer.commits - commits_before < 200


def test_a_resent_message_id_is_a_duplicate_through_the_committer(ingest_live_server, acme_token):
    token, plaintext = acme_token
    body = orjson.dumps({"version": 1, "type": "event", "event": "Once", "messageId": "only-once"})
    headers = {"Content-Type": "application/json", "X-Auth-Token": plaintext}

    first = requests.post(f"{ingest_live_server.url}/v1/event", data=body, headers=headers, timeout=30).json()
    second = requests.post(f"{ingest_live_server.url}/v1/event", data=body, headers=headers, timeout=30).json()

    assert first["duplicate"] is False
    assert second == {"id": first["id"], "duplicate": True}
    assert Event.objects.filter(team=token.team, message_id="only-once").count() == 1


def _row(token, message_id: str) -> tuple:
    from django.utils import timezone

    from events.ingest.storage import event_row
    from events.ingest.validation import validate_event

    received_at = timezone.now()
    payload, problems = validate_event(
        {"version": 1, "type": "event", "event": "Announced", "messageId": message_id}, received_at=received_at
    )
    assert problems == []
    assert payload is not None
    return event_row(team_id=token.team_id, token_id=token.id, payload=payload, received_at=received_at)


@pytest.fixture
def patient_committer():
    """A committer of its own that would wait up to a minute for company."""
    committer = group_commit.GroupCommitter(wait_seconds=PATIENCE_SECONDS)
    yield committer
    committer.close()


def _submit_announced(pool, committer, token, message_id: str, *, arrival=None):
    """A request's row handed to the committer from a thread of the pool, announced as the pipeline does."""
    arrival = arrival or group_commit.Arrival(committer)
    return pool.submit(committer.submit, _row(token, message_id), arrival=arrival)


def test_with_no_request_announced_a_row_is_committed_without_waiting_for_company(acme_token, patient_committer):
    token, _ = acme_token
    with ThreadPoolExecutor(1) as pool:
        stored = _submit_announced(pool, patient_committer, token, "alone")
        # Long before the PATIENCE_SECONDS it may wait: nobody else was on the way.
        assert stored.result(timeout=NOT_WAITING_SECONDS).duplicate is False
    assert Event.objects.filter(team=token.team, message_id="alone").exists()


def test_the_committer_waits_for_an_announced_request_and_commits_both_rows_together(acme_token, patient_committer):
    token, _ = acme_token
    late = group_commit.Arrival(patient_committer)  # announced: its row is on the way
    with ThreadPoolExecutor(2) as pool:
        first = _submit_announced(pool, patient_committer, token, "first")
        second = _submit_announced(pool, patient_committer, token, "second", arrival=late)
        assert first.result(timeout=NOT_WAITING_SECONDS).duplicate is False
        assert second.result(timeout=NOT_WAITING_SECONDS).duplicate is False

    assert (patient_committer.commits, patient_committer.rows) == (1, 2)


def test_a_request_that_brings_no_row_does_not_hold_the_commit(acme_token, patient_committer):
    token, _ = acme_token
    refused = group_commit.Arrival(patient_committer)  # announced, then refused before it had a row
    refused.done()
    with ThreadPoolExecutor(1) as pool:
        stored = _submit_announced(pool, patient_committer, token, "kept")
        assert stored.result(timeout=NOT_WAITING_SECONDS).duplicate is False
    assert patient_committer.coming == 0
