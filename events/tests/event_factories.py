"""Events stored the way the API stores them (events.ingest.storage), for the warehouse, catalog and page tests; and
batches sent through /v1/batch, as a client sends them."""

import json
from datetime import datetime

import pytest
from django.db import connection
from django.utils import timezone

from accounts.models import Team
from events.ingest.storage import event_row, store_row
from events.ingest.validation import EventPayload
from events.models import CatalogEvent
from events.warehouse.catalog import MAX_CATALOG_EVENTS, catalog_sync
from events.warehouse.sync import warehouse_sync


def store_event(
    team: Team,
    event: str = "Purchased an Item",
    properties: dict | None = None,
    *,
    type: str = "track",
    timestamp: datetime | None = None,
    received_at: datetime | None = None,
    user_id: str | None = "user-1",
    **fields,
) -> int:
    """Store one event for `team` and return its id. `fields` are other EventPayload fields (group_id, ...)."""
    now = timezone.now()
    payload = EventPayload(
        event=event,
        properties=properties or {},
        timestamp=timestamp or now,
        original_timestamp=timestamp,
        sent_at=None,
        message_id=fields.pop("message_id", None),
        type=type,
        user_id=user_id,
        **fields,
    )
    row = event_row(team_id=team.pk, token_id=None, payload=payload, received_at=received_at or now)
    return store_row(row).id


def sync() -> None:
    """What `manage.py sync_warehouse` does: the catalog, then the views (on PostgreSQL)."""
    catalog_sync()
    if connection.vendor == "postgresql":
        warehouse_sync()


def drop_team_schemas() -> None:
    """Drop the teams' warehouse schemas that sync() made: a transactional test's flush empties tables only."""
    if connection.vendor != "postgresql":
        return
    with connection.cursor() as cursor:
        for (schema,) in fetch("SELECT nspname FROM pg_namespace WHERE starts_with(nspname, 'team_')"):
            cursor.execute(f'DROP SCHEMA "{schema}" CASCADE')


def fetch(query: str, params: list | None = None) -> list[tuple]:
    with connection.cursor() as cursor:
        cursor.execute(query, params or [])
        return cursor.fetchall()


def columns_of(schema: str, view: str) -> dict[str, str]:
    """{column: data type} of a view, in column order, as information_schema reports them."""
    rows = fetch(
        "SELECT column_name, data_type FROM information_schema.columns "
        "WHERE table_schema = %s AND table_name = %s ORDER BY ordinal_position",
        [schema, view],
    )
    return dict(rows)


def client_json(document) -> bytes:
    """orjson refuses integers beyond 64 bits; the json module writes them as a client would."""
    return json.dumps(document, ensure_ascii=False).encode()


def post_batch(client, plaintext: str, batch: list[dict]):
    return client.post(
        "/v1/batch", client_json({"batch": batch}), content_type="application/json", headers={"X-Auth-Token": plaintext}
    )


def track_batch(prefix: str, size: int) -> list[dict]:
    return [{"type": "track", "event": "Signed Up", "userId": "u1", "messageId": f"{prefix}-{i}"} for i in range(size)]


def fill_catalog(team, names: int = MAX_CATALOG_EVENTS) -> None:
    """A team whose catalog already holds `names` names (the cap, by default), made in one INSERT."""
    now = timezone.now()
    CatalogEvent.objects.bulk_create(
        CatalogEvent(team=team, type="track", name=f"Filler {i}", count=1, first_seen_at=now, last_seen_at=now)
        for i in range(names)
    )


# Tests whose data is made in one SQL statement (generate_series, casts) rather than one request at a time.
data_made_in_postgresql = pytest.mark.skipif(
    connection.vendor != "postgresql", reason="the test's data is made with PostgreSQL's generate_series"
)


def store_names(team, prefix: str, names: int, *, each: int = 1, properties: dict | None = None) -> None:
    """`each` events under each of `names` new names, stored with one INSERT rather than one request each."""
    with connection.cursor() as cursor:
        cursor.execute(
            "INSERT INTO events_event (team_id, type, event, properties, timestamp, received_at) "
            "SELECT %s, 'track', %s || n, %s::jsonb, now(), now() "
            "FROM generate_series(1, %s) n, generate_series(1, %s) e",
            [team.pk, prefix, json.dumps(properties or {}), names, each],
        )


# The example body of the Events API page (`POST /v1/event`), byte for byte.
DOC_EVENT_BODY = b"""{
  "version": 1,
  "type": "event",
  "event": "Purchased an Item",
  "properties": {
    "revenue": "39.95",
    "shippingMethod": "2-day"
  },
  "timestamp": "2012-12-02T00:30:08.276Z"
}"""
