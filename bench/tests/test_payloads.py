"""B0-copy writes its rows in COPY's text and binary formats and keeps the faster: both must store the same row,
the row B2's batch items would store."""

import pytest
from django.db import connection
from psycopg import sql

from bench.payloads import COPY_COLUMNS, EVENT_NAME, PROPERTIES, USER_ID, binary_copy_rows, text_copy_rows
from events.models import Event
from events.tokens.services import api_token_create

TIMESTAMP = "2026-11-27T10:00:00.123Z"


def _copy(copy_format: str, rows: bytes) -> None:
    statement = sql.SQL("COPY events_event ({}) FROM STDIN (FORMAT {})").format(
        sql.SQL(COPY_COLUMNS), sql.SQL(copy_format)
    )
    connection.ensure_connection()
    with connection.connection.cursor() as cursor, cursor.copy(statement) as copy:
        copy.write(rows)


@pytest.mark.django_db
def test_text_and_binary_copy_rows_store_the_same_event(acme, alice):
    token, _ = api_token_create(team=acme, created_by=alice, name="bench")
    _copy("text", text_copy_rows(acme.id, token.id, TIMESTAMP)([b"b0-text-1", b"b0-text-2"]))
    _copy("binary", binary_copy_rows(acme.id, token.id, TIMESTAMP)([b"b0-binary-1"]))

    fields = ["team_id", "token_id", "type", "event", "properties", "timestamp", "original_timestamp", "sent_at"]
    fields += ["user_id", "anonymous_id", "context"]
    stored = {row.pop("message_id"): row for row in Event.objects.values("message_id", *fields)}
    assert sorted(stored) == ["b0-binary-1", "b0-text-1", "b0-text-2"]
    assert stored["b0-text-1"] == stored["b0-binary-1"]
    assert stored["b0-text-1"]["properties"] == PROPERTIES
    assert stored["b0-text-1"]["event"] == EVENT_NAME
    assert stored["b0-text-1"]["user_id"] == USER_ID
    assert stored["b0-text-1"]["timestamp"].isoformat() == "2026-11-27T10:00:00.123000+00:00"
