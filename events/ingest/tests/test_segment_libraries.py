"""Segment's own libraries, pointed at Canvas with a Canvas token as write key, deliver every call exactly once.

These run the real `segment-analytics-python` and `@segment/analytics-node` against a live server: HTTP Basic
auth with the token as username, /v1/batch, gzip (Python), and messageId dedupe when a batch is sent again.
"""

import json
import subprocess
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from segment.analytics import Client
from segment.analytics.request import APIError, post

from conftest import make_user
from events.models import Event, RejectedEvent
from events.tokens import secret

ROOT = Path(__file__).resolve().parents[2]
pytestmark = [pytest.mark.live, pytest.mark.django_db(transaction=True)]


def _failures():
    failures = []
    return failures, lambda error, batch: failures.append((error, batch))


def test_python_library_delivers_every_call_once_with_gzip(ingest_live_server, acme_token):
    token, plaintext = acme_token
    failures, on_error = _failures()
    client = Client(write_key=plaintext, host=ingest_live_server.url, gzip=True, on_error=on_error, max_retries=0)

    for i in range(40):
        client.track(user_id=f"user-{i}", event="Signed Up", properties={"plan": "pro", "seat": i})
    client.identify(user_id="user-1", traits={"email": "one@example.test"})
    client.page(user_id="user-1", name="Pricing", properties={"path": "/pricing"})
    client.screen(user_id="user-1", name="Home")
    client.group(user_id="user-1", group_id="acme-inc", traits={"employees": 12})
    client.alias(previous_id="anon-1", user_id="user-1")
    client.flush()
    client.join()

    assert failures == []
    events = Event.objects.filter(team=token.team)
    assert events.count() == 45
    assert events.values("message_id").distinct().count() == 45
    assert events.filter(type="track", event="Signed Up").count() == 40
    assert set(events.exclude(type="track").values_list("type", flat=True)) == {
        "identify",
        "page",
        "screen",
        "group",
        "alias",
    }
    assert events.get(type="page").event == "Pricing"
    assert events.get(type="group").extra["groupId"] == "acme-inc"
    assert events.filter(token=token).count() == 45


def test_a_batch_the_python_library_resends_is_stored_once(ingest_live_server, acme_token):
    token, plaintext = acme_token
    batch = [
        {"type": "track", "userId": "u1", "event": "Retried", "messageId": "retry-1"},
        {"type": "track", "userId": "u1", "event": "Retried", "messageId": "retry-2"},
    ]

    first = post(plaintext, host=ingest_live_server.url, gzip=True, batch=batch)
    again = post(plaintext, host=ingest_live_server.url, gzip=True, batch=batch)

    assert first.json()["stored"] == 2
    assert again.json() | {"results": None} == {"stored": 0, "duplicates": 2, "rejected": 0, "results": None}
    assert Event.objects.filter(team=token.team, event="Retried").count() == 2


NODE_SCRIPT = """
const { Analytics } = require('@segment/analytics-node');
const [host, writeKey] = process.argv.slice(1);
const analytics = new Analytics({ writeKey, host, path: '/v1/batch', maxEventsInBatch: 10, flushInterval: 50 });
const errors = [];
analytics.on('error', (error) => errors.push(String(error.code || error.message || error)));
for (let i = 0; i < 25; i++) {
  analytics.track({ userId: 'node-' + i, event: 'Node Signed Up', properties: { i } });
}
analytics.identify({ userId: 'node-1', traits: { name: 'Node One' } });
analytics.page({ anonymousId: 'anon-node', name: 'Docs' });
analytics.group({ userId: 'node-1', groupId: 'g-1' });
analytics.alias({ userId: 'node-1', previousId: 'anon-node' });
analytics.closeAndFlush({ timeout: 20000 }).then(() => console.log(JSON.stringify({ errors })));
"""


def test_node_library_delivers_every_call_once(ingest_live_server, acme_token):
    token, plaintext = acme_token

    result = subprocess.run(
        ["node", "-e", NODE_SCRIPT, ingest_live_server.url, plaintext],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )

    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout.strip().splitlines()[-1]) == {"errors": []}
    events = Event.objects.filter(team=token.team)
    assert events.filter(type="track", event="Node Signed Up").count() == 25
    assert events.count() == 29
    assert events.values("message_id").distinct().count() == 29


def test_events_the_python_library_sends_that_are_refused_show_no_token(
    ingest_live_server, acme_token, bob, client, find_tokens
):
    token, plaintext = acme_token
    failures, on_error = _failures()
    library = Client(write_key=plaintext, host=ingest_live_server.url, on_error=on_error, max_retries=0)
    # An app that sends its settings, token included, along with an event whose name is too long.
    library.track(user_id="user-1", event="x" * 300, properties={"settings": {"canvasToken": plaintext}})
    library.flush()
    library.join()
    # A client whose clock runs two days fast: the whole batch is refused, and with it the body's writeKey.
    sent_at = (datetime.now(UTC) + timedelta(days=2)).isoformat()
    with pytest.raises(APIError):
        post(
            plaintext,
            host=ingest_live_server.url,
            gzip=True,
            batch=[{"type": "track", "userId": "u", "event": "e"}],
            sentAt=sent_at,
        )

    refused = list(RejectedEvent.objects.filter(team=token.team).values("payload", "errors", "token_hint"))
    staff = make_user("admin@canvas.test", is_staff=True, is_superuser=True)
    client.force_login(bob)
    member_page = client.get("/settings/events-api/").content.decode()
    client.force_login(staff)
    admin_pages = [client.get("/admin/events/rejectedevent/").content.decode()]
    for pk in RejectedEvent.objects.values_list("pk", flat=True):
        admin_pages.append(client.get(f"/admin/events/rejectedevent/{pk}/change/").content.decode())
    seen = "\n".join([str(refused), member_page, *admin_pages])
    assert find_tokens(seen) == []
    assert plaintext[4:36] not in seen
    assert len(failures) == 1
    assert len(refused) == 2
    assert all(secret.hint(plaintext) in row["payload"] for row in refused), "the token's place was not kept"
    assert 'data-testid="refused-events"' in member_page
