"""`make bench-warehouse`: the warehouse at scale (issue 26), measured the way a BI user meets it.

1. Load: N events per team for two teams over 90 days through the ingest code (bench/warehouse_events.py: each
   message validated, made a row by event_row and stored by store_batch's COPY), in a database of its own. The
   load is recorded in a small table (LOAD_TABLE) with its parameters and the code's migrations; a run that
   finds the same load skips it (and the sync), so re-runs take minutes, not an hour. `--reload` forces it.
2. Sync: `python manage.py sync_warehouse` over the whole load, timed: events/s.
3. BI queries through the first team's relations (`team_<slug>.<relation>`) and through native twins built in
   the same run (CREATE TABLE native_<slug>.<relation> AS SELECT * FROM the relation, a btree index on
   timestamp, ANALYZE), both as the team's read-only warehouse login (its own settings: work_mem, jit...);
   the median of several repetitions, and the ratio relation / native.
4. Ingest: B1 (/v1/event) and B2 (/v1/batch) briefly against the loaded database and against an empty one
   migrated the same way, by turns, with gunicorn and wrk as `make bench` runs them: the ratio.
5. CSV export of the Events page for the team, through the same live server, logged in as an Owner: rows/s.

Writes var/bench/warehouse.md (and its figures as .json); `--publish` (make bench-warehouse-publish) copies it to
docs/benchmarks-warehouse.md. Exits 2 when a target is missed, 1 on an error.

The rule a newcomer must know: the harness uses only what a client, an operator or a BI tool uses (the ingest
code's storage functions, `manage.py sync_warehouse`, the relation names, the URLs), never the warehouse's
internals, so it measures whatever the warehouse becomes.
"""

import argparse
import io
import json
import os
import re
import secrets
import shutil
import statistics
import sys
import time
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from multiprocessing import get_context
from pathlib import Path
from urllib.parse import urlsplit

import psycopg
import requests
from psycopg import sql

from chaos.processes import Gunicorn, NewToken, migrate_and_create_token, run

from .config import BATCH_SIZE, ROOT, WORK_DIR
from .machine import cpu_list
from .payloads import batch_item_template, event_template
from .servers import bench_environment, reset_stores
from .warehouse_events import (
    USERS_PER_EVENTS,
    Chunk,
    create_teams,
    start_django,
    store_chunk,
    warehouse_login_and_owner,
)
from .wrk import Wrk

DATABASE_URL = os.environ.get(
    "BENCH_WAREHOUSE_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/canvas_bench_warehouse"
)
REDIS_URL = os.environ.get("BENCH_WAREHOUSE_REDIS_URL", "redis://127.0.0.1:6379/15")
REPORT = WORK_DIR / "warehouse.md"
PUBLISHED_REPORT = ROOT / "docs" / "benchmarks-warehouse.md"
TEAMS = ("acme", "globex")  # the queries run on the first
LOAD_TABLE = "bench_warehouse_load"
LOAD_FORMAT = 1  # bump when bench/warehouse_events.py makes other events: older loads are then made again
CHUNK_EVENTS = 50_000

# Targets (issue 26, "How it is measured").
MAX_QUERY_RATIO = 1.5
MAX_LATEST_MS = 5.0
MIN_SYNC_RATE = 200_000
MIN_INGEST_RATIO = 0.8
MIN_EXPORT_RATE = 50_000


@dataclass(frozen=True)
class Query:
    label: str
    relation: str
    text: str  # {relation} is the qualified relation, {end} the load's last moment

    def statement(self, schema: str, end: datetime) -> sql.Composed:
        return sql.SQL(self.text).format(
            relation=sql.Identifier(schema, self.relation), end=sql.Literal(end.isoformat())
        )


QUERIES = (
    Query(
        'daily revenue of "Purchased an Item", 30 days',
        "purchased_an_item",
        "SELECT date_trunc('day', timestamp) AS day, sum(revenue) FROM {relation} "
        "WHERE timestamp > {end}::timestamptz - interval '30 days' GROUP BY 1 ORDER BY 1",
    ),
    Query(
        "count by shipping method, 90 days",
        "purchased_an_item",
        "SELECT shipping_method, count(*) FROM {relation} "
        "WHERE timestamp > {end}::timestamptz - interval '90 days' GROUP BY 1 ORDER BY 2 DESC",
    ),
    Query(
        "top 10 cities by revenue",
        "purchased_an_item",
        "SELECT address_city, sum(revenue) FROM {relation} GROUP BY 1 ORDER BY 2 DESC NULLS LAST LIMIT 10",
    ),
    Query(
        "latest 100 rows (`ORDER BY timestamp DESC LIMIT 100`)",
        "tracks",
        "SELECT * FROM {relation} ORDER BY timestamp DESC LIMIT 100",
    ),
    Query(
        "count of tracks, 90 days",
        "tracks",
        "SELECT count(*) FROM {relation} WHERE timestamp > {end}::timestamptz - interval '90 days'",
    ),
)
LATEST = QUERIES[3]
# B1 and B2: path, ingest.lua's mode, the body around its messageId (bench/payloads.py), connections.
INGEST = {"B1": ("/v1/event", "event", event_template, 16), "B2": ("/v1/batch", "batch", batch_item_template, 4)}


@dataclass
class Load:
    """What is in the database: the parameters it was made with, and the sync's time over it."""

    key: dict
    end: datetime
    loaded_at: datetime
    load_seconds: float
    sync_seconds: float
    events: int
    reused: bool = False

    @property
    def load_rate(self) -> float:
        return self.events / self.load_seconds if self.load_seconds else 0.0

    @property
    def sync_rate(self) -> float:
        return self.events / self.sync_seconds if self.sync_seconds else 0.0


def query_ratio(query: dict) -> float:
    """How many times its native twin's time a query took through the team's relation."""
    return query["relation_ms"] / query["native_ms"] if query["native_ms"] else float("inf")


@dataclass
class Figures:
    load: Load | None = None
    queries: list[dict] = field(default_factory=list)  # label, relation_ms, native_ms, rows
    twins_seconds: float = 0.0
    ingest: list[dict] = field(default_factory=list)  # phase, empty, loaded (events/s)
    ingest_skipped: str = ""
    export: dict = field(default_factory=dict)  # rows, seconds
    export_skipped: str = ""
    load_average: str = ""

    def ingest_ratio(self, phase: str) -> float | None:
        runs = [run for run in self.ingest if run["phase"] == phase and run["empty"]]
        return statistics.median(run["loaded"] / run["empty"] for run in runs) if runs else None

    def checks(self) -> list[tuple[str, str, str, bool]]:
        """(what, measured, target, met) for every target issue 26 sets, then the export's."""
        checks = []
        for query in self.queries:
            ratio = query_ratio(query)
            checks.append(
                (query["label"], f"{ratio:.1f}x its native twin", f"<= {MAX_QUERY_RATIO}x", ratio <= MAX_QUERY_RATIO)
            )
        latest = next((q for q in self.queries if q["label"] == LATEST.label), None)
        if latest:
            ms = latest["relation_ms"]
            checks.append(("latest 100 rows", f"{ms:,.1f} ms", f"<= {MAX_LATEST_MS:.0f} ms", ms <= MAX_LATEST_MS))
        if self.load:
            rate = self.load.sync_rate
            checks.append(("sync", f"{rate:,.0f} events/s", f">= {MIN_SYNC_RATE:,} events/s", rate >= MIN_SYNC_RATE))
        for phase in ("B1", "B2"):
            ingest = self.ingest_ratio(phase)
            if ingest is not None:
                what = f"{phase} with the load stored / on an empty table"
                checks.append((what, f"{ingest:.2f}", f">= {MIN_INGEST_RATIO}", ingest >= MIN_INGEST_RATIO))
        if self.export:
            rate = self.export["rows"] / self.export["seconds"]
            checks.append(
                ("CSV export", f"{rate:,.0f} rows/s", f">= {MIN_EXPORT_RATE:,} rows/s", rate >= MIN_EXPORT_RATE)
            )
        return checks


def parse_arguments(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.warehouse", description=__doc__.split("\n", 1)[0])
    add = parser.add_argument
    add("--events", type=int, default=5_000_000, help="events per team (5,000,000)")
    add("--days", type=int, default=90, help="the days the events span (90)")
    add("--workers", type=int, default=2, help="processes that load (2)")
    add("--repetitions", type=int, default=5, help="runs of each query after a warm-up; the median counts (5)")
    add("--ingest-seconds", type=int, default=10, help="seconds per wrk run of B1 and B2 (10; 0 skips them)")
    add("--ingest-rounds", type=int, default=3, help="rounds of B1 and B2 on both databases; median ratio (3)")
    add("--export-rows", type=int, default=200_000, help="CSV rows read from the export (200,000; 0 skips it)")
    add("--reload", action="store_true", help="load again even if the database holds the same load")
    add("--database-url", default=DATABASE_URL, help="the loaded database (BENCH_WAREHOUSE_DATABASE_URL)")
    add("--empty-database-url", default="", help="the empty database for the ingest ratio (the loaded one's + _empty)")
    add("--redis-url", default=REDIS_URL, help="Redis db for the servers (BENCH_WAREHOUSE_REDIS_URL)")
    add("--server-cpus", default=os.environ.get("BENCH_SERVER_CPUS", "1"), help="taskset list for gunicorn (1)")
    add("--client-cpus", default=os.environ.get("BENCH_CLIENT_CPUS", "0"), help="taskset list for wrk (0)")
    add("--report", type=Path, default=REPORT, help="where to write the report (var/bench/warehouse.md)")
    add("--publish", action="store_true", help="copy the last report to docs/benchmarks-warehouse.md and stop")
    arguments = parser.parse_args(argv)
    arguments.empty_database_url = arguments.empty_database_url or _with_suffix(arguments.database_url, "_empty")
    return arguments


def _with_suffix(database_url: str, suffix: str) -> str:
    parts = urlsplit(database_url)
    return parts._replace(path=parts.path + suffix).geturl()


def _environment(arguments: argparse.Namespace, database_url: str) -> dict[str, str]:
    workers = len(cpu_list(arguments.server_cpus))
    return bench_environment(workers, 32, database_url=database_url, redis_url=arguments.redis_url)


def _django_pool(env: dict[str, str], workers: int) -> ProcessPoolExecutor:
    """Processes running the app's code on `env`'s database (fresh interpreters: Django is set up once each)."""
    return ProcessPoolExecutor(workers, mp_context=get_context("spawn"), initializer=start_django, initargs=(env,))


# --------------------------------------------------------------------------------------------------------
# 1-2. The load and the sync
# --------------------------------------------------------------------------------------------------------


def migrations() -> list[str]:
    """The code's migrations: a load made by other code is made again (and synced by this code)."""
    return sorted(str(path.relative_to(ROOT)) for path in ROOT.glob("*/migrations/0*.py"))


def recorded_load(database_url: str, key: dict) -> Load | None:
    """The load the database holds, if it is the one `key` describes and its sync finished."""
    try:
        with psycopg.connect(database_url, connect_timeout=5) as connection:
            row = connection.execute(
                sql.SQL("SELECT key, load_end, loaded_at, load_seconds, sync_seconds, events FROM {} WHERE key = %s")
                .format(sql.Identifier(LOAD_TABLE)), [json.dumps(key, sort_keys=True)]
            ).fetchone()  # fmt: skip
    except (psycopg.OperationalError, psycopg.errors.UndefinedTable):
        return None
    if row is None:
        return None
    return Load(json.loads(row[0]), row[1], row[2], row[3], row[4], row[5], reused=True)


def record_load(database_url: str, load: Load) -> None:
    with psycopg.connect(database_url, autocommit=True) as connection:
        connection.execute(
            sql.SQL(
                "CREATE TABLE IF NOT EXISTS {} (key text PRIMARY KEY, load_end timestamptz, loaded_at timestamptz, "
                "load_seconds float8, sync_seconds float8, events bigint)"
            ).format(sql.Identifier(LOAD_TABLE))
        )
        connection.execute(
            sql.SQL("INSERT INTO {} VALUES (%s, %s, %s, %s, %s, %s)").format(sql.Identifier(LOAD_TABLE)),
            [json.dumps(load.key, sort_keys=True), load.end, load.loaded_at, load.load_seconds, load.sync_seconds,
             load.events],
        )  # fmt: skip


def load_key(arguments: argparse.Namespace) -> dict:
    """What makes two loads the same: the parameters, the events' format and the code's migrations."""
    return {"events": arguments.events, "days": arguments.days, "teams": TEAMS, "format": LOAD_FORMAT,
            "migrations": migrations()}  # fmt: skip


def load_and_sync(arguments: argparse.Namespace, env: dict[str, str], pool: ProcessPoolExecutor) -> Load:
    """The requested load, as recorded, or made now: a fresh database, migrated, loaded (by `pool`'s processes,
    which start at their first task), vacuumed, synced."""
    key = load_key(arguments)
    if not arguments.reload:
        load = recorded_load(arguments.database_url, key)
        if load is not None:
            print(
                f"Reusing the load of {load.loaded_at:%Y-%m-%d %H:%M} ({load.events:,} events); --reload makes it again"
            )
            return load
    print(f"Loading {arguments.events:,} events per team for {', '.join(TEAMS)} into {arguments.database_url}")
    reset_stores(arguments.database_url, arguments.redis_url)
    _manage(env, "migrate", "--noinput", "-v0")
    end = datetime.now(UTC).replace(microsecond=0)
    started = time.monotonic()
    team_ids = pool.submit(create_teams, TEAMS).result()
    chunks = chunks_of_time(arguments.events, arguments.days, end, team_ids)
    stored, reported = 0, time.monotonic()
    for count in pool.map(store_chunk, chunks):
        stored += count
        if time.monotonic() - reported > 15:
            rate = stored / (time.monotonic() - started)
            print(f"  {stored:,} events stored, {rate:,.0f}/s", flush=True)
            reported = time.monotonic()
    load_seconds = time.monotonic() - started
    print(f"  {stored:,} events in {load_seconds:.0f} s: {stored / load_seconds:,.0f} events/s")
    # What autovacuum does soon after a bulk load in production: hint bits and the visibility map, statistics.
    with psycopg.connect(arguments.database_url, autocommit=True) as connection:
        connection.execute("VACUUM (ANALYZE)")
    started = time.monotonic()
    print("python manage.py sync_warehouse")
    _manage(env, "sync_warehouse", capture=False)
    sync_seconds = time.monotonic() - started
    print(f"  {stored:,} events in {sync_seconds:.1f} s: {stored / sync_seconds:,.0f} events/s")
    load = Load(key, end, datetime.now(UTC), load_seconds, sync_seconds, stored)
    record_load(arguments.database_url, load)
    return load


def chunks_of_time(events: int, days: int, end: datetime, team_ids: dict[str, int]) -> list[Chunk]:
    """Every team's events in slices of consecutive time, the teams' slices interleaved: ids grow with time."""
    starts = end - timedelta(days=days)
    slices = max(1, -(-events // CHUNK_EVENTS))
    step = (end - starts) / slices
    chunks = []
    for number in range(slices):
        count = min(CHUNK_EVENTS, events - number * CHUNK_EVENTS)
        for slug, team_id in team_ids.items():
            users = max(10, events // USERS_PER_EVENTS)
            begins = starts + step * number
            chunks.append(Chunk(team_id, slug, number * CHUNK_EVENTS, count, users, begins, begins + step))
    return chunks


def _manage(env: dict[str, str], *command: str, capture: bool = True) -> str:
    result = run([sys.executable, "manage.py", *command], check=False, cwd=ROOT, env=env, capture_output=capture,
                 text=True)  # fmt: skip
    if result.returncode:
        raise RuntimeError(f"manage.py {' '.join(command)} failed:\n{(result.stderr or '')[-4000:]}")
    return result.stdout or ""


# --------------------------------------------------------------------------------------------------------
# 3. The BI queries: the team's relations against native twins
# --------------------------------------------------------------------------------------------------------


def build_twins(database_url: str, *, slug: str, login: str) -> tuple[str, float]:
    """native_<slug>.<relation> for each relation the queries read: the same typed columns, copied from the
    relation, with a btree index on timestamp; readable by the team's login only. Returns the schema."""
    schema, team_schema = f"native_{slug}", f"team_{slug}"
    started = time.monotonic()
    with psycopg.connect(database_url, autocommit=True) as connection:
        names = {"schema": sql.Identifier(schema), "login": sql.Identifier(login)}
        connection.execute(sql.SQL("DROP SCHEMA IF EXISTS {schema} CASCADE").format(**names))
        connection.execute(sql.SQL("CREATE SCHEMA {schema}").format(**names))
        for relation in sorted({query.relation for query in QUERIES}):
            twin = sql.Identifier(schema, relation)
            connection.execute(
                sql.SQL("CREATE TABLE {} AS SELECT * FROM {}").format(twin, sql.Identifier(team_schema, relation))
            )
            connection.execute(sql.SQL("CREATE INDEX ON {} (timestamp)").format(twin))
        connection.execute(sql.SQL("GRANT USAGE ON SCHEMA {schema} TO {login}").format(**names))
        connection.execute(sql.SQL("GRANT SELECT ON ALL TABLES IN SCHEMA {schema} TO {login}").format(**names))
        connection.execute("VACUUM (ANALYZE)")  # the twins, and whatever the relations are made of
    return schema, time.monotonic() - started


def measure_queries(login_url: str, *, slug: str, twins: str, end: datetime, repetitions: int) -> list[dict]:
    """Each query through the relation and its twin by turns, as the login: a warm-up each, then the median."""
    measured = []
    with psycopg.connect(login_url, autocommit=True) as connection:
        for query in QUERIES:
            times: dict[str, list[float]] = {"relation": [], "native": []}
            rows = 0
            for repetition in range(repetitions + 1):
                for side, schema in (("relation", f"team_{slug}"), ("native", twins)):
                    started = time.perf_counter()
                    rows = len(connection.execute(query.statement(schema, end)).fetchall())
                    if repetition:  # the first of each is the warm-up
                        times[side].append((time.perf_counter() - started) * 1000)
            result = {"label": query.label, "rows": rows, **{f"{s}_ms": statistics.median(t) for s, t in times.items()}}
            print(
                f"  {query.label:<55} relation {result['relation_ms']:9,.1f} ms   native {result['native_ms']:9,.1f} ms"
            )
            measured.append(result)
    return measured


def login_settings(login_url: str) -> str:
    with psycopg.connect(login_url) as connection:
        jit, work_mem = (
            connection.execute("SELECT current_setting('jit'), current_setting('work_mem')").fetchone() or ()
        )
    return f"jit {jit}, work_mem {work_mem}"


# --------------------------------------------------------------------------------------------------------
# 4-5. Ingest on the loaded database against an empty one; the CSV export
# --------------------------------------------------------------------------------------------------------


def measure_ingest(arguments: argparse.Namespace, figures: Figures, *, slug: str, owner: tuple[str, str]) -> None:
    """B1 and B2 on both databases by turns, both servers up on the server's cores; then the export."""
    loaded_env = _environment(arguments, arguments.database_url)
    empty_env = _environment(arguments, arguments.empty_database_url)

    def empty_database() -> NewToken:
        reset_stores(arguments.empty_database_url, arguments.redis_url)
        return migrate_and_create_token(empty_env, who="ingest")

    # Side by side: each is a Django start-up of its own, seconds on a busy machine.
    with ThreadPoolExecutor(3) as preparing:
        empty = preparing.submit(empty_database)
        # A team of its own in the loaded database, its rows deleted afterwards: the load stays as recorded.
        loaded = preparing.submit(migrate_and_create_token, loaded_env, who=f"ingest{secrets.token_hex(4)}")
        if arguments.export_rows:  # the pages' manifest, as a deploy makes it
            preparing.submit(_manage, loaded_env, "collectstatic", "--noinput", "-v0").result()
        empty_token, loaded_token = empty.result(), loaded.result()
    timestamp = datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    templates = {
        phase: (path, mode, template(timestamp), connections)
        for phase, (path, mode, template, connections) in INGEST.items()
    }
    ids_dir = WORK_DIR / "warehouse-ids"
    shutil.rmtree(ids_dir, ignore_errors=True)
    ids_dir.mkdir(parents=True)
    log = WORK_DIR / "warehouse-server.log"
    sides = {"loaded": (loaded_env, loaded_token), "empty": (empty_env, empty_token)}
    # Ports the kernel picks: wrk's closed connections keep a fixed port busy for a while after each run.
    servers = {side: Gunicorn(env, log=log, cpus=arguments.server_cpus) for side, (env, _) in sides.items()}
    wrks = {
        side: Wrk(port=servers[side].port, token=token.plaintext, cpus=arguments.client_cpus,
                  seconds=arguments.ingest_seconds, ids_dir=ids_dir)
        for side, (_, token) in sides.items()
    }  # fmt: skip
    try:
        with ThreadPoolExecutor(len(servers)) as starting:  # each start waits seconds for its health check
            for side, server in zip(servers, starting.map(Gunicorn.start, servers.values()), strict=True):
                wrks[side].server = server
        warmup = max(1, min(3, arguments.ingest_seconds // 3))  # a fresh server's first requests are slow
        for phase, (path, mode, template, connections) in templates.items():
            for side in ("empty", "loaded"):
                wrks[side].run(phase, f"wh-{phase.lower()}-{side}-warmup", path=path, mode=mode, template=template,
                               connections=connections, seconds=warmup)  # fmt: skip
        for round_number in range(1, arguments.ingest_rounds + 1):
            for phase, (path, mode, template, connections) in templates.items():
                rates = {}
                for side in ("empty", "loaded"):
                    name = f"wh-{phase.lower()}-{side}-r{round_number}"
                    measured = wrks[side].run(phase, name, path=path, mode=mode, template=template,
                                              connections=connections)  # fmt: skip
                    rates[side] = measured.events_rate
                figures.ingest.append({"phase": phase, "round": round_number, **rates})
        if arguments.export_rows:
            figures.export = measure_export(servers["loaded"].url, *owner, rows=arguments.export_rows)
    finally:
        for server in servers.values():
            server.stop()
        with psycopg.connect(arguments.database_url, autocommit=True) as connection:
            connection.execute("DELETE FROM events_event WHERE team_id = %s", [loaded_token.team_id])


def measure_export(url: str, email: str, password: str, *, rows: int) -> dict:
    """The Events page's CSV export of every event of the Owner's team, read until `rows` rows: rows/s."""
    with requests.Session() as session:
        session.get(f"{url}/accounts/login/", timeout=30).raise_for_status()
        answer = session.post(
            f"{url}/accounts/login/",
            data={"username": email, "password": password, "csrfmiddlewaretoken": session.cookies["csrftoken"]},
            headers={"Referer": f"{url}/accounts/login/"},
            timeout=30,
        )
        if "sessionid" not in session.cookies:
            raise RuntimeError(f"could not log in as {email}: {answer.status_code}")
        started = time.monotonic()
        read = 0
        with session.get(f"{url}/events/export.csv", stream=True, timeout=300) as response:
            response.raise_for_status()
            for block in response.iter_content(chunk_size=1 << 16):
                read += block.count(b"\n")
                if read > rows:
                    break
        seconds = time.monotonic() - started
    exported = max(read - 1, 0)  # the header
    print(f"  CSV export: {exported:,} rows in {seconds:.1f} s: {exported / seconds:,.0f} rows/s")
    return {"rows": exported, "seconds": seconds}


# --------------------------------------------------------------------------------------------------------
# The report
# --------------------------------------------------------------------------------------------------------


def write_report(figures: Figures, path: Path, *, arguments: argparse.Namespace, settings: str) -> None:
    load = figures.load
    assert load is not None
    facts = _commit()
    lines = [
        "# Warehouse benchmark",
        "",
        "The last published run of `make bench-warehouse` (issue 26): the warehouse at scale, measured the way a BI",
        "user meets it. Method: bench/warehouse.py.",
        "",
        f"- **Date**: {datetime.now(UTC):%Y-%m-%d %H:%M} (UTC); code at {facts}",
        f"- **Load**: {load.events:,} events ({load.events // len(TEAMS):,} per team for {len(TEAMS)} teams) over "
        f"{load.key['days']} days, Segment ecommerce messages through the ingest code (validate, event_row, "
        f"store_batch's COPY), {load.load_rate:,.0f} events/s"
        + (f"; made {load.loaded_at:%Y-%m-%d %H:%M} and reused" if load.reused else ""),
        f"- **Queries**: team `{TEAMS[0]}`, as its read-only warehouse login ({settings}); median of "
        f"{arguments.repetitions} after a warm-up. Native twins: `CREATE TABLE … AS SELECT * FROM` the relation, "
        f"btree on timestamp, ANALYZE ({figures.twins_seconds:.0f} s to build). Times are the client's, rows "
        "fetched, as a BI tool sees them.",
        f"- **Sync**: `manage.py sync_warehouse` over the whole load took {load.sync_seconds:,.1f} s"
        + (" (in the run that made the load)" if load.reused else "")
        + f". **Machine**: {os.cpu_count()} cores, shared; load average {figures.load_average}.",
        "",
        "| BI query | relation | native table | ratio | target | |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for query in figures.queries:
        ratio = query_ratio(query)
        verdict = "pass" if ratio <= MAX_QUERY_RATIO else "FAIL"
        lines.append(
            f"| {query['label']} | {query['relation_ms']:,.1f} ms | {query['native_ms']:,.2f} ms | {ratio:,.1f}x | "
            f"<= {MAX_QUERY_RATIO}x | **{verdict}** |"
        )
    lines += ["", "| target | measured | target | |", "| --- | --- | --- | --- |"]
    lines += [
        f"| {what} | {measured} | {target} | **{'pass' if met else 'FAIL'}** |"
        for what, measured, target, met in figures.checks()[len(figures.queries) :]
    ]
    lines += ["", *_ingest_lines(figures, arguments)]
    if figures.export_skipped:
        lines.append(f"- CSV export: {figures.export_skipped}")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines) + "\n")


def _ingest_lines(figures: Figures, arguments: argparse.Namespace) -> list[str]:
    if figures.ingest_skipped:
        return [f"- Ingest: {figures.ingest_skipped}"]
    return [
        f"- {run['phase']} round {run['round']}: {run['loaded']:,.0f} events/s with the load stored, "
        f"{run['empty']:,.0f} on an empty table"
        for run in figures.ingest
    ] + [
        f"- Ingest: gunicorn (cpu{arguments.server_cpus}) and wrk (cpu{arguments.client_cpus}) as `make bench` runs "
        f"them, {arguments.ingest_seconds} s per run after a warm-up; B1 with {INGEST['B1'][3]} connections, B2 with "
        f"{INGEST['B2'][3]} ({BATCH_SIZE} events per request). The ratio is the median of the rounds'."
    ]


def _commit() -> str:
    result = run(["git", "rev-parse", "--short", "HEAD"], check=False, cwd=ROOT, capture_output=True, text=True)
    dirty = run(["git", "status", "--porcelain"], check=False, cwd=ROOT, capture_output=True, text=True).stdout
    return result.stdout.strip() + (" (with uncommitted changes)" if dirty.strip() else "")


def publish(report: Path) -> int:
    if not report.exists():
        print(f"No report at {report}: run make bench-warehouse first.", file=sys.stderr)
        return 1
    shutil.copyfile(report, PUBLISHED_REPORT)
    print(f"Copied {report} to {PUBLISHED_REPORT.relative_to(ROOT)}")
    return 0


def main(argv: list[str] | None = None) -> int:
    arguments = parse_arguments(argv)
    if isinstance(sys.stdout, io.TextIOWrapper):
        sys.stdout.reconfigure(line_buffering=True)
    if arguments.publish:
        return publish(arguments.report)
    for url in (arguments.database_url, arguments.empty_database_url):
        if not re.search(r"bench", urlsplit(url).path):
            raise SystemExit(f"The warehouse benchmark's databases must have 'bench' in their name, not {url}.")
    env = _environment(arguments, arguments.database_url)
    before = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    figures = Figures()
    slug = TEAMS[0]
    password = secrets.token_urlsafe(16)
    with _django_pool(env, arguments.workers) as pool:
        figures.load = load = load_and_sync(arguments, env, pool)
        login_url, login, email = pool.submit(warehouse_login_and_owner, slug, password).result()
    print(f"Native twins in native_{slug}, then the queries as {login}")
    twins, figures.twins_seconds = build_twins(arguments.database_url, slug=slug, login=login)
    settings = login_settings(login_url)
    figures.queries = measure_queries(
        login_url, slug=slug, twins=twins, end=load.end, repetitions=arguments.repetitions
    )
    if arguments.ingest_seconds and shutil.which("wrk"):
        print("Ingest with the load stored and on an empty table, by turns")
        measure_ingest(arguments, figures, slug=slug, owner=(email, password))
    else:
        figures.ingest_skipped = "not measured (--ingest-seconds 0, or wrk is not installed)"
    if not figures.export:
        figures.export_skipped = "not measured (it runs with the ingest servers; --export-rows 0 skips it)"
    figures.load_average = f"{before} before, " + ", ".join(f"{x:.1f}" for x in os.getloadavg()) + " after"
    write_report(figures, arguments.report, arguments=arguments, settings=settings)
    arguments.report.with_suffix(".json").write_text(json.dumps(asdict(figures), indent=2, default=str))
    print()
    for what, measured, target, met in figures.checks():
        print(f"{'pass' if met else 'FAIL'}  {what}: {measured} (target {target})")
    print(f"\nWrote {arguments.report}; `make bench-warehouse-publish` copies it to docs/")
    return 0 if all(met for *_, met in figures.checks()) else 2


if __name__ == "__main__":
    sys.exit(main())
