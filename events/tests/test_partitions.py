"""The events table's monthly partitions (events.partitions), with the clock frozen where the months are."""

from datetime import UTC, datetime

import pytest
import time_machine

from events.models import Event
from events.partitions import DEFAULT_PARTITION, partitions_drop_before
from events.retention import events_maintain
from events.tests.event_factories import fetch, store_event

pytestmark = pytest.mark.django_db

MARCH_2031 = datetime(2031, 3, 15, 12, tzinfo=UTC)


def _partition_of(event_id: int) -> str:
    return fetch("SELECT tableoid::regclass::text FROM events_event WHERE id = %s", [event_id])[0][0]


def _partitions() -> set[str]:
    return {
        name
        for (name,) in fetch(
            "SELECT inhrelid::regclass::text FROM pg_inherits WHERE inhparent = 'events_event'::regclass"
        )
    }


def test_the_table_is_partitioned_by_received_at_with_team_in_its_primary_key():
    [(key,)] = fetch("SELECT pg_get_partkeydef('events_event'::regclass)")
    [(primary_key,)] = fetch("SELECT pg_get_constraintdef(oid) FROM pg_constraint WHERE conname = 'events_event_pkey'")

    assert key == "RANGE (received_at)"
    assert primary_key == "PRIMARY KEY (team_id, id, received_at)"


def test_maintenance_creates_this_month_and_two_ahead(acme):
    with time_machine.travel(MARCH_2031, tick=False):
        created = events_maintain().partitions_created
        event_id = store_event(acme)

    assert created == ["events_event_y2031m03", "events_event_y2031m04", "events_event_y2031m05"]
    assert _partition_of(event_id) == "events_event_y2031m03"
    with time_machine.travel(MARCH_2031, tick=False):
        assert events_maintain().partitions_created == []  # once is enough


def test_events_outside_every_month_created_go_to_the_default_partition_and_move_when_their_month_comes(acme):
    early = store_event(acme, received_at=datetime(2031, 4, 2, tzinfo=UTC))
    assert _partition_of(early) == DEFAULT_PARTITION

    with time_machine.travel(MARCH_2031, tick=False):
        events_maintain()

    assert _partition_of(early) == "events_event_y2031m04"
    assert Event.objects.filter(pk=early).exists()


def test_partitions_are_dropped_only_once_every_row_is_past_the_cutoff(acme):
    with time_machine.travel(MARCH_2031, tick=False):
        events_maintain()
    in_march = store_event(acme, received_at=datetime(2031, 3, 31, 23, tzinfo=UTC))
    in_april = store_event(acme, received_at=datetime(2031, 4, 1, tzinfo=UTC))

    dropped = partitions_drop_before(cutoff=datetime(2031, 4, 1, 12, tzinfo=UTC))

    assert "events_event_y2031m03" in dropped and "events_event_y2031m04" not in dropped
    assert not Event.objects.filter(pk=in_march).exists()
    assert Event.objects.filter(pk=in_april).exists()
    assert "events_event_y2031m03" not in _partitions() and DEFAULT_PARTITION in _partitions()
