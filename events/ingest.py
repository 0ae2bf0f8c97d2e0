"""Writing accepted events to the events table: the one home for that write.

Raw SQL on purpose: one INSERT ... ON CONFLICT DO NOTHING RETURNING per event stores it and detects a resent
messageId in the same statement, which the ORM cannot express. The same SQL runs on SQLite for `make run`.
"""

from dataclasses import dataclass
from datetime import datetime

import orjson
from django.db import connection

from .validation import EventPayload

_COLUMNS = (
    "team_id, token_id, type, event, properties, timestamp, original_timestamp, sent_at, received_at, "
    "message_id, user_id, anonymous_id, context"
)


def _insert_sql(json_cast: str) -> str:
    values = ", ".join(["%s"] * 4 + [f"%s{json_cast}"] + ["%s"] * 7 + [f"%s{json_cast}"])
    # Built once at import from constants only; every value travels as a query parameter.
    return (
        f"INSERT INTO events_event ({_COLUMNS}) VALUES ({values}) "  # noqa: S608
        "ON CONFLICT (team_id, message_id) WHERE message_id IS NOT NULL DO NOTHING RETURNING id"
    )


_INSERT = {"postgresql": _insert_sql("::jsonb"), "sqlite": _insert_sql("")}
_EXISTING = "SELECT id FROM events_event WHERE team_id = %s AND message_id = %s"


@dataclass(frozen=True, slots=True)
class StoredEvent:
    id: int
    duplicate: bool


def _json(value) -> str | None:
    return None if value is None else orjson.dumps(value).decode()


def insert_params(*, team_id: int, token_id: int | None, payload: EventPayload, received_at: datetime) -> tuple:
    return (
        team_id,
        token_id,
        payload.type,
        payload.event,
        _json(payload.properties),
        payload.timestamp,
        payload.original_timestamp,
        payload.sent_at,
        received_at,
        payload.message_id,
        payload.user_id,
        payload.anonymous_id,
        _json(payload.context),
    )


def store_event(*, team_id: int, token_id: int | None, payload: EventPayload, received_at: datetime) -> StoredEvent:
    """Insert one event; a messageId this team already sent stores nothing and answers the first row's id.

    Runs in autocommit mode, so the row is committed (synchronous_commit=on) when this returns.
    """
    with connection.cursor() as cursor:
        cursor.execute(
            _INSERT[connection.vendor],
            insert_params(team_id=team_id, token_id=token_id, payload=payload, received_at=received_at),
        )
        row = cursor.fetchone()
        if row is not None:
            return StoredEvent(row[0], duplicate=False)
        cursor.execute(_EXISTING, (team_id, payload.message_id))
        return StoredEvent(cursor.fetchone()[0], duplicate=True)
