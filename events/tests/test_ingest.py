"""Storing events: what goes in by COPY comes out exactly, whatever characters it holds."""

import orjson
import pytest

from events.models import Event

pytestmark = pytest.mark.django_db

# Characters that mean something to COPY's text format, or to JSON, or are just far from ASCII.
AWKWARD = ["tab\there", "new\nline", "carriage\rreturn", "back\\slash", "\\N", "\\.", 'quote"d', "é ✓ 🎉", "\\t"]


def test_awkward_strings_survive_the_copy_into_the_table(client, acme_token):
    token, plaintext = acme_token
    batch = [
        {
            "type": "track",
            "event": text,
            "userId": text,
            "messageId": f"awkward-{i}",
            "properties": {text: text, "nested": [text, {"k": text}]},
            "context": {"page": {"title": text}},
        }
        for i, text in enumerate(AWKWARD)
    ]
    response = client.post(
        "/v1/batch",
        orjson.dumps({"batch": batch}),
        content_type="application/json",
        headers={"X-Auth-Token": plaintext},
    )

    assert response.status_code == 200, response.content
    for i, text in enumerate(AWKWARD):
        stored = Event.objects.get(team=token.team, message_id=f"awkward-{i}")
        assert (stored.event, stored.user_id) == (text, text)
        assert stored.properties == {text: text, "nested": [text, {"k": text}]}
        assert stored.context == {"page": {"title": text}}


def test_the_ids_sequence_is_the_one_the_table_uses():
    from django.db import connection

    from events.ingest import ID_SEQUENCE

    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_get_serial_sequence('events_event', 'id')")
        assert cursor.fetchone()[0] == f"public.{ID_SEQUENCE}"


@pytest.mark.django_db(transaction=True)
def test_awkward_values_survive_the_group_commit(acme_token):
    from canvas.wsgi import application

    from .test_fast_lane import wsgi_post

    token, plaintext = acme_token
    properties = {
        "big": 2**70,
        "float": 0.1,
        "negative": -(2**63),
        "nested": {"list": [None, True, 1.5, "x"]},
        **{text: text for text in AWKWARD},
    }
    for i, text in enumerate(AWKWARD):
        body = {"version": 1, "type": "event", "event": text, "properties": properties, "messageId": f"gc-{i}"}
        answer = wsgi_post(application, _dumps(body), token=plaintext)
        assert (answer.status, answer.by_django) == (200, False), answer.body

    for i, text in enumerate(AWKWARD):
        stored = Event.objects.get(team=token.team, message_id=f"gc-{i}")
        assert stored.event == text
        assert stored.properties == properties


def _dumps(document) -> bytes:
    """orjson refuses integers beyond 64 bits; the json module writes them as a client would."""
    import json

    return json.dumps(document, ensure_ascii=False).encode()
