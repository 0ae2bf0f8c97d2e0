"""Writing accepted events to the events table: the one home for that write.

The rule a newcomer must know: an event with a messageId is stored only together with its claim in
events_message_id (EventMessageId), in the same transaction, and the claim's primary key (team_id, message_id)
is what makes a resent messageId a duplicate. The events table itself has no unique key on messageId: it is
partitioned by received_at (migration 0014), and a unique key there would have to include received_at, which
a resend changes. Every path claims first (INSERT ... ON CONFLICT (team_id, message_id) DO NOTHING) and stores
only the rows it claimed:

- `store_row` writes one event on the caller's connection. Single-event requests in production go through
  `events.ingest.group_commit` instead, which calls `store_group` (or `store_rows`, for a large group) for many requests
  at once.
- `store_group` writes the few events of a group commit in one statement, on libpq directly.
- `store_rows` writes many events in one transaction on PostgreSQL with COPY into a temporary staging table and
  one INSERT ... SELECT. Ids are taken from the sequence first, so each row knows its id whether it was
  stored or turned out to be a duplicate.
- `store_batch` (POST /v1/batch) first tries one query of two statements, the rows' COPY straight into the table
  and an INSERT ... SELECT of their claims from the rows just copied, which spares the database the staging path's
  second write and psycopg a second copy of the messageIds; a messageId the team already sent makes the claims'
  INSERT fail on the primary key, the query is rolled back whole, and the batch is then written through the
  staging path, which tells stored from duplicate.
"""

import json
import threading
from collections.abc import Callable
from datetime import datetime
from functools import partial
from itertools import repeat
from time import monotonic  # imported by name, so that tests can move this module's clock alone
from typing import Any, NamedTuple, TypeAlias, cast

import orjson
import psycopg
from django.db import DEFAULT_DB_ALIAS, IntegrityError, connection, connections, transaction
from django.db.backends.base.base import BaseDatabaseWrapper
from django.db.backends.utils import CursorWrapper
from psycopg.abc import PQGen
from psycopg.adapt import Dumper
from psycopg.copy import LibpqWriter
from psycopg.generators import fetch_many
from psycopg.pq import Format
from psycopg.pq.abc import PGresult
from psycopg.waiting import Wait

from events.ingest.validation import EventPayload

COLUMNS = (
    "team_id",
    "token_id",
    "type",
    "event",
    "properties",
    "timestamp",
    "original_timestamp",
    "sent_at",
    "received_at",
    "message_id",
    "user_id",
    "anonymous_id",
    "context",
    "extra",
)
# One events_event row, its values in COLUMNS order (see event_row): query parameters of several types.
EventRow: TypeAlias = tuple[Any, ...]
# psycopg's own cursor, or Django's wrapper around it (which hands psycopg's methods through).
Cursor: TypeAlias = psycopg.Cursor[Any] | CursorWrapper
_COLUMN_LIST = ", ".join(COLUMNS)
# A messageId's claim: events_message_id's columns, and the one statement shape that takes it. A claim that
# finds the key taken inserts nothing and waits for a concurrent claim's transaction to end first.
_CLAIM_COLUMNS = "team_id, message_id, event_id, received_at"
_CLAIM = f"INSERT INTO events_message_id ({_CLAIM_COLUMNS}) SELECT team_id, message_id, id, received_at FROM"
_CLAIMED_ONLY = "ON CONFLICT (team_id, message_id) DO NOTHING RETURNING event_id"
_STAGE = "CREATE TEMPORARY TABLE IF NOT EXISTS events_event_stage (LIKE events_event INCLUDING DEFAULTS)"
# The ids' sequence, named outright: `nextval(pg_get_serial_sequence(...))` looks the name up in the catalog for
# every row (docs/performance.md#group-commit). events/ingest/tests/test_storage.py checks the name.
ID_SEQUENCE = "events_event_id_seq"
_NEXT_ID = f"nextval('{ID_SEQUENCE}'::regclass)"
# A batch's ids as one array: one row for psycopg to read instead of one per event.
_NEXT_ID_ARRAY = (
    f"SELECT array_agg(id ORDER BY n) FROM (SELECT n, {_NEXT_ID} AS id FROM generate_series(1, %s) AS n) AS ids"  # noqa: S608 - constants only
)
# Claims first (the first of a messageId repeated in the batch wins, as ids ascend), then the rows claimed and
# those without a messageId.
_FROM_STAGE = (
    f"WITH claimed AS ({_CLAIM} events_event_stage WHERE message_id IS NOT NULL ORDER BY id {_CLAIMED_ONLY}) "  # noqa: S608
    f"INSERT INTO events_event (id, {_COLUMN_LIST}) SELECT id, {_COLUMN_LIST} FROM events_event_stage "
    "WHERE message_id IS NULL OR id IN (SELECT event_id FROM claimed) ORDER BY id RETURNING id"
)
# The SQL type of each column, id first.
_ARRAY_TYPES = (
    "bigint",
    "bigint",
    "bigint",
    "text",
    "text",
    "jsonb",
    "timestamptz",
    "timestamptz",
    "timestamptz",
    "timestamptz",
    "text",
    "text",
    "text",
    "jsonb",
    "jsonb",
)
# The same, as the oids COPY's set_types takes: given names, it looks each up in psycopg's type registry for
# every batch (docs/performance.md#batches-one-copy-per-request).
_COPY_OIDS = [psycopg.postgres.types.get_oid(name) for name in _ARRAY_TYPES]
# One statement for a small group: ids drawn from the sequence, the rows inserted, and for each row (in order)
# its id and whether it was stored, in a single round trip. Being one statement it is atomic on its own, so in
# autocommit mode it costs one commit and no BEGIN/COMMIT round trips. The rows travel as one JSON array, which
# psycopg adapts for less than fourteen typed arrays, read as jsonb, whose `->>` does not scan the text again for
# each column (docs/performance.md#group-commit).
_FROM_JSON_COLUMNS = ", ".join(
    f"(r->>{i})::{kind} AS {name}" for i, (name, kind) in enumerate(zip(COLUMNS, _ARRAY_TYPES[1:], strict=True))
)
_FROM_JSON = (
    "WITH input AS MATERIALIZED ("  # noqa: S608
    f"SELECT {_NEXT_ID} AS id, ord, {_FROM_JSON_COLUMNS} "
    "FROM jsonb_array_elements(%s::jsonb) WITH ORDINALITY AS rows(r, ord)), "
    f"claimed AS ({_CLAIM} input WHERE message_id IS NOT NULL ORDER BY ord {_CLAIMED_ONLY}), "
    f"stored AS (INSERT INTO events_event (id, {_COLUMN_LIST}) SELECT id, {_COLUMN_LIST} FROM input "
    "WHERE message_id IS NULL OR id IN (SELECT event_id FROM claimed) ORDER BY ord RETURNING id) "
    "SELECT input.id, stored.id IS NOT NULL FROM input LEFT JOIN stored USING (id) ORDER BY input.ord"
)
# COPY's binary format: cheaper for psycopg to write than text (a timestamp is eight bytes, not a formatted
# string), and no dearer for PostgreSQL to read (docs/performance.md#batches-one-copy-per-request).
_COPY_STRAIGHT = f"COPY events_event (id, {_COLUMN_LIST}) FROM STDIN (FORMAT BINARY)"
_COPY_STAGE = f"COPY events_event_stage (id, {_COLUMN_LIST}) FROM STDIN (FORMAT BINARY)"
_TEAM_ID = COLUMNS.index("team_id")
_MESSAGE_ID = COLUMNS.index("message_id")
_RECEIVED_AT = COLUMNS.index("received_at")
# The events that hold these messageIds: a probe of events_message_id's primary key each.
_HOLDERS = (
    "SELECT team_id, message_id, event_id FROM events_message_id "
    "WHERE (team_id, message_id) IN (SELECT * FROM unnest(%s::bigint[], %s::text[]))"
)


class StoredEvent(NamedTuple):
    """The id of an event's row, and whether it was there before (a duplicate)."""

    id: int
    duplicate: bool


# StoredEvent(id, duplicate) goes through a Python-level __new__; this builds the same tuple in C (a batch makes
# one per event).
_stored_new = partial(tuple.__new__, StoredEvent)


def json_text(value: object) -> str:
    """JSON text for a jsonb column. orjson refuses integers beyond 64 bits, which parse_json keeps exact and
    PostgreSQL's numeric stores; for those (rare) documents the json module writes them instead."""
    try:
        return orjson.dumps(value).decode()
    except TypeError:
        return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def _json(value: object) -> str | None:
    return None if value is None else json_text(value)


def event_row(*, team_id: int, token_id: int | None, payload: EventPayload, received_at: datetime) -> EventRow:
    """The values of one events_event row, in COLUMNS order."""
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
        _json(_extra(payload)),
    )


def _extra(payload: EventPayload) -> dict[str, object] | None:
    if (
        payload.group_id is None
        and payload.previous_id is None
        and payload.name is None
        and payload.category is None
        and payload.integrations is None
    ):
        return None  # a plain track call, most events: no dict built to be thrown away ({} integrations are kept)
    extra = {
        "groupId": payload.group_id,
        "previousId": payload.previous_id,
        "name": payload.name,
        "category": payload.category,
        "integrations": payload.integrations,
    }
    return {key: value for key, value in extra.items() if value is not None} or None


def store_rows(cursor: Cursor, rows: list[EventRow]) -> list[StoredEvent]:
    """Insert many rows (from `event_row`) on a psycopg cursor, inside a transaction, through COPY into a staging
    table: fastest for a large batch. Returns one StoredEvent per row, in order. A messageId already stored, or
    repeated within `rows`, is a duplicate that answers the id of the row that holds it.
    """
    if not rows:
        return []
    ids = _reserve.take(cursor, len(rows))
    return _results(cursor, rows, ids, _insert_through_copy(cursor, ids, rows))


# The group committer runs _FROM_JSON prepared, under this name, on each of its connections (prepare_group).
GROUP_STATEMENT = b"events_store_group"


def prepare_group(connection: psycopg.Connection[Any]) -> None:
    """Prepare store_group's statement on a new connection of the group committer."""
    sql = _FROM_JSON.replace("%s", "$1").encode()
    _checked(connection, connection.pgconn.prepare(GROUP_STATEMENT, sql, None), psycopg.pq.ExecStatus.COMMAND_OK)


def store_group(connection: psycopg.Connection[Any], rows: list[EventRow]) -> list[StoredEvent]:
    """Insert the few rows of a group commit (from `event_row`) with one statement over a JSON array of them (see
    _FROM_JSON), on a connection in autocommit mode where prepare_group has run. Being one statement it is atomic
    and committed by itself. Answers as store_rows.

    The statement runs on libpq directly (psycopg.pq, psycopg's documented libpq wrapper), not through a cursor:
    a cursor's execute, its generators and its row makers cost the committer more than the statement's round trip
    (docs/performance.md#group-commit), on a thread that every request of the group waits for. libpq's blocking
    call releases the GIL while it waits, as the cursor does.
    """
    if not rows:
        return []
    result = _checked(
        connection,
        connection.pgconn.exec_prepared(GROUP_STATEMENT, [orjson.dumps(rows)]),
        psycopg.pq.ExecStatus.TUPLES_OK,
    )
    value = result.get_value
    ids = [int(cast(bytes, value(row, 0))) for row in range(result.ntuples)]  # an id is never NULL
    inserted = {event_id for row, event_id in enumerate(ids) if value(row, 1) == b"t"}
    if len(inserted) == len(rows):
        return list(map(_stored_new, zip(ids, repeat(False))))
    with connection.cursor() as cursor:
        return _results(cursor, rows, ids, inserted)


def _checked(connection: psycopg.Connection[Any], result: PGresult, expected: psycopg.pq.ExecStatus) -> PGresult:
    """The result, or the error psycopg would have raised for it (a lost connection is an OperationalError)."""
    if result.status == expected:
        return result
    if connection.pgconn.status == psycopg.pq.ConnStatus.BAD:
        raise psycopg.OperationalError(connection.pgconn.get_error_message() or "the connection was lost")
    raise psycopg.errors.error_from_result(result, encoding=connection.info.encoding)


def _results(cursor: Cursor, rows: list[EventRow], ids: list[int], inserted: set[int]) -> list[StoredEvent]:
    """One StoredEvent per row: stored when its id was inserted, else the duplicate of the event holding its
    messageId's claim (looked up on `cursor`)."""
    results: list[StoredEvent | None] = [
        StoredEvent(event_id, duplicate=False) if event_id in inserted else None for event_id in ids
    ]
    missing = [i for i, result in enumerate(results) if result is None]
    if missing:
        team_ids = [rows[i][0] for i in missing]
        message_ids = [rows[i][_MESSAGE_ID] for i in missing]
        cursor.execute(_HOLDERS, (team_ids, message_ids))
        holders = {(team_id, message_id): event_id for team_id, message_id, event_id in cursor.fetchall()}
        for i, team_id, message_id in zip(missing, team_ids, message_ids, strict=True):
            results[i] = StoredEvent(holders[(team_id, message_id)], duplicate=True)
    return cast(list[StoredEvent], results)  # every None was filled in above


class _JsonTextDumper(Dumper):
    """jsonb in COPY's binary format is a version byte and the JSON text: the rows carry that text already
    (`json_text`), where psycopg's own jsonb dumper would write a Python str as a JSON string."""

    format = Format.BINARY
    oid = psycopg.postgres.types["jsonb"].oid

    def dump(self, obj: str) -> bytes:
        return b"\x01" + obj.encode()


def _copy_rows(
    cursor: Cursor, statement: str, ids: list[int], rows: list[EventRow], writer: LibpqWriter | None = None
) -> None:
    cursor.adapters.register_dumper(None, _JsonTextDumper)  # on this cursor only: by type oid, for COPY
    with cursor.copy(statement, writer=writer) as copy:
        copy.set_types(_COPY_OIDS)
        for event_id, row in zip(ids, rows, strict=True):
            copy.write_row((event_id, *row))


class _StatementsAfterCopyWriter(LibpqWriter):
    """Ends a COPY that opens a query of several statements, and raises the error of the first that failed.

    psycopg's own writer expects one result after the COPY's data; this one reads every statement's."""

    def finish(self, exc: BaseException | None = None) -> None:
        if exc:
            super().finish(exc)  # the server fails the COPY and skips the statements after it
            return
        encoding = self.connection.info.encoding
        for result in self.connection.wait(_end_copy(self._pgconn)):
            if result.status != psycopg.pq.ExecStatus.COMMAND_OK:
                raise psycopg.errors.error_from_result(result, encoding=encoding)


def _end_copy(pgconn: psycopg.pq.abc.PGconn) -> PQGen[list[PGresult]]:
    """psycopg.generators.copy_end, less its check that the query held one statement."""
    while pgconn.put_copy_end(None) == 0:
        while not (yield Wait.W):
            continue
    while True:
        while not (yield Wait.W):
            continue
        if pgconn.flush() == 0:
            break
    results: list[PGresult] = yield from fetch_many(pgconn)
    return results


def _insert_through_copy(cursor: Cursor, ids: list[int], rows: list[EventRow]) -> set[int]:
    cursor.execute(_STAGE)
    _copy_rows(cursor, _COPY_STAGE, ids, rows)
    cursor.execute(_FROM_STAGE)
    inserted = {row[0] for row in cursor.fetchall()}
    cursor.execute("DELETE FROM events_event_stage")  # leave the session's staging table empty for the next batch
    return inserted


def store_batch(rows: list[EventRow]) -> list[StoredEvent]:
    """Store many rows atomically on this thread's connection (COPY on PostgreSQL).

    Straight into the table when the batch repeats no messageId of its own: its rows by COPY, then its
    messageIds' claims by an INSERT ... SELECT from those rows, in one query (_copy_straight_then_claim). Should
    one of them be claimed already (a client resending a batch it got no answer for), the claims' INSERT fails on
    events_message_id's primary key, the query is rolled back whole, and the batch goes through the staging table
    instead. A resent batch costs one failed query more; every other batch costs one query of two round trips.
    """
    database = connections[DEFAULT_DB_ALIAS]  # once: each `connection.x` is a thread-local look-up of its own
    if database.vendor != "postgresql":
        return [store_row(row) for row in rows]
    database.ensure_connection()
    if rows and not _repeats_a_message_id(rows) and _standard_strings(database):
        # On psycopg's own connection and cursor, with Django's error translation around them (what Django's
        # cursor wrapper does per statement, less its bookkeeping): a batch's fixed cost counts
        # (docs/performance.md#batches-one-copy-per-request). Outside a transaction the query is committed by
        # itself (and wholly rolled back should it fail): no BEGIN and COMMIT round trips. Inside the caller's
        # transaction, a savepoint keeps that transaction usable should the query fail.
        try:
            if database.in_atomic_block:
                with transaction.atomic(), database.cursor() as cursor:
                    return _copy_straight(cursor, rows)
            with database.wrap_database_errors, database.connection.cursor() as cursor:
                return _copy_straight(cursor, rows)
        except (psycopg.errors.UniqueViolation, IntegrityError):
            pass
    with transaction.atomic(), database.cursor() as cursor:
        return store_rows(cursor, rows)


def _repeats_a_message_id(rows: list[EventRow]) -> bool:
    message_ids = [row[_MESSAGE_ID] for row in rows if row[_MESSAGE_ID] is not None]
    return len(set(message_ids)) != len(message_ids)


def _next_ids(cursor: Cursor, count: int) -> list[int]:
    cursor.execute(_NEXT_ID_ARRAY, (count,))
    row = cursor.fetchone()
    assert row is not None  # an aggregate answers one row
    ids: list[int] = row[0]
    return ids


# How long ids drawn ahead may wait for their batch, and how many a process draws ahead at most. Kept short and
# small: an id drawn and never used is a gap the catalog looks for again until GAP_TTL (10 minutes) has passed.
RESERVE_SECONDS = 2.0
MAX_AHEAD = 1000


class IdReserve:
    """Ids this process drew ahead for its next batches.

    Drawing a batch's ids is a round trip of its own before the COPY, and a transaction of its own whose commit
    waits for a WAL flush (nextval WAL-logs the sequence every 32 values): dear beside a batch's own work
    (docs/performance.md#batches-one-copy-per-request). So a draw that
    finds the reserve empty while its last draw is fresh takes twice as many ahead as the last one did (up to
    MAX_AHEAD), for the batches that follow; ids left longer than RESERVE_SECONDS are let go, and the next draw
    takes only what it needs. Ids are then not handed out in commit order, which concurrent transactions never
    were: the catalog's gap list is for exactly that (events.warehouse.catalog).
    """

    def __init__(self, draw: Callable[..., list[int]] = _next_ids) -> None:
        self.draw = draw  # (cursor, count) -> the next `count` values of the sequence
        self.lock = threading.Lock()
        self.ids: list[int] = []
        self.drawn_at = 0.0
        self.ahead = 0

    def take(self, cursor: Cursor, count: int) -> list[int]:
        with self.lock:
            if self._stale():
                self._let_go()
            if len(self.ids) >= count:
                ids = self.ids[:count]
                del self.ids[:count]
                return ids
            ids, self.ids = self.ids, []  # what is left first, so that no id waits past its time
            ahead = self.ahead
            self.ahead = min(max(2 * ahead, count), MAX_AHEAD)
        needed = count - len(ids)
        drawn = self.draw(cursor, needed + ahead)  # a round trip, outside the lock
        with self.lock:
            if self.ids and not self._stale():
                # Another thread's draw got here first: these go stale with its ids. Its draw may have come from the
                # sequence after this one did, so the two are merged in order: every take stays ascending.
                self.ids = sorted(self.ids + drawn[needed:])
            else:
                self.ids, self.drawn_at = drawn[needed:], monotonic()
        return ids + drawn[:needed]

    def _stale(self) -> bool:
        return monotonic() - self.drawn_at > RESERVE_SECONDS

    def _let_go(self) -> None:
        """Drop what is left, and draw only what is needed next time (call with the lock held)."""
        self.ids, self.ahead = [], 0


_reserve = IdReserve()


def drop_reserved_ids() -> None:
    """Let go of the ids this process drew ahead (tests start from the sequence's own position)."""
    with _reserve.lock:
        _reserve._let_go()


def _copy_straight(cursor: Cursor, rows: list[EventRow]) -> list[StoredEvent]:
    """The rows by COPY, then their claims (if any) in the same query; see _copy_straight_then_claim."""
    ids = _reserve.take(cursor, len(rows))
    if any(row[_MESSAGE_ID] is not None for row in rows):
        # Django's cursor wrapper hands psycopg's cursor attributes through, which is all the writer reads.
        writer = _StatementsAfterCopyWriter(cast(psycopg.Cursor[Any], cursor))
        _copy_rows(cursor, _copy_straight_then_claim(ids, rows), ids, rows, writer)
    else:
        _copy_rows(cursor, _COPY_STRAIGHT, ids, rows)
    return list(map(_stored_new, zip(ids, repeat(False))))


def _copy_straight_then_claim(ids: list[int], rows: list[EventRow]) -> str:
    """The rows' COPY and then their claims, as one query of two statements: one implicit transaction and the
    COPY's two round trips. The claims are not ON CONFLICT: a messageId claimed already fails the query whole. A
    query that holds a COPY takes no parameters, so the claims are literals. They are written out rather than read
    back from the rows just copied: that read was planned by the events table's statistics, and on a big table it
    walked every page inserted since the last ANALYZE (docs/performance.md#partitions-and-the-messageid-claims)."""
    claims = ",".join(
        f"({row[_TEAM_ID]},{_string_literal(row[_MESSAGE_ID])},{event_id},'{row[_RECEIVED_AT].isoformat()}')"
        for event_id, row in zip(ids, rows, strict=True)
        if row[_MESSAGE_ID] is not None
    )
    return f"{_COPY_STRAIGHT}; INSERT INTO events_message_id ({_CLAIM_COLUMNS}) VALUES {claims}"  # noqa: S608 - quoted


def _string_literal(text: str) -> str:
    """A SQL string literal. With standard_conforming_strings on (store_batch checks it) only ' is special."""
    return "'" + text.replace("'", "''") + "'"


def _standard_strings(database: BaseDatabaseWrapper) -> bool:
    status: str | None = database.connection.info.parameter_status("standard_conforming_strings")
    return status == "on"


def store_row(row: EventRow) -> StoredEvent:
    """Insert one row on this thread's connection; a messageId the team already sent stores nothing.

    On PostgreSQL this is store_group's one statement (claim and row together), so in autocommit mode the row is
    committed (synchronous_commit=on) when this returns. SQLite (`make run` only) has no data-modifying CTEs:
    the claim and the row are two statements in one transaction.
    """
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute(_FROM_JSON, (orjson.dumps([row]).decode(),))
            event_id, stored = cursor.fetchone()
            return StoredEvent(event_id, False) if stored else _results(cursor, [row], [event_id], set())[0]
        return _store_row_sqlite(cursor, row)


_SQLITE_INSERT = f"INSERT INTO events_event ({_COLUMN_LIST}) VALUES ({', '.join(['%s'] * len(COLUMNS))}) RETURNING id"  # noqa: S608
_SQLITE_CLAIM = f"INSERT INTO events_message_id ({_CLAIM_COLUMNS}) VALUES (%s, %s, %s, %s)"  # noqa: S608


def _store_row_sqlite(cursor: Cursor, row: EventRow) -> StoredEvent:
    """SQLite runs one writer at a time; a claim that lost a race fails on the primary key and rolls back the row."""
    message_id = row[_MESSAGE_ID]
    with transaction.atomic():
        if message_id is not None:
            cursor.execute(
                "SELECT event_id FROM events_message_id WHERE team_id = %s AND message_id = %s",
                (row[_TEAM_ID], message_id),
            )
            holder = cursor.fetchone()
            if holder is not None:
                return StoredEvent(holder[0], duplicate=True)
        cursor.execute(_SQLITE_INSERT, row)
        (event_id,) = cast(tuple[int], cursor.fetchone())  # RETURNING answers one row
        if message_id is not None:
            cursor.execute(_SQLITE_CLAIM, (row[_TEAM_ID], message_id, event_id, row[_RECEIVED_AT]))
    return StoredEvent(event_id, duplicate=False)
