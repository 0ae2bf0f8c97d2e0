"""`make bench-warehouse` end to end at a tiny scale, so that the harness cannot rot between its long runs: the
load through the ingest code, the sync, the queries against native twins, ingest on both databases, the export,
the report and the record that lets the next run skip the load. Speed is not judged here."""

import shutil
import subprocess
import sys

import psycopg
import pytest
from django.conf import settings
from django.db import connection
from psycopg import sql

from bench.config import ROOT
from bench.warehouse import QUERIES, load_key, parse_arguments, recorded_load
from chaos.processes import RedisServer, database_url

pytestmark = [
    pytest.mark.live,
    pytest.mark.skipif(connection.vendor != "postgresql", reason="the warehouse needs PostgreSQL"),
]
EVENTS = 1000  # per team


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


def test_the_harness_loads_syncs_queries_ingests_exports_and_records_its_load(bench_databases, redis_url, tmp_path):
    loaded, empty = bench_databases
    report = tmp_path / "warehouse.md"
    arguments = ["--events", str(EVENTS), "--workers", "1", "--repetitions", "1", "--ingest-seconds", "1",
                 "--export-rows", "500", "--database-url", loaded, "--empty-database-url", empty,
                 "--redis-url", redis_url, "--report", str(report)]  # fmt: skip

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
