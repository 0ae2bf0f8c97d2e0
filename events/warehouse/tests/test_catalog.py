"""events/warehouse/catalog.py: the catalog and the hourly volume, computed incrementally from the events table."""

from datetime import UTC, datetime, timedelta

import pytest
from django.core.management import call_command
from django.db import connection
from django.db.models import Max
from django.utils import timezone

from events.models import (
    CatalogBackfill,
    CatalogEvent,
    CatalogOther,
    CatalogProperty,
    CatalogSyncState,
    Event,
    EventVolume,
    TeamWarehouse,
)
from events.tests.event_factories import (
    data_made_in_postgresql,
    fetch,
    fill_catalog,
    post_batch,
    store_event,
    store_names,
    track_batch,
)
from events.warehouse.catalog import (
    MAX_CATALOG_EVENTS,
    MAX_CATALOG_PROPERTIES,
    CatalogLag,
    catalog_lag,
    catalog_sync,
)
from events.warehouse.column_types import flatten

postgresql_only = pytest.mark.skipif(connection.vendor != "postgresql", reason="needs the PostgreSQL sequence")


@pytest.fixture
def caught_up(db):
    """The catalog has read every id handed out so far (earlier tests' rolled-back rows leave gaps)."""
    catalog_sync()
    CatalogSyncState.objects.update(open_gaps=[])


def _property(team, event: str, *path: str) -> CatalogProperty:
    return CatalogProperty.objects.get(team=team, catalog_event__name=event, path=list(path))


def test_storing_an_event_writes_nothing_to_the_catalog(acme):
    store_event(acme, "Purchased an Item", {"revenue": 1})
    assert not CatalogEvent.objects.exists()
    assert not EventVolume.objects.exists()


def test_counts_add_up_over_incremental_syncs(acme):
    for _ in range(3):
        store_event(acme, "Purchased an Item", {"revenue": "39.95", "coupon": "SPRING"})
    assert catalog_sync().events == 3
    store_event(acme, "Purchased an Item", {"revenue": 12})
    store_event(acme, "Purchased an Item", {"revenue": 5, "coupon": None})
    store_event(acme, "Signed Up", {"plan": "pro"})
    assert catalog_sync().events == 3

    counts = dict(CatalogEvent.objects.filter(team=acme).values_list("name", "count"))
    assert counts == {"Purchased an Item": 5, "Signed Up": 1}
    revenue = _property(acme, "Purchased an Item", "revenue")
    assert (revenue.count, revenue.numeric_count, revenue.inferred_type) == (5, 5, "numeric")
    coupon = _property(acme, "Purchased an Item", "coupon")
    assert (coupon.count, coupon.text_count, coupon.inferred_type) == (3, 3, "text")  # null is not present


def test_a_second_sync_counts_nothing_twice(acme):
    store_event(acme, "Purchased an Item", {"revenue": 1})
    catalog_sync()
    assert catalog_sync().events == 0
    assert CatalogEvent.objects.get(team=acme).count == 1
    assert _property(acme, "Purchased an Item", "revenue").count == 1


def test_small_chunks_count_every_event(acme):
    catalog_sync()  # past the ids earlier tests used up (sequences do not roll back): the chunks below walk 7 ids
    for index in range(7):
        store_event(acme, f"Event {index % 2}")
    assert catalog_sync(chunk_size=2).events == 7
    assert sum(CatalogEvent.objects.values_list("count", flat=True)) == 7


def test_first_and_last_seen_follow_when_canvas_received_the_events(acme):
    first = datetime(2024, 1, 1, 9, tzinfo=UTC)
    last = datetime(2024, 1, 3, 18, tzinfo=UTC)
    store_event(acme, "Signed Up", received_at=first + timedelta(days=1))
    store_event(acme, "Signed Up", received_at=first)
    catalog_sync()
    store_event(acme, "Signed Up", received_at=last)
    catalog_sync()
    event = CatalogEvent.objects.get(team=acme)
    assert (event.first_seen_at, event.last_seen_at) == (first, last)


def test_properties_are_flattened_with_types_counted(acme):
    store_event(acme, "Purchased an Item", {"address": {"city": "Paris", "zip": 75001}, "gift": True})
    store_event(acme, "Purchased an Item", {"address": {"city": "Lyon"}, "gift": "yes", "at": "2024-01-05"})
    catalog_sync()
    properties = {
        ".".join(p.path): (p.column_name, p.count, p.inferred_type) for p in CatalogProperty.objects.filter(team=acme)
    }
    assert properties == {
        "address.city": ("address_city", 2, "text"),
        "address.zip": ("address_zip", 1, "numeric"),
        "gift": ("gift", 2, "text"),  # a boolean and a string: mixed
        "at": ("at", 1, "timestamptz"),
    }


def test_properties_nested_at_any_depth_are_flattened_as_flatten_does(acme):
    properties = {"a": {"b": {"c": {"d": 1, "e": {}}, "f": None}, "g": "x"}, "h": {}, "i": [{"j": 1}], "k": None}
    store_event(acme, "Deep", properties)
    store_event(acme, "Deep", {"a": {"b": {"c": {"d": "x"}}}})
    catalog_sync()
    counted = {tuple(p.path): (p.count, p.inferred_type) for p in CatalogProperty.objects.filter(team=acme)}
    assert set(counted) == {path for path, value in flatten(properties) if value is not None}
    assert counted == {("a", "b", "c", "d"): (2, "text"), ("a", "g"): (1, "text"), ("i",): (1, "text")}


def test_views_are_named_in_the_order_names_were_first_stored(acme):
    store_event(acme, "Signed Up")
    store_event(acme, "signed-up")
    store_event(acme, "Signed Up")
    catalog_sync()
    tables = dict(CatalogEvent.objects.filter(team=acme).values_list("name", "table_name"))
    assert tables["Signed Up"] == "signed_up"
    assert tables["signed-up"].startswith("signed_up_") and len(tables["signed-up"]) == len("signed_up_") + 8


def test_other_types_go_to_their_types_view_and_share_its_columns(acme):
    store_event(acme, "Home", {"url": "/"}, type="page", name="Home")
    store_event(acme, "Pricing", {"url": "/pricing"}, type="page", name="Pricing")
    store_event(acme, "identify", {"email": "ann@acme.test"}, type="identify")
    catalog_sync()
    assert dict(CatalogEvent.objects.filter(team=acme).values_list("name", "table_name")) == {
        "Home": "pages",
        "Pricing": "pages",
        "identify": "identifies",
    }
    assert set(CatalogProperty.objects.filter(team=acme, path=["url"]).values_list("column_name", flat=True)) == {"url"}


def test_each_teams_catalog_is_its_own(acme, globex):
    store_event(acme, "Purchased an Item", {"revenue": 1})
    store_event(globex, "Purchased an Item", {"sku": "X"})
    catalog_sync()
    assert CatalogEvent.objects.get(team=acme).count == 1
    assert list(CatalogProperty.objects.filter(team=globex).values_list("column_name", flat=True)) == ["sku"]


def test_only_new_names_properties_and_type_changes_call_for_new_views(acme, globex):
    store_event(acme, "Purchased an Item", {"revenue": 1})
    assert catalog_sync().teams_changed == {acme.pk}
    store_event(acme, "Purchased an Item", {"revenue": 2})
    assert catalog_sync().teams_changed == set()
    store_event(acme, "Purchased an Item", {"revenue": "free"})
    store_event(globex, "Signed Up")
    assert catalog_sync().teams_changed == {acme.pk, globex.pk}
    assert TeamWarehouse.objects.get(team=acme).catalog_version == 2


def test_volume_is_counted_per_hour_of_the_events_timestamp(acme):
    hour = timezone.now().replace(minute=0, second=0, microsecond=0) - timedelta(hours=3)
    store_event(acme, "Purchased an Item", timestamp=hour + timedelta(minutes=5))
    store_event(acme, "Purchased an Item", timestamp=hour + timedelta(minutes=55))
    catalog_sync()
    store_event(acme, "Purchased an Item", timestamp=hour + timedelta(minutes=30))
    store_event(acme, "Purchased an Item", timestamp=hour + timedelta(hours=1))
    catalog_sync()
    volume = dict(EventVolume.objects.filter(team=acme).values_list("hour", "count"))
    assert volume == {hour: 3, hour + timedelta(hours=1): 1}


@postgresql_only
def test_an_event_committed_after_a_later_one_is_still_counted(acme, caught_up):
    # An insert still in flight holds id N while N + 1 is already committed: reserve N, store N + 1, sync.
    (reserved,) = fetch("SELECT nextval(pg_get_serial_sequence('events_event', 'id'))")[0]
    store_event(acme, "Signed Up")
    catalog_sync()
    assert [gap[0] for gap in CatalogSyncState.objects.get().open_gaps] == [reserved]
    # The slow insert commits.
    fetch(
        "INSERT INTO events_event (id, team_id, type, event, properties, timestamp, received_at) "
        "VALUES (%s, %s, 'track', 'Purchased an Item', '{}', now(), now()) RETURNING id",
        [reserved, acme.pk],
    )
    catalog_sync()
    assert dict(CatalogEvent.objects.filter(team=acme).values_list("name", "count")) == {
        "Signed Up": 1,
        "Purchased an Item": 1,
    }
    assert CatalogSyncState.objects.get().open_gaps == []


@postgresql_only
def test_ids_that_never_appear_are_let_go(acme, caught_up):
    fetch("SELECT nextval(pg_get_serial_sequence('events_event', 'id'))")  # a duplicate took it, say
    store_event(acme, "Signed Up")
    catalog_sync()
    assert len(CatalogSyncState.objects.get().open_gaps) == 1
    catalog_sync(gap_ttl=timedelta(0))
    assert CatalogSyncState.objects.get().open_gaps == []


def test_properties_past_the_limit_are_not_catalogued(acme, monkeypatch):
    monkeypatch.setattr("events.warehouse.catalog.MAX_CATALOG_PROPERTIES", 2)
    monkeypatch.setattr("events.warehouse.naming.MAX_COLUMNS_PER_VIEW", 2)
    store_event(acme, "Purchased an Item", {"a": 1, "b": 2})
    store_event(acme, "Purchased an Item", {"c": 3, "a": 4})
    catalog_sync()
    assert sorted(CatalogProperty.objects.filter(team=acme).values_list("column_name", "count")) == [
        ("a", 2),
        ("b", 1),
    ]


def test_event_names_past_the_view_limit_are_counted_without_a_view(acme, monkeypatch):
    monkeypatch.setattr("events.warehouse.naming.MAX_EVENT_VIEWS", 1)
    store_event(acme, "Signed Up")
    store_event(acme, "Purchased an Item", {"revenue": 1})
    catalog_sync()
    assert dict(CatalogEvent.objects.filter(team=acme).values_list("name", "table_name")) == {
        "Signed Up": "signed_up",
        "Purchased an Item": "",
    }
    assert _property(acme, "Purchased an Item", "revenue").column_name == ""


@postgresql_only
def test_a_batch_stored_with_ids_drawn_ahead_before_a_sync_is_still_counted(acme_token, caught_up, client):
    acme, plaintext = acme_token[0].team, acme_token[1]

    def send(prefix: str):
        response = post_batch(client, plaintext, track_batch(prefix, 5))
        assert response.status_code == 200, response.content

    send("first")
    send("second")  # draws five ids ahead, which the next sync passes before any row holds them
    catalog_sync()
    assert len(CatalogSyncState.objects.get().open_gaps) == 5
    send("third")
    catalog_sync()
    assert CatalogEvent.objects.get(team=acme, name="Signed Up").count == 15
    assert CatalogSyncState.objects.get().open_gaps == []


# --- One team's failure holds back no other team -------------------------------------------------------------


@pytest.fixture
def refuse_new_names_of(db):
    """Make the catalog refuse one team's new event names, as a team's troublesome data would: a trigger that
    raises for that team only. Returns a function that lifts the refusal."""
    created = []

    def refuse(team):
        with connection.cursor() as cursor:
            cursor.execute(
                "CREATE FUNCTION refuse_catalog_event() RETURNS trigger LANGUAGE plpgsql AS "
                "$$ BEGIN RAISE EXCEPTION 'this team''s names break the catalog'; END $$"
            )
            cursor.execute(
                "CREATE TRIGGER refuse_catalog_event BEFORE INSERT ON events_catalogevent FOR EACH ROW "
                f"WHEN (NEW.team_id = {int(team.pk)}) EXECUTE FUNCTION refuse_catalog_event()"
            )
        created.append(team)

        def lift():
            with connection.cursor() as cursor:
                cursor.execute("DROP TRIGGER refuse_catalog_event ON events_catalogevent")
                cursor.execute("DROP FUNCTION refuse_catalog_event()")

        return lift

    return refuse


def _counts(team) -> dict[str, int]:
    return dict(CatalogEvent.objects.filter(team=team).values_list("name", "count"))


@postgresql_only
def test_a_team_whose_catalog_fails_holds_back_no_other_team(acme, globex, caught_up, refuse_new_names_of):
    lift = refuse_new_names_of(acme)
    store_event(acme, "Signed Up")
    store_event(globex, "Signed Up")
    store_event(acme, "Purchased an Item", {"revenue": 1})

    result = catalog_sync()

    assert result.teams_failed == {acme.pk}
    assert _counts(globex) == {"Signed Up": 1}
    assert _counts(acme) == {}
    assert CatalogSyncState.objects.get().last_event_id >= Event.objects.aggregate(Max("id"))["id__max"]
    failing = TeamWarehouse.objects.get(team=acme)
    assert failing.sync_error_step == "catalog"
    assert "this team's names break the catalog" in failing.sync_error
    assert failing.sync_failing_since is not None
    assert failing.catalog_backlog
    assert not TeamWarehouse.objects.get(team=globex).sync_error

    # Later events: the other team goes on; the failing one keeps the time its failure began.
    store_event(globex, "Signed Up")
    store_event(acme, "Signed Up")
    assert catalog_sync().teams_failed == {acme.pk}
    assert _counts(globex) == {"Signed Up": 2}
    still = TeamWarehouse.objects.get(team=acme)
    assert (still.sync_failing_since, still.sync_failures) == (failing.sync_failing_since, 2)

    # Once the cause is gone, the team's waiting events are counted, each once.
    lift()
    assert catalog_sync().teams_failed == set()
    assert _counts(acme) == {"Signed Up": 2, "Purchased an Item": 1}
    assert _property(acme, "Purchased an Item", "revenue").count == 1
    recovered = TeamWarehouse.objects.get(team=acme)
    assert (recovered.sync_error, recovered.sync_failing_since, recovered.catalog_backlog) == ("", None, [])
    assert catalog_sync().events == 0
    assert _counts(acme) == {"Signed Up": 2, "Purchased an Item": 1}


@postgresql_only
def test_a_long_backlog_is_counted_in_chunks_oldest_first(acme, globex, caught_up, refuse_new_names_of):
    lift = refuse_new_names_of(acme)
    for index in range(7):
        store_event(acme, f"Event {index % 3}")
        store_event(globex, "Signed Up")
    catalog_sync(chunk_size=3)
    assert _counts(globex) == {"Signed Up": 7}
    lift()

    catalog_sync(chunk_size=3)
    assert sum(_counts(acme).values()) == 3  # the oldest three of acme's seven
    catalog_sync(chunk_size=3)
    catalog_sync(chunk_size=3)
    assert _counts(acme) == {"Event 0": 3, "Event 1": 2, "Event 2": 2}
    assert TeamWarehouse.objects.get(team=acme).catalog_backlog == []


@postgresql_only
def test_a_late_event_of_a_failing_team_waits_with_the_rest_and_is_counted_once(
    acme, globex, caught_up, refuse_new_names_of
):
    """An event committed after the sync passed its id (a gap) belongs to the backlog's range: the retry
    counts it, and the gap's recheck must not count it again."""
    lift = refuse_new_names_of(acme)
    late_id = store_event(acme, "Signed Up")
    store_event(acme, "Signed Up")
    late = Event.objects.filter(pk=late_id)
    row = late.values()[0]
    late.delete()  # as if its transaction had not committed yet when the sync passed it
    catalog_sync()
    Event.objects.create(**row)  # it commits now
    lift()

    catalog_sync()
    catalog_sync()
    assert _counts(acme) == {"Signed Up": 2}


# --- At the caps: past them, names and properties are counted as Other, not catalogued one by one -----------


@data_made_in_postgresql
def test_names_past_the_cap_are_counted_as_other_not_catalogued(acme, globex):
    fill_catalog(acme)
    store_names(acme, "Viewed product ", 20, properties={"sku": "x"})
    store_event(acme, "Signed Up")
    store_event(acme, "Filler 7")  # a name already catalogued keeps counting
    store_event(globex, "Signed Up")  # another team's catalog has room
    catalog_sync()

    assert CatalogEvent.objects.filter(team=acme).count() == MAX_CATALOG_EVENTS
    assert CatalogEvent.objects.get(team=acme, name="Filler 7").count == 2
    assert not CatalogProperty.objects.filter(team=acme).exists()
    other = CatalogOther.objects.get(team=acme, catalog_event=None)
    assert (other.count, other.distinct) == (21, 21)
    assert dict(EventVolume.objects.filter(team=acme).values_list("event", "count")) == {
        "Filler 7": 1,
        EventVolume.OTHER_NAMES: 21,
    }
    assert CatalogEvent.objects.get(team=globex).name == "Signed Up"
    assert not CatalogOther.objects.filter(team=globex).exists()

    store_names(acme, "Viewed product ", 20)  # the same names again: more events, no more names
    catalog_sync()
    other.refresh_from_db()
    assert (other.count, other.distinct) == (41, 21)
    assert CatalogEvent.objects.filter(team=acme).count() == MAX_CATALOG_EVENTS


def test_properties_past_the_cap_are_counted_as_other_not_catalogued(acme):
    store_event(acme, "Purchased an Item", {f"p{i}": i for i in range(MAX_CATALOG_PROPERTIES)})
    catalog_sync()
    store_event(acme, "Purchased an Item", {"p0": 1, "coupon": "A", "gift": True, "note": {"a": 1, "b": 2}})
    store_event(acme, "Purchased an Item", {"coupon": "B"})
    catalog_sync()

    event = CatalogEvent.objects.get(team=acme)
    assert CatalogProperty.objects.filter(catalog_event=event).count() == MAX_CATALOG_PROPERTIES
    assert _property(acme, "Purchased an Item", "p0").count == 2
    assert not CatalogProperty.objects.filter(catalog_event=event, path=["coupon"]).exists()
    other = CatalogOther.objects.get(team=acme, catalog_event=event)
    assert (other.count, other.distinct) == (5, 4)  # coupon twice, gift, note.a, note.b
    assert not CatalogOther.objects.filter(team=acme, catalog_event=None).exists()


@data_made_in_postgresql
def test_a_tenant_sending_20000_names_grows_the_catalog_only_to_its_cap(acme):
    store_names(acme, "Made up name ", 20_000, properties={"a": 1})
    catalog_sync()
    assert CatalogEvent.objects.filter(team=acme).count() == MAX_CATALOG_EVENTS
    assert CatalogProperty.objects.filter(team=acme).count() == MAX_CATALOG_EVENTS
    assert EventVolume.objects.filter(team=acme).count() <= MAX_CATALOG_EVENTS + 1  # all in one hour here
    other = CatalogOther.objects.get(team=acme, catalog_event=None)
    assert other.count == 20_000 - MAX_CATALOG_EVENTS
    assert abs(other.distinct - other.count) <= other.count * 0.05  # an estimate, within its 3 % error


@pytest.mark.parametrize(
    "names",
    [
        pytest.param(["Signed Up", "signed up", "SIGNED UP"], id="case"),
        pytest.param(["Caf\u00e9", "Cafe\u0301"], id="nfc-and-nfd"),
        pytest.param(["x" * 200, "x" * 199 + "y"], id="longest-names"),
    ],
)
def test_names_that_look_alike_are_each_a_name_and_count_against_the_cap(acme, monkeypatch, names):
    monkeypatch.setattr("events.warehouse.catalog.MAX_CATALOG_EVENTS", len(names) - 1)
    for name in names:
        store_event(acme, name)
    catalog_sync()
    catalogued = list(CatalogEvent.objects.filter(team=acme).order_by("pk").values_list("name", "table_name"))
    assert [name for name, _ in catalogued] == names[:-1]
    assert len({table for _, table in catalogued}) == len(catalogued)  # each its own view
    other = CatalogOther.objects.get(team=acme, catalog_event=None)
    assert (other.count, other.distinct) == (1, 1)


def test_a_tenant_sending_5000_properties_per_event_grows_its_catalog_only_to_the_cap(acme_token, client):
    acme, plaintext = acme_token[0].team, acme_token[1]
    keys = [f"key {i}" for i in range(5 * MAX_CATALOG_PROPERTIES)]
    one_event = [{"type": "track", "event": "Purchased an Item", "userId": "u1", "properties": dict.fromkeys(keys, 1)}]
    assert post_batch(client, plaintext, one_event).status_code == 400  # more keys than one event may have
    spread = [
        {"type": "track", "event": "Purchased an Item", "userId": "u1", "properties": dict.fromkeys(part, 1)}
        for part in (keys[i : i + MAX_CATALOG_PROPERTIES] for i in range(0, len(keys), MAX_CATALOG_PROPERTIES))
    ]
    assert post_batch(client, plaintext, spread).status_code == 200
    catalog_sync()
    assert CatalogProperty.objects.filter(team=acme).count() == MAX_CATALOG_PROPERTIES
    other = CatalogOther.objects.get(team=acme, catalog_event__name="Purchased an Item")
    assert other.count == 4 * MAX_CATALOG_PROPERTIES
    assert abs(other.distinct - other.count) <= other.count * 0.05


# --- Backfills: events stored with ids the sync has passed -------------------------------------------------------


def _insert_with_id(team, event_id: int, name: str, properties: str = "{}") -> None:
    fetch(
        "INSERT INTO events_event (id, team_id, type, event, properties, timestamp, received_at) "
        "VALUES (%s, %s, 'track', %s, %s::jsonb, now(), now()) RETURNING id",
        [event_id, team.pk, name, properties],
    )


@postgresql_only
def test_an_event_backfilled_below_the_watermark_is_counted_once(acme, caught_up):
    (free_id,) = fetch("SELECT nextval(pg_get_serial_sequence('events_event', 'id'))")[0]  # never used
    store_event(acme, "Signed Up")
    catalog_sync()
    catalog_sync(gap_ttl=timedelta(0))  # the sync has passed free_id and stopped looking for it
    assert CatalogSyncState.objects.get().open_gaps == []

    _insert_with_id(acme, free_id, "Imported Order", '{"city": "Boston"}')
    assert list(CatalogBackfill.objects.values_list("team_id", "event_id")) == [(acme.pk, free_id)]
    assert catalog_sync().events == 1
    assert _counts(acme) == {"Signed Up": 1, "Imported Order": 1}
    assert _property(acme, "Imported Order", "city").text_count == 1
    assert not CatalogBackfill.objects.exists()
    assert catalog_sync().events == 0


@postgresql_only
def test_an_explicit_id_above_the_sequence_moves_it_on_and_is_counted(acme, caught_up):
    (last,) = fetch("SELECT pg_sequence_last_value(pg_get_serial_sequence('events_event', 'id'))")[0]
    _insert_with_id(acme, last + 1000, "Imported Order")
    assert not CatalogBackfill.objects.exists()  # above the watermark: the sync reaches it the usual way
    assert store_event(acme, "Signed Up") > last + 1000  # the sequence went past it: ids stay unique
    catalog_sync()
    assert _counts(acme) == {"Imported Order": 1, "Signed Up": 1}


@postgresql_only
def test_a_backfill_of_a_failing_team_waits_in_its_backlog(acme, caught_up, refuse_new_names_of):
    (free_id,) = fetch("SELECT nextval(pg_get_serial_sequence('events_event', 'id'))")[0]
    store_event(acme, "Signed Up")
    catalog_sync()
    catalog_sync(gap_ttl=timedelta(0))
    lift = refuse_new_names_of(acme)
    _insert_with_id(acme, free_id, "Imported Order")
    assert catalog_sync().teams_failed == {acme.pk}
    assert TeamWarehouse.objects.get(team=acme).catalog_backlog == [[free_id, free_id]]
    lift()
    catalog_sync()
    catalog_sync()
    assert _counts(acme) == {"Signed Up": 1, "Imported Order": 1}


# --- Lag, and counting again -------------------------------------------------------------------------------------


@postgresql_only
def test_lag_counts_the_events_behind_and_the_age_of_the_oldest(acme, caught_up, time_machine):
    time_machine.move_to(datetime(2026, 12, 8, 12, 0, tzinfo=UTC), tick=False)
    assert catalog_lag() == CatalogLag(events=0, seconds=0.0, open_gaps=0)
    store_event(acme, "Signed Up", received_at=timezone.now() - timedelta(seconds=42))
    store_event(acme, "Signed Up")
    lag = catalog_lag()
    assert (lag.events, lag.seconds) == (2, 42.0)
    catalog_sync()
    assert catalog_lag() == CatalogLag(events=0, seconds=0.0, open_gaps=0)


@postgresql_only
def test_a_recount_types_values_by_todays_rule_and_keeps_every_name(acme):
    store_event(acme, "Purchased an Item", {"zip": "02134-1234", "revenue": 5})  # ZIP+4: text under every rule
    store_event(acme, "Purchased an Item", {"zip": "10001-0001", "revenue": 7})
    catalog_sync()
    # As an older rule left it: zip codes counted as numbers, under a column name of its time.
    CatalogProperty.objects.filter(team=acme, path=["zip"]).update(
        numeric_count=2, text_count=0, column_name="zip_code"
    )
    names = dict(CatalogEvent.objects.filter(team=acme).values_list("name", "table_name"))

    call_command("sync_warehouse", "--recount")

    zip_code = _property(acme, "Purchased an Item", "zip")
    assert (zip_code.count, zip_code.numeric_count, zip_code.text_count) == (2, 0, 2)
    assert zip_code.inferred_type == "text"
    assert zip_code.column_name == "zip_code"
    assert dict(CatalogEvent.objects.filter(team=acme).values_list("name", "table_name")) == names
    assert _counts(acme) == {"Purchased an Item": 2}
    assert _property(acme, "Purchased an Item", "revenue").numeric_count == 2
    assert sum(EventVolume.objects.filter(team=acme).values_list("count", flat=True)) == 2
