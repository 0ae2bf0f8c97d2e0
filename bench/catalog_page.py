"""The Events page for a team at its catalog caps: how big it is, how long the server takes, how many queries.

    DATABASE_URL=postgres://.../canvas_catalog_bench .venv/bin/python -m bench.catalog_page --names 20000

Makes a throwaway team, stores its events with one INSERT ... SELECT (every name once per hour over --hours
hours; the first event of each name carries --properties properties), runs the catalog sync, then asks the page
and the JSON endpoints it calls (and catalog.json) through Django's test client, --repeat times each, and prints
bytes, the median server time and the query count. The team and its events are deleted afterwards. Results go
to docs/performance.md by hand.
"""

import argparse
import os
import statistics
import sys
import time

import django


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--names", type=int, default=10_000, help="distinct event names")
    parser.add_argument("--properties", type=int, default=20, help="properties on each name's first event")
    parser.add_argument("--hours", type=int, default=24, help="one event per name per hour, over this many hours")
    parser.add_argument("--name-length", type=int, default=20, help="characters per event name (at most 200)")
    parser.add_argument("--pad", default="x", help="what names are padded with, e.g. '\"' (6 bytes in HTML)")
    parser.add_argument(
        "--volume-days", type=int, default=0, help="then fill the chart's hourly rows of every name over this many days"
    )
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--keep", action="store_true", help="keep the team (slug catalog-bench) afterwards")
    parser.add_argument("--measure-only", action="store_true", help="measure the team a --keep run left")
    args = parser.parse_args()

    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "canvas.settings")
    django.setup()
    from django.core.management import call_command
    from django.db import connection

    from accounts.models import Membership, Role, Team, User
    from events.warehouse.catalog import catalog_sync

    call_command("migrate", verbosity=0)
    if args.measure_only:
        team = Team.objects.get(slug="catalog-bench")
        measure(team, User.objects.get(email="bench@catalog.test"), args.repeat)
        return
    catalog_sync()  # earlier runs' leftovers out of the way
    for old in Team.objects.filter(slug="catalog-bench"):
        remove(old)
    team = Team.objects.create(name="Catalog bench", slug="catalog-bench", events_api_enabled=True)
    user, _ = User.objects.get_or_create(email="bench@catalog.test")
    Membership.objects.create(user=user, team=team, role=Role.OWNER)

    started = time.perf_counter()
    with connection.cursor() as cursor:
        cursor.execute(
            "INSERT INTO events_event (team_id, type, event, properties, timestamp, received_at) "
            "SELECT %(team)s, 'track', rpad('Event ' || n || ' ', %(length)s, %(pad)s), "
            "  CASE WHEN h = 0 THEN (SELECT jsonb_object_agg('property_' || p, p) "
            "                        FROM generate_series(1, %(properties)s) p) ELSE '{}'::jsonb END, "
            "  now() - make_interval(hours => h), now() "
            "FROM generate_series(0, %(hours)s - 1) h, generate_series(1, %(names)s) n",
            {"team": team.pk, "length": args.name_length, "pad": args.pad, "properties": args.properties,
             "hours": args.hours, "names": args.names},
        )  # fmt: skip
        stored = cursor.rowcount
    print(f"stored {stored:,} events in {time.perf_counter() - started:.1f} s", flush=True)
    started = time.perf_counter()
    synced = catalog_sync()
    print(f"catalog_sync: {synced.events:,} events in {time.perf_counter() - started:.1f} s", flush=True)
    with connection.cursor() as cursor:
        if args.volume_days:
            cursor.execute(
                "INSERT INTO events_eventvolume (team_id, event, hour, count) "
                "SELECT %s, name, date_trunc('hour', now()) - make_interval(hours => h), 1 "
                "FROM (SELECT DISTINCT event FROM events_eventvolume WHERE team_id = %s) names (name), "
                "  generate_series(0, %s * 24 - 1) h ON CONFLICT DO NOTHING",
                [team.pk, team.pk, args.volume_days],
            )
            cursor.execute(
                "INSERT INTO events_dailyeventvolume (team_id, event, day, count) "
                "SELECT %s, name, date_trunc('day', now()) - make_interval(days => d), 24 "
                "FROM (SELECT DISTINCT event FROM events_eventvolume WHERE team_id = %s) names (name), "
                "  generate_series(0, %s - 1) d ON CONFLICT DO NOTHING",
                [team.pk, team.pk, args.volume_days],
            )
        cursor.execute("ANALYZE")  # as autovacuum does after such a burst; before it, plans can be far off
        for table in ("events_catalogevent", "events_catalogproperty", "events_eventvolume", "events_dailyeventvolume"):
            cursor.execute(f"SELECT count(*) FROM {table} WHERE team_id = %s", [team.pk])  # noqa: S608
            print(f"{table}: {cursor.fetchone()[0]:,} rows")

    measure(team, user, args.repeat)
    if not args.keep:
        remove(team)


def measure(team, user, repeat: int) -> None:
    from django.db import connection, reset_queries
    from django.test import Client
    from django.test.utils import CaptureQueriesContext

    client = Client()
    client.force_login(user)
    urls = ["/events/", "/events/?catalog-q=Event+1&catalog-page=2", "/events/volume.json?period=24h",
            "/events/volume.json?period=30d", "/events/catalog.json"]  # fmt: skip
    print(f"{'url':45} {'bytes':>12} {'median ms':>10} {'queries':>8}")
    for url in urls:
        times, size, queries = [], 0, 0
        for _ in range(repeat):
            reset_queries()
            with CaptureQueriesContext(connection) as captured:
                begun = time.perf_counter()
                response = client.get(url)
                size = len(response.content)
                times.append((time.perf_counter() - begun) * 1000)
            queries = len(captured)
            if response.status_code != 200:
                print(f"{url}: {response.status_code}", file=sys.stderr)
        print(f"{url:45} {size:>12,} {statistics.median(times):>10.0f} {queries:>8}", flush=True)


def remove(team) -> None:
    """The team and its rows, deleted in SQL: Django's cascade would load millions of rows into Python first."""
    from django.db import connection

    with connection.cursor() as cursor:
        for table in (
            "events_catalogproperty",
            "events_catalogother",
            "events_catalogevent",
            "events_eventvolume",
            "events_dailyeventvolume",
            "events_event",
        ):
            cursor.execute(f"DELETE FROM {table} WHERE team_id = %s", [team.pk])  # noqa: S608
    team.delete()


if __name__ == "__main__":
    main()
