"""After the runs: is every acknowledged event in the table? A missing one makes `make bench` exit 1."""

from pathlib import Path
from typing import Any

import psycopg

from .results import Results

PHASE_PREFIXES = (("B1", "b1-"), ("B2", "b2-"))  # each phase's messageIds (and its id files) start so


def acknowledged_by_phase(results: Results, *, probes: int) -> dict[str, int]:
    """Events the server acknowledged as stored, per phase; warm-up runs store events too and count like the
    others, and so do the `probes` single events sent before B1 to check the endpoint."""
    runs = results.warmups + results.b1 + results.b1_at_80 + results.b2 + results.b2_all
    acknowledged = {
        phase: sum(run.acknowledged for run in runs if run.phase.startswith(phase)) for phase, _ in PHASE_PREFIXES
    }
    acknowledged["B1"] += probes
    return acknowledged


def reconcile(results: Results, ids_dir: Path, acknowledged: dict[str, int], *, database_url: str) -> dict:
    """Per phase: each id the server answered for a stored event (the .ids files in `ids_dir`) is looked up, and
    the rows (by messageId prefix) are counted against the acknowledgements. More rows than acknowledgements is
    fine: requests in flight when wrk stopped were stored, their answers not counted."""
    summary: dict = {"missing": 0}
    with psycopg.connect(database_url) as connection:
        summary["rows_counted"] = _count(connection, "SELECT count(*) FROM events_event")
        for phase, prefix in PHASE_PREFIXES:
            ids = [int(line) for path in sorted(ids_dir.glob(f"{prefix}*.ids")) for line in path.read_text().split()]
            found, rows = _found_and_rows(connection, ids, prefix)
            summary["missing"] += (
                (len(set(ids)) - found)  # an acknowledged id that is not in the table
                + (len(ids) - len(set(ids)))  # one id answered for two events
                + abs(acknowledged[phase] - len(ids))  # an acknowledgement whose id was not recorded
                + max(acknowledged[phase] - rows, 0)  # fewer rows than acknowledgements
            )
            summary[phase] = {"acknowledged": acknowledged[phase], "ids": len(ids), "found": found, "rows": rows}
    results.reconciliation = summary
    return summary


def _found_and_rows(connection: psycopg.Connection[Any], ids: list[int], prefix: str) -> tuple[int, int]:
    """How many of the distinct `ids` are in events_event, and how many rows have a messageId with `prefix`."""
    # The primary key is (team_id, id): naming the team lets each look-up use it.
    found = _count(
        connection,
        "SELECT count(*) FROM unnest(%s::bigint[]) AS acknowledged(id) "
        "JOIN events_event e ON e.id = acknowledged.id AND e.team_id IN (SELECT id FROM accounts_team)",
        (list(set(ids)),),
    )
    rows = _count(connection, "SELECT count(*) FROM events_event WHERE message_id LIKE %s", (prefix + "%",))
    return found, rows


def _count(connection: psycopg.Connection[Any], query: str, params: tuple[object, ...] = ()) -> int:
    row = connection.execute(query, params).fetchone()
    assert row is not None  # count(*) answers one row
    return int(row[0])
