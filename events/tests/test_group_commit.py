"""Concurrent single events share transactions, and each answer follows the commit of its own row."""

from concurrent.futures import ThreadPoolExecutor

import orjson
import pytest
import requests
from django.db import connection

from events import group_commit
from events.models import Event

pytestmark = [pytest.mark.live, pytest.mark.django_db(transaction=True)]


def test_concurrent_events_are_committed_together_and_each_is_answered_after_its_commit(live_server, acme_token):
    token, plaintext = acme_token
    session = requests.Session()

    def send(i: int) -> dict:
        body = {"version": 1, "type": "event", "event": "Concurrent", "properties": {"i": i}, "messageId": f"gc-{i}"}
        response = session.post(
            f"{live_server.url}/v1/event",
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


def test_a_resent_message_id_is_a_duplicate_through_the_committer(live_server, acme_token):
    token, plaintext = acme_token
    body = orjson.dumps({"version": 1, "type": "event", "event": "Once", "messageId": "only-once"})
    headers = {"Content-Type": "application/json", "X-Auth-Token": plaintext}

    first = requests.post(f"{live_server.url}/v1/event", data=body, headers=headers, timeout=30).json()
    second = requests.post(f"{live_server.url}/v1/event", data=body, headers=headers, timeout=30).json()

    assert first["duplicate"] is False
    assert second == {"id": first["id"], "duplicate": True}
    assert Event.objects.filter(team=token.team, message_id="only-once").count() == 1
