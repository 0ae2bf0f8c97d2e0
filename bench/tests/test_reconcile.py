"""After a benchmark, every event the server acknowledged is looked for in the table: reconcile must count an
acknowledged event that is not there as missing, however it went missing."""

import pytest
from django.db import connection

from bench.reconcile import acknowledged_by_phase, reconcile
from bench.results import Run
from events.models import Event
from events.tests.event_factories import store_event

from .factories import made_up_results

pytestmark = pytest.mark.django_db(transaction=True)  # reconcile reads through a connection of its own


@pytest.fixture
def test_database() -> str:
    """The test database's URL, for reconcile's connection instead of the benchmark's."""
    settings = connection.settings_dict
    return f"postgres://{settings['USER']}@{settings['HOST']}:{settings['PORT'] or 5432}/{settings['NAME']}"


@pytest.fixture
def acknowledged_events(acme, tmp_path):
    """Two /v1/event answers and three /v1/batch ones, stored, with the ids wrk's threads wrote down."""
    b1 = [store_event(acme, message_id=f"b1-c16-1-{n}") for n in (1, 2)]
    b2 = [store_event(acme, message_id=f"b2-c4-1-{n}") for n in (1, 2, 3)]
    (tmp_path / "b1-c16-1.ids").write_text("".join(f"{id}\n" for id in b1))
    (tmp_path / "b2-c4-1.ids").write_text("".join(f"{id}\n" for id in b2))
    return b1, b2


def _reconcile(database_url: str, ids_dir, acknowledged: dict[str, int]) -> dict:
    results = made_up_results()
    summary = reconcile(results, ids_dir, acknowledged, database_url=database_url)
    assert results.reconciliation == summary
    return summary


def test_when_every_acknowledged_event_is_stored_none_is_missing(test_database, acknowledged_events, tmp_path):
    summary = _reconcile(test_database, tmp_path, {"B1": 2, "B2": 3})

    assert summary["missing"] == 0
    assert summary["rows_counted"] == 5
    assert summary["B1"] == {"acknowledged": 2, "ids": 2, "found": 2, "rows": 2}


def test_an_acknowledged_event_that_is_not_in_the_table_is_missing(test_database, acknowledged_events, tmp_path):
    _, b2 = acknowledged_events
    Event.objects.filter(pk=b2[1]).delete()

    summary = _reconcile(test_database, tmp_path, {"B1": 2, "B2": 3})

    assert summary["missing"] == 2  # its id is not found, and B2 has fewer rows than acknowledgements
    assert summary["B2"] == {"acknowledged": 3, "ids": 3, "found": 2, "rows": 2}


def test_one_id_answered_for_two_events_counts_as_missing(test_database, acknowledged_events, tmp_path):
    b1, _ = acknowledged_events
    (tmp_path / "b1-c32-2.ids").write_text(f"{b1[0]}\n")  # a second answer that named the same row

    summary = _reconcile(test_database, tmp_path, {"B1": 3, "B2": 3})

    assert summary["missing"] == 2  # a duplicate id, and three acknowledgements for two rows


def test_an_acknowledgement_whose_id_was_not_written_down_is_missing(test_database, acknowledged_events, tmp_path):
    summary = _reconcile(test_database, tmp_path, {"B1": 2, "B2": 4})

    assert summary["missing"] == 2  # four acknowledged, three ids recorded, three rows


def test_rows_beyond_the_acknowledgements_are_not_missing(test_database, acknowledged_events, acme, tmp_path):
    # A request in flight when wrk stopped: stored, its answer never counted.
    store_event(acme, message_id="b1-c16-1-3")

    summary = _reconcile(test_database, tmp_path, {"B1": 2, "B2": 3})

    assert summary["missing"] == 0
    assert summary["B1"]["rows"] == 3


def _acknowledging(phase: str, acknowledged: int) -> Run:
    return Run(
        phase=phase, name=phase.lower(), connections=1, seconds=1.0, requests=acknowledged, acknowledged=acknowledged
    )


def test_acknowledgements_are_counted_per_phase_with_warmups_and_probes():
    results = made_up_results(
        warmups=[_acknowledging("B0-http", 500), _acknowledging("B1", 7), _acknowledging("B2-all", 200)],
        b0_http=[_acknowledging("B0-http", 1000)],  # hello-world stores nothing
        b1=[_acknowledging("B1", 30)],
        b1_at_80=[_acknowledging("B1@80%", 20)],
        b2=[_acknowledging("B2", 300)],
        b2_all=[_acknowledging("B2-all", 400)],
    )

    assert acknowledged_by_phase(results, probes=1) == {"B1": 58, "B2": 900}
