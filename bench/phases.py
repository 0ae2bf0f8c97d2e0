"""The measurements, in the order bench/run.py runs them:

    B0-http and B1   hello-world and POST /v1/event by turns at each connection count, then /v1/event paced at
                     ~80% of B1's rate (the p99 target);
    B0-copy and B2   psycopg COPY straight into events_event, then POST /v1/batch with the server on every core,
                     in rounds; then B2 once more with the server pinned, for comparison.

Every function appends its runs to a `Results`; the verdicts are taken from them in bench/results.py.
"""

import time
from concurrent.futures import ThreadPoolExecutor

import psycopg
from psycopg import sql

from chaos.processes import NewToken

from .config import BATCH_SIZE, DATABASE_URL
from .machine import database_cpu_seconds
from .payloads import COPY_COLUMNS, binary_copy_rows, text_copy_rows
from .results import MAX_P99_MS, Results, Run
from .servers import http_request
from .wrk import Wrk

PACED_TRIES = 4  # one run and up to three corrections of its rate
PACED_RUNS = 7  # in all, counting the runs set aside because the disk stalled
PACED_WITHIN = 0.03  # of 80%: a run further off measures another queue (docs/performance.md#how-the-benchmark-measures)
WARMUP_SECONDS = 3
COPY_SECONDS = 5
COPY_CONNECTIONS = (1, 2, 4)  # the server may run several COPYs at once too


def measure_http_baseline_and_single_events(
    hello: Wrk, wrk: Wrk, results: Results, template: tuple[str, str], http_counts: list[int], counts: list[int]
) -> None:
    """B0-http and B1, run by turns at each connection count: hello-world, then /v1/event, each on its own server
    (both up, on the same cores; the idle one costs nothing), so that both sides of the ratio meet the same load
    from elsewhere on a shared machine. Then the 80% run."""
    print(
        "B0-http (hello-world WSGI app under gunicorn.conf.py) and B1 (POST /v1/event, one event per request), by turns"
    )
    single = {"path": "/v1/event", "template": template}
    results.warmups.append(
        hello.run("B0-http", "b0-warmup", mode="hello", connections=8, seconds=WARMUP_SECONDS, **single)
    )
    results.warmups.append(wrk.run("B1", "b1-warmup", mode="event", connections=8, seconds=WARMUP_SECONDS, **single))
    for count in sorted(set(http_counts) | set(counts)):
        if count in http_counts:
            results.b0_http.append(hello.run("B0-http", f"b0-c{count}", mode="hello", connections=count, **single))
        if count in counts:
            results.b1.append(wrk.run("B1", f"b1-c{count}", mode="event", connections=count, **single))
    measure_single_events_at_80(wrk, results, template)


def measure_single_events_at_80(wrk: Wrk, results: Results, template: tuple[str, str]) -> None:
    """/v1/event at 80% of B1's rate, offered by paced connections: each waits a random think time between its
    answer and its next request, so that connections / (latency + think) = target. Latency at 80% is not known
    beforehand: guess it, measure, correct. A run the disk stalled is set aside and run again."""
    best = results.b1_best
    if best is None:
        print(f"  no connection count kept p99 <= {MAX_P99_MS:.0f} ms without errors: no 80% run")
        return
    # As many clients as gave the best rate but no more than the server has threads: more would measure
    # gunicorn's queue in front of them, not the server at 80% of its rate.
    target = 0.8 * best.rate
    count = min(best.connections, results.threads)
    print(f"B1 at 80%: {target:.0f} req/s offered by {count} paced connections")
    latency_ms = best.mean_ms / 2
    tries = 0
    for attempt in range(1, PACED_RUNS + 1):
        think_ms = max(count * 1000 / target - latency_ms, 0.5)
        paced = wrk.run(
            "B1@80%",
            f"b1-80pct-{attempt}",
            path="/v1/event",
            mode="event",
            template=template,
            connections=count,
            think_ms=think_ms,
        )
        results.b1_at_80.append(paced)
        if paced.disk_stalled and paced.rate:
            # Its latency is the disk's: neither judged (Results.b1_at_80_run) nor a guide to the next think time.
            print(f"  set aside: the disk stalled (a COMMIT took {paced.slowest_commit_ms:.0f} ms); run again")
            continue
        tries += 1
        if abs(paced.rate / target - 1) <= PACED_WITHIN or paced.rate == 0 or tries == PACED_TRIES:
            break
        latency_ms = count * 1000 / paced.rate - think_ms


def measure_copy_and_batch_rounds(
    wrk: Wrk, results: Results, token: NewToken, timestamp: str, template: tuple[str, str], connections: list[int]
) -> None:
    """B0-copy right before B2 on every core, `results.rounds` times. Each B0-copy's rows are deleted before its
    B2 runs, so that B2 meets the table B0-copy met; pairing each B2 with the B0-copy just before it keeps a slow
    minute on one side from deciding the ratio. The B2 server (`wrk.server`) idles during B0-copy."""
    for number in range(1, results.rounds + 1):
        measure_copy_baseline(results, token, timestamp, round_number=number)
        forget_copied_rows()
        measure_batches(wrk, results, template, connections, every_core=True, round_number=number)
        if results.b2_skipped:
            break


def measure_copy_baseline(results: Results, token: NewToken, timestamp: str, *, round_number: int = 1) -> None:
    """COPY rows like B2's into events_event, BATCH_SIZE rows per transaction, in COPY's text and binary formats
    (the app writes binary), from 1, 2 and 4 connections at once; the best is the round's figure. Rows are
    prepared as bytes beforehand, so the client costs next to nothing."""
    print(f"B0-copy, round {round_number}: psycopg COPY into events_event, {BATCH_SIZE} rows per transaction")
    formats = {
        "text": text_copy_rows(token.team_id, token.token_id, timestamp),
        "binary": binary_copy_rows(token.team_id, token.token_id, timestamp),
    }
    for copy_format, rows_of in formats.items():
        for connections in COPY_CONNECTIONS:
            copied = _copy_run(rows_of, copy_format, connections, round_number)
            results.b0_copy.append(copied)
            print(
                f"  {copied.name:<21} c={connections:<3}  {copied.events_rate:8.0f} rows/s  "
                f"PostgreSQL CPU {copied.database_cpu_ms / BATCH_SIZE * 1000:5.1f} us/row"
            )


def _copy_run(rows_of, copy_format: str, connections: int, round_number: int) -> Run:
    """COPY_SECONDS of COPY from `connections` connections at once."""
    statement = sql.SQL("COPY events_event ({}) FROM STDIN (FORMAT {})").format(
        sql.SQL(COPY_COLUMNS), sql.SQL(copy_format)
    )
    # Connected before and closed after the CPU reading, so that every backend's time is counted.
    clients = [psycopg.connect(DATABASE_URL, options="-c synchronous_commit=on") for _ in range(connections)]
    started, database_before = time.monotonic(), database_cpu_seconds()
    with ThreadPoolExecutor(max_workers=connections) as pool:
        names = [f"b0-r{round_number}-{copy_format}-c{connections}-{n}" for n in range(connections)]
        futures = [
            pool.submit(_copy_until, client, statement, rows_of, started + COPY_SECONDS, name)
            for client, name in zip(clients, names, strict=True)
        ]
        copied = sum(future.result() for future in futures)
    elapsed = time.monotonic() - started
    database_ms = (database_cpu_seconds() - database_before) * 1000
    for client in clients:
        client.close()
    return Run(
        phase="B0-copy",
        name=f"copy-{copy_format}-c{connections}-r{round_number}",
        connections=connections,
        seconds=elapsed,
        requests=copied // BATCH_SIZE,
        events_per_request=BATCH_SIZE,
        database_cpu_ms=database_ms / max(copied // BATCH_SIZE, 1),
        round=round_number,
    )


def _copy_until(connection: psycopg.Connection, statement, rows_of, deadline: float, name: str) -> int:
    """COPY batches on one connection until the deadline; returns the rows copied."""
    copied = 0
    while time.monotonic() < deadline:
        data = rows_of([f"{name}-{n}".encode() for n in range(copied, copied + BATCH_SIZE)])
        with connection.cursor() as cursor, cursor.copy(statement) as copy:
            copy.write(data)
        connection.commit()
        copied += BATCH_SIZE
    return copied


def forget_copied_rows() -> None:
    """Delete B0-copy's rows and rewrite the table, which leaves it as B0-copy found it: rows that follow are
    appended, as B0-copy's were. A plain VACUUM would leave the deleted rows' space free all over the table and
    its indexes, and the next rows would be written into it, page by scattered page. The checkpoint writes the
    rewrite out now, not while B2 runs."""
    with psycopg.connect(DATABASE_URL, autocommit=True) as connection:
        connection.execute("DELETE FROM events_event WHERE message_id LIKE 'b0-%'")
        connection.execute("VACUUM FULL ANALYZE events_event")
        connection.execute("CHECKPOINT")


def measure_batches(
    wrk: Wrk,
    results: Results,
    template: tuple[str, str],
    connections: list[int],
    *,
    every_core: bool = False,
    round_number: int = 0,
) -> None:
    """B2 runs into results.b2 (the server on its own cores) or, with every_core, results.b2_all; round_number
    names the round of B0-copy and B2-all the runs belong to. The server is warmed up on its first round only:
    it stays up between rounds. Skipped if /v1/batch answers 404."""
    phase, label, runs = ("B2-all", "b2-all", results.b2_all) if every_core else ("B2", "b2", results.b2)
    suffix, which = (f"-r{round_number}", f", round {round_number}") if round_number else ("", "")
    batch = {"path": "/v1/batch", "mode": "batch", "template": template}
    print(f"{phase}{which}: POST /v1/batch, {BATCH_SIZE} events per request")
    if round_number <= 1:
        status, _ = http_request(wrk.port, "POST", "/v1/batch", b'{"batch": []}', wrk.token)
        if status == 404:
            results.b2_skipped = "/v1/batch answered 404: the endpoint does not exist yet"
            print(f"  skipped: {results.b2_skipped}")
            return
        results.warmups.append(wrk.run(phase, f"{label}-warmup", connections=2, seconds=WARMUP_SECONDS, **batch))
    for count in connections:
        measured = wrk.run(phase, f"{label}-c{count}{suffix}", connections=count, **batch)
        measured.round = round_number
        runs.append(measured)
