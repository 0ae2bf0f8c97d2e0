"""Storing events: what goes in by COPY comes out exactly, whatever characters it holds."""

from datetime import UTC, datetime

import pytest
from django.utils import timezone

from events.models import Event, EventMessageId
from events.tests.event_factories import client_json, post_batch, track_batch

pytestmark = pytest.mark.django_db

# Characters that mean something to COPY's text format, or to JSON, or are just far from ASCII.
AWKWARD = ["tab\there", "new\nline", "carriage\rreturn", "back\\slash", "\\N", "\\.", 'quote"d', "é ✓ 🎉", "\\t"]


def _awkward_batch(prefix: str) -> list[dict]:
    return [
        {
            "type": "track",
            "event": text,
            "userId": text,
            "messageId": f"{prefix}-{i}",
            "properties": {text: text, "nested": [text, {"k": text}], "big": 2**70, "small": -(2**63), "x": 0.1},
            "context": {"page": {"title": text}},
            "integrations": {"All": False},
            "timestamp": "2012-12-02T00:30:08.276+05:30",
            "sentAt": "2012-12-02T00:30:09.001-03:00",
        }
        for i, text in enumerate(AWKWARD)
    ]


def _assert_stored_exactly(token, batch: list[dict], received) -> None:
    for item in batch:
        stored = Event.objects.get(team=token.team, message_id=item["messageId"])
        assert (stored.event, stored.user_id, stored.token_id) == (item["event"], item["userId"], token.id)
        assert stored.properties == item["properties"]
        assert stored.context == item["context"]
        assert stored.extra == {"integrations": {"All": False}}
        assert stored.original_timestamp == datetime(2012, 12, 1, 19, 0, 8, 276000, tzinfo=UTC)
        assert stored.sent_at == datetime(2012, 12, 2, 3, 30, 9, 1000, tzinfo=UTC)
        # Segment's clock-skew rule: the timestamp moves by (received - sentAt).
        assert stored.timestamp == stored.received_at - (stored.sent_at - stored.original_timestamp)
        assert received[0] <= stored.received_at <= received[1]


def test_awkward_values_survive_the_binary_copy_into_the_table(client, acme_token):
    token, plaintext = acme_token
    batch = _awkward_batch("awkward")
    before = timezone.now()
    response = post_batch(client, plaintext, batch)

    assert response.status_code == 200, response.content
    assert response.json()["stored"] == len(AWKWARD)
    _assert_stored_exactly(token, batch, (before, timezone.now()))


def test_awkward_values_survive_the_staging_table_of_a_resent_batch(client, acme_token):
    """A batch that repeats a stored messageId goes through the staging table (its own binary COPY)."""
    token, plaintext = acme_token
    first, rest = _awkward_batch("resent")[:1], _awkward_batch("resent")[1:]
    assert post_batch(client, plaintext, first).status_code == 200
    before = timezone.now()
    response = post_batch(client, plaintext, first + rest)

    assert response.status_code == 200, response.content
    assert (response.json()["stored"], response.json()["duplicates"]) == (len(rest), 1)
    _assert_stored_exactly(token, rest, (before, timezone.now()))


@pytest.mark.django_db(transaction=True)
def test_outside_a_transaction_the_copy_commits_by_itself_and_a_resent_batch_still_lands(acme_token):
    """The pipeline stores a batch with no transaction around it: the COPY is its own. When it fails on a stored
    messageId it leaves nothing behind, and the staging path stores the rest."""
    from canvas.wsgi import application
    from events.ingest.tests.test_wsgi import wsgi_post

    token, plaintext = acme_token
    first, rest = _awkward_batch("alone")[:1], _awkward_batch("alone")[1:]
    before = timezone.now()
    answer = wsgi_post(application, client_json({"batch": first}), token=plaintext, path="/v1/batch")
    assert (answer.status, answer.by_django) == (200, False), answer.body

    answer = wsgi_post(application, client_json({"batch": first + rest}), token=plaintext, path="/v1/batch")

    assert (answer.status, answer.by_django) == (200, False), answer.body
    assert [line["status"] for line in answer.json()["results"]] == ["duplicate"] + ["stored"] * len(rest)
    _assert_stored_exactly(token, first + rest, (before, timezone.now()))
    assert Event.objects.filter(team=token.team).count() == len(AWKWARD)  # the failed COPY left no row behind


def test_an_empty_integrations_object_is_kept(client, acme_token):
    token, plaintext = acme_token
    item = {"type": "track", "event": "Signed Up", "userId": "u1", "messageId": "empty-integrations"}
    response = post_batch(client, plaintext, [{**item, "integrations": {}}])

    assert response.status_code == 200, response.content
    assert Event.objects.get(team=token.team, message_id="empty-integrations").extra == {"integrations": {}}


def test_the_ids_sequence_is_the_one_the_table_uses():
    from django.db import connection

    from events.ingest.storage import ID_SEQUENCE

    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_get_serial_sequence('events_event', 'id')")
        assert cursor.fetchone()[0] == f"public.{ID_SEQUENCE}"


@pytest.mark.django_db(transaction=True)
def test_awkward_values_survive_the_group_commit(acme_token):
    from canvas.wsgi import application
    from events.ingest.tests.test_wsgi import wsgi_post

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
        answer = wsgi_post(application, client_json(body), token=plaintext)
        assert (answer.status, answer.by_django) == (200, False), answer.body

    for i, text in enumerate(AWKWARD):
        stored = Event.objects.get(team=token.team, message_id=f"gc-{i}")
        assert stored.event == text
        assert stored.properties == properties


@pytest.fixture
def ids_drawn():
    """How many ids the sequence handed out since the last call: what the process drew ahead included."""
    from django.db import connection

    from events.ingest.storage import ID_SEQUENCE

    def next_id() -> int:
        with connection.cursor() as cursor:
            cursor.execute(f"SELECT last_value + is_called::int FROM {ID_SEQUENCE}")  # noqa: S608 (a constant)
            return cursor.fetchone()[0]

    position = [next_id()]

    def drawn_since() -> int:
        before, position[0] = position[0], next_id()
        return position[0] - before

    return drawn_since


@pytest.fixture
def reserve_clock(stop_monotonic_clock):
    """The clock by which ids drawn ahead go stale (events/ingest/storage.py), stopped: a busy machine's pauses
    between batches must not let them go."""
    from events.ingest import storage

    return stop_monotonic_clock(storage)


def test_a_busy_process_draws_ids_ahead_for_its_next_batches(client, acme_token, ids_drawn, reserve_clock):
    token, plaintext = acme_token
    receipts, draws = [], []
    for number in range(6):
        response = post_batch(client, plaintext, track_batch(f"busy-{number}", 100))
        assert response.status_code == 200, response.content
        receipts.append([result["id"] for result in response.json()["results"]])
        draws.append(ids_drawn())

    # Six batches, three draws: each draw that finds the reserve empty takes twice as many ahead as the last.
    assert draws == [100, 200, 0, 300, 0, 0]
    everything = [event_id for ids in receipts for event_id in ids]
    assert everything == sorted(everything) and len(set(everything)) == 600
    stored = dict(Event.objects.filter(team=token.team).values_list("message_id", "id"))
    assert all(stored[f"busy-{n}-{i}"] == receipts[n][i] for n in range(6) for i in range(100))


def test_ids_left_longer_than_their_time_are_let_go(client, acme_token, ids_drawn, reserve_clock):
    from events.ingest import storage

    _, plaintext = acme_token
    post_batch(client, plaintext, track_batch("early-0", 10))
    early = post_batch(client, plaintext, track_batch("early-1", 10))
    assert ids_drawn() == 10 + 20  # the second batch drew 10 more than it needed: they wait in the reserve
    last_early = max(result["id"] for result in early.json()["results"])
    left = range(last_early + 1, last_early + 11)

    reserve_clock.advance(storage.RESERVE_SECONDS + 0.1)  # time passes: the reserve is stale
    response = post_batch(client, plaintext, track_batch("late", 10))

    assert response.status_code == 200, response.content
    assert min(result["id"] for result in response.json()["results"]) > max(left)  # fresh ids, not those left
    assert ids_drawn() == 10  # the last takes only what it needs, until the process is busy again


def test_threads_taking_ids_at_once_never_share_one():
    import itertools
    import threading
    import time

    from events.ingest import storage

    sequence, sequence_lock = itertools.count(1), threading.Lock()

    def draw(cursor, count: int) -> list[int]:  # the sequence: each value once, whoever asks
        time.sleep(0.0005)  # a round trip: other threads run meanwhile
        with sequence_lock:
            return [next(sequence) for _ in range(count)]

    reserve = storage.IdReserve(draw)
    taken: list[list[int]] = []

    def batches() -> None:
        for size in [1, 7, 100, 3, 250] * 20:
            ids = reserve.take(None, size)
            assert len(ids) == size and ids == sorted(ids)
            taken.append(ids)

    threads = [threading.Thread(target=batches) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    everything = [event_id for ids in taken for event_id in ids]
    assert len(taken) == 800 and len(everything) == len(set(everything)) == 8 * 20 * 361


def _group_row(token, message_id: str, *, team_id: int | None = None) -> tuple:
    from events.ingest.storage import event_row
    from events.ingest.validation import validate_event

    now = timezone.now()
    body = {"version": 1, "type": "event", "event": "Signed up", "properties": {"plan": "pro"}, "messageId": message_id}
    payload, problems = validate_event(body, received_at=now)
    assert problems == []
    assert payload is not None
    return event_row(team_id=team_id or token.team_id, token_id=token.id, payload=payload, received_at=now)


@pytest.mark.django_db(transaction=True)
def test_a_group_answers_stored_and_duplicate_rows_in_order(acme_token):
    from events.ingest.group_commit import open_connection
    from events.ingest.storage import store_group

    token, _ = acme_token
    with open_connection() as group:
        (first,) = store_group(group, [_group_row(token, "g-1")])
        results = store_group(group, [_group_row(token, "g-2"), _group_row(token, "g-1"), _group_row(token, "g-2")])

    assert first.duplicate is False
    stored, resent, repeated = results
    assert (stored.duplicate, resent, repeated) == (False, (first.id, True), (stored.id, True))
    assert Event.objects.filter(team=token.team, message_id__in=["g-1", "g-2"]).count() == 2


@pytest.mark.django_db(transaction=True)
def test_a_group_the_database_refuses_raises_its_error_and_stores_nothing(acme_token):
    import psycopg

    from events.ingest.group_commit import open_connection
    from events.ingest.storage import store_group

    token, _ = acme_token
    with open_connection() as group:
        with pytest.raises(psycopg.errors.ForeignKeyViolation):
            store_group(group, [_group_row(token, "g-ok"), _group_row(token, "g-orphan", team_id=987654)])
        (after,) = store_group(group, [_group_row(token, "g-after")])  # the connection is still usable

    assert not Event.objects.filter(message_id__in=["g-ok", "g-orphan"]).exists()
    assert not EventMessageId.objects.filter(message_id__in=["g-ok", "g-orphan"]).exists()  # nor their claims
    assert Event.objects.get(message_id="g-after").id == after.id


@pytest.mark.django_db(transaction=True)
def test_a_group_on_a_connection_the_server_cut_raises_an_operational_error(acme_token):
    import psycopg
    from django.db import connection

    from events.ingest.group_commit import open_connection
    from events.ingest.storage import store_group

    token, _ = acme_token
    with open_connection() as group:
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_terminate_backend(%s)", [group.info.backend_pid])
        with pytest.raises(psycopg.OperationalError):
            store_group(group, [_group_row(token, "g-cut")])

    assert not Event.objects.filter(message_id="g-cut").exists()


@pytest.mark.django_db(transaction=True)
def test_a_message_id_is_stored_once_whichever_path_sends_it_again(acme_token):
    """/v1/event (group commit), /v1/batch (its COPY fails on the claim, the staging path answers), a large group
    (store_rows), store_row: each finds the first claim and answers its event."""
    from django.db import connection, transaction

    from canvas.wsgi import application
    from events.ingest.group_commit import open_connection
    from events.ingest.storage import store_group, store_row, store_rows
    from events.ingest.tests.test_wsgi import wsgi_post

    token, plaintext = acme_token
    item = {"type": "track", "event": "Signed Up", "userId": "u1", "messageId": "once"}
    single = {"version": 1, "type": "event", "event": "Signed Up", "messageId": "once"}
    answer = wsgi_post(application, client_json(single), token=plaintext)
    assert (answer.status, answer.json()["duplicate"]) == (200, False), answer.body
    first = answer.json()["id"]

    answer = wsgi_post(
        application, client_json({"batch": [item, {**item, "messageId": "new"}]}), token=plaintext, path="/v1/batch"
    )
    assert [line["status"] for line in answer.json()["results"]] == ["duplicate", "stored"]
    with open_connection() as group:
        assert store_group(group, [_group_row(token, "once")])[0] == (first, True)
    with transaction.atomic(), connection.cursor() as cursor:
        assert store_rows(cursor, [_group_row(token, "once")] * 2) == [(first, True)] * 2
    assert store_row(_group_row(token, "once")) == (first, True)

    assert list(Event.objects.filter(team=token.team, message_id="once").values_list("id", flat=True)) == [first]
    assert EventMessageId.objects.get(team_id=token.team_id, message_id="once").event_id == first


@pytest.mark.django_db(transaction=True)
def test_a_batch_copied_straight_claims_its_message_ids_with_its_rows(acme_token):
    from canvas.wsgi import application
    from events.ingest.tests.test_wsgi import wsgi_post

    token, plaintext = acme_token
    batch = [{"type": "track", "event": "Signed Up", "userId": "u1", "messageId": f"claim-{i}"} for i in range(3)]
    batch.append({"type": "track", "event": "No messageId", "userId": "u1"})

    answer = wsgi_post(application, client_json({"batch": batch}), token=plaintext, path="/v1/batch")

    assert answer.status == 200, answer.body
    stored = dict(Event.objects.filter(team=token.team, message_id__isnull=False).values_list("message_id", "id"))
    claims = dict(EventMessageId.objects.filter(team_id=token.team_id).values_list("message_id", "event_id"))
    assert claims == stored and len(claims) == 3
    assert Event.objects.filter(team=token.team).count() == 4


def _traced(connection, call):
    """What `call` sent to PostgreSQL and what it got back, as libpq's trace of the protocol's messages."""
    import tempfile

    from psycopg.pq import Trace

    with tempfile.TemporaryFile("w+") as trace:
        pgconn = connection.connection.pgconn
        pgconn.trace(trace.fileno())
        pgconn.set_trace_flags(Trace.SUPPRESS_TIMESTAMPS | Trace.REGRESS_MODE)
        try:
            result = call()
        finally:
            pgconn.untrace()
        trace.seek(0)
        # Each line: who sent the message (F, the client; B, the server), its length, its type and its fields.
        return result, [
            (*line.split("\t")[:3], "\t".join(line.split("\t")[3:]).strip()) for line in trace.read().splitlines()
        ]


@pytest.mark.django_db(transaction=True)
def test_a_batch_copied_straight_sends_its_rows_and_claims_as_one_query(acme_token):
    """The rows' COPY and their claims' INSERT travel as one query, in its own implicit transaction: no BEGIN or
    COMMIT, no second COPY, so the batch makes the two round trips of a COPY (besides drawing ids), as it did
    before the claims (docs/performance.md#partitions-and-the-messageid-claims)."""
    from django.db import connection

    from events.ingest.storage import store_batch

    token, _ = acme_token
    rows = [_group_row(token, f"one-query-{i}") for i in range(5)]
    connection.ensure_connection()

    stored, trace = _traced(connection, lambda: store_batch(rows))

    messages = [(direction, kind, detail[:23]) for direction, _, kind, detail in trace]
    draw = messages.index(("B", "ReadyForQuery", "I")) + 1  # the ids' draw aside: one query of its own
    assert "array_agg" in messages[0][2] + trace[0][3]
    assert messages[draw:] == [
        (
            "F",
            "Query",
            '"COPY events_event (id,',
        ),  # ...; INSERT INTO events_message_id ... SELECT ... FROM events_event
        ("B", "CopyInResponse", messages[draw + 1][2]),
        ("F", "CopyData", "'BBBB'"),
        ("F", "CopyDone", ""),
        ("B", "CommandComplete", '"COPY 5"'),
        ("B", "CommandComplete", '"INSERT 0 5"'),
        ("B", "ReadyForQuery", "I"),  # committed by itself: no BEGIN or COMMIT
    ]
    assert "INSERT INTO events_message_id" in trace[draw][3]
    claims = dict(EventMessageId.objects.filter(team_id=token.team_id).values_list("message_id", "event_id"))
    assert claims == {f"one-query-{i}": event_id for i, (event_id, _) in enumerate(stored)}


@pytest.mark.django_db(transaction=True)
def test_a_batch_copied_straight_claims_only_its_own_rows_across_teams_and_times(acme_token, globex_token):
    """The claims are written as literals: rows of two teams received at two times are each claimed for their own
    event, another batch's rows are not claimed again, and a messageId with quotes and backslashes is kept as
    sent (never read as SQL)."""
    from datetime import timedelta

    from events.ingest.storage import store_batch

    acme, _ = acme_token
    globex, _ = globex_token
    between = store_batch([_group_row(acme, "between")])
    hostile = "acme's \\'); DELETE FROM events_message_id; --"
    rows = [_group_row(acme, hostile), _group_row(globex, "globex", team_id=globex.team_id)]
    rows[1] = (*rows[1][:8], rows[1][8] - timedelta(seconds=1), *rows[1][9:])  # received a second earlier

    stored = store_batch(rows)

    claims = {
        (team_id, message_id): event_id
        for team_id, message_id, event_id in EventMessageId.objects.values_list("team_id", "message_id", "event_id")
    }
    assert claims == {
        (acme.team_id, "between"): between[0].id,
        (acme.team_id, hostile): stored[0].id,
        (globex.team_id, "globex"): stored[1].id,
    }
    assert Event.objects.get(id=stored[1].id).received_at == rows[1][8]
