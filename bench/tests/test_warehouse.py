"""`make bench-warehouse` end to end at a tiny scale, so that the harness cannot rot between its long runs: the
load through the ingest code, the sync, the queries against native twins, ingest on both databases, the export,
the report and the record that lets the next run skip the load. Speed is not judged here."""

import itertools
import shutil
import subprocess
import sys
from datetime import UTC, datetime, timedelta

import psycopg
import pytest
from django.conf import settings
from django.db import connection
from psycopg import sql

from bench.config import ROOT
from bench.warehouse import QUERIES, chunks_of_time, load_key, parse_arguments, recorded_load
from bench.warehouse_events import Chunk, messages
from chaos.processes import RedisServer, database_url

postgresql_only = pytest.mark.skipif(connection.vendor != "postgresql", reason="the warehouse needs PostgreSQL")
EVENTS = 1000  # per team


def test_every_message_is_one_the_ingest_code_accepts_and_a_chunk_is_made_the_same_every_time():
    from events.ingest.validation import validate_segment_message

    end = datetime(2026, 12, 1, tzinfo=UTC)
    chunk = Chunk(1, "acme", 0, 500, 50, end - timedelta(days=1), end)

    made = messages(chunk)

    assert made == messages(chunk)
    assert {document.get("event", document["type"]) for document, _ in made} == {
        "Purchased an Item", "Viewed Product", "Signed Up", "identify", "page"
    }  # fmt: skip
    for document, received_at in made:
        payload, problems = validate_segment_message(document, received_at=received_at)
        assert payload is not None, problems
        assert chunk.starts <= payload.timestamp < chunk.ends


def test_each_team_gets_the_events_asked_for_in_slices_of_time_that_follow_each_other():
    end = datetime(2026, 12, 1, tzinfo=UTC)

    chunks = chunks_of_time(120_001, 90, end, {"acme": 1, "globex": 2})

    for team_id in (1, 2):
        own = [chunk for chunk in chunks if chunk.team_id == team_id]
        assert sum(chunk.count for chunk in own) == 120_001
        assert own[0].starts == end - timedelta(days=90)
        assert own[-1].ends == end
        assert all(a.ends == b.starts for a, b in itertools.pairwise(own))


@pytest.fixture
def bench_databases():
    """The harness's two databases, named after the test database, dropped afterwards with the login it made."""
    database = settings.DATABASES["default"]
    name = f"{database['NAME']}_bench_warehouse"[:50]
    parts = {"user": database["USER"], "host": database["HOST"] or "127.0.0.1", "port": database["PORT"]}
    urls = [database_url(**parts, password=database["PASSWORD"], name=n) for n in (name, f"{name}_empty")]
    yield urls
    maintenance = database_url(**parts, password=database["PASSWORD"], name="postgres")
    with psycopg.connect(maintenance, autocommit=True) as admin:
        for dropped in (name, f"{name}_empty"):
            admin.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(dropped)))
        for (role,) in admin.execute("SELECT rolname FROM pg_roles WHERE starts_with(rolname, %s)", [name]).fetchall():
            admin.execute(sql.SQL("DROP ROLE {}").format(sql.Identifier(role)))


@pytest.fixture
def redis_url(tmp_path):
    server = RedisServer(tmp_path)
    server.start()
    yield server.url(1)
    server.stop()


@pytest.mark.live
@postgresql_only
def test_the_harness_loads_syncs_queries_ingests_exports_and_records_its_load(bench_databases, redis_url, tmp_path):
    loaded, empty = bench_databases
    report = tmp_path / "warehouse.md"
    arguments = ["--events", str(EVENTS), "--workers", "1", "--repetitions", "1", "--ingest-seconds", "1",
                 "--ingest-rounds", "1", "--export-rows", "500", "--database-url", loaded,
                 "--empty-database-url", empty, "--redis-url", redis_url, "--report", str(report)]  # fmt: skip

    finished = subprocess.run(
        [sys.executable, "-m", "bench.warehouse", *arguments], cwd=ROOT, capture_output=True, text=True, timeout=300
    )

    assert finished.returncode in (0, 2), finished.stdout[-3000:] + finished.stderr[-3000:]  # 2: a target missed
    page = report.read_text()
    for query in QUERIES:
        assert f"| {query.label} | " in page
    assert "| sync | " in page
    if shutil.which("wrk"):  # `make bench-warehouse` installs it; without it ingest and export are skipped
        assert "| B1 with the load stored / on an empty table | " in page
        assert "| B2 with the load stored / on an empty table | " in page
        assert "| CSV export | " in page
    load = recorded_load(loaded, load_key(parse_arguments(arguments)))
    assert load is not None
    assert load.events == 2 * EVENTS
    with psycopg.connect(loaded) as check:
        # The ingest team's rows are gone again: the load stays as recorded.
        assert check.execute("SELECT count(*) FROM events_event").fetchone() == (2 * EVENTS,)
        twin = check.execute("SELECT count(*) FROM native_acme.purchased_an_item").fetchone()
        relation = check.execute("SELECT count(*) FROM team_acme.purchased_an_item").fetchone()
        assert twin == relation
        assert twin[0] > 0
