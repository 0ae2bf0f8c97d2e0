"""`make bench`: how fast Canvas ingests on this machine, measured against the machine's own limits.

One run, about ten minutes, on its own PostgreSQL database and Redis db (bench/config.py), with the production
server as production starts it (gunicorn with gunicorn.conf.py) pinned to some cores and wrk to the others:

    B0-http   bench/hello_wsgi.py under the same gunicorn.conf.py, workers and threads: max requests/s.
    B1        POST /v1/event, one ~330-byte event per request: the highest rate whose p99 <= 50 ms with no
              error; then p50/p99 at ~80% of that rate.
    B0-copy   psycopg COPY of the same rows straight into events_event, 100 rows per transaction: rows/s.
    B2        POST /v1/batch, 100 events per request: events/s, with the server on every core (in rounds, each
              after a B0-copy of its own), then held to its own cores.

Afterwards every acknowledged event is looked for in the table; a missing one makes the command exit 1, a target
missed is only reported. The report, chart and raw figures go to var/bench/; `make bench-publish` copies the
report and chart to docs/. Modules: servers (processes), wrk, phases, reconcile, results (verdicts), report, chart.
"""

import argparse
import io
import json
import os
import shutil
import sys
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path

import orjson

from chaos.processes import NewToken

from .config import CHART, DATABASE_URL, REDIS_URL, REPORT, ROOT, WORK_DIR
from .machine import CommitWatch, cores_text, cpu_list, machine_facts, measure_commit_ms
from .payloads import batch_item_template, event_template
from .phases import (
    forget_copied_rows,
    measure_batches,
    measure_copy_and_batch_rounds,
    measure_copy_baseline,
    measure_http_baseline_and_single_events,
)
from .reconcile import acknowledged_by_phase, reconcile
from .report import print_summary, write_report
from .results import Results
from .servers import (
    CANVAS_APP,
    HELLO_APP,
    bench_environment,
    create_team_and_token,
    http_request,
    require_free_ports,
    reset_stores,
    server,
)
from .wrk import Wrk

SAMPLE_ID = "b1-c64-1-123456"  # a messageId as long as the runs', to measure the bodies' size
PROBES = 1  # events sent to /v1/event before B1 to check it answers


@dataclass
class Bench:
    """What every step of one run needs: its arguments, the token, the bodies and where wrk writes ids."""

    arguments: argparse.Namespace
    token: NewToken
    timestamp: str
    event: tuple[str, str]
    batch_item: tuple[str, str]
    ids_dir: Path
    server_log: Path
    results: Results

    def wrk(self, port: int) -> Wrk:
        arguments = self.arguments
        return Wrk(
            port=port,
            token=self.token.plaintext,
            cpus=arguments.client_cpus,
            seconds=arguments.duration,
            ids_dir=self.ids_dir,
        )

    def server(self, app: str, *, port: int, cpus: str, workers: int):
        log = self.server_log
        return server(app, port=port, cpus=cpus, workers=workers, threads=self.results.threads, log=log)


def _counts(text: str) -> list[int]:
    return [int(part) for part in text.split(",")]


def parse_arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.run", description=__doc__.split("\n", 1)[0])
    add = parser.add_argument
    add("--duration", type=int, default=10, help="seconds per wrk run (default 10)")
    add("--http-connections", type=_counts, default=[4, 8, 16, 24, 32, 48, 64], help="B0-http runs")
    add("--connections", type=_counts, default=[1, 2, 4, 8, 16, 24, 32, 48, 64], help="B1 search")
    add("--batch-connections", type=_counts, default=[1, 2, 4, 8], help="B2 connection counts")
    add(
        "--all-core-batch-connections",
        type=_counts,
        default=[4, 8, 16, 32],
        help="B2 connection counts with the server on every core (4,8,16,32; 0 skips those runs)",
    )
    add(
        "--rounds",
        type=int,
        default=3,
        help="rounds of B0-copy then B2 on every core; B2/B0-copy is the median of their ratios (3)",
    )
    add("--server-cpus", default=os.environ.get("BENCH_SERVER_CPUS", "1"), help="taskset list for gunicorn (1)")
    add("--client-cpus", default=os.environ.get("BENCH_CLIENT_CPUS", "0"), help="taskset list for wrk and COPY (0)")
    add(
        "--port",
        type=int,
        default=int(os.environ.get("BENCH_PORT", "18081")),
        help="server port (18081; the hello-world server takes the next one)",
    )
    return parser.parse_args()


def prepare(arguments: argparse.Namespace) -> Bench:
    """Fresh database and Redis db, a token, the bodies, and the run's Results with the machine's facts."""
    workers = int(os.environ.get("GUNICORN_WORKERS") or len(cpu_list(arguments.server_cpus)))
    threads = int(os.environ.get("GUNICORN_THREADS") or 32)  # gunicorn.conf.py's default
    started = datetime.now(UTC)
    timestamp = started.isoformat(timespec="milliseconds").replace("+00:00", "Z")
    event, batch_item = event_template(timestamp), batch_item_template(timestamp)
    ids_dir = WORK_DIR / "ids"
    shutil.rmtree(ids_dir, ignore_errors=True)
    ids_dir.mkdir(parents=True)
    (WORK_DIR / "server.log").unlink(missing_ok=True)
    print(f"Resetting {DATABASE_URL} and {REDIS_URL}")
    reset_stores()
    token = create_team_and_token(bench_environment(workers, threads))
    results = Results(
        started_at=started.strftime("%Y-%m-%d %H:%M"),
        machine=machine_facts(),
        server_cpus=arguments.server_cpus,
        client_cpus=arguments.client_cpus,
        workers=workers,
        threads=threads,
        event_bytes=len(SAMPLE_ID.join(event)),
        batch_item_bytes=len(SAMPLE_ID.join(batch_item)),
        duration=arguments.duration,
        load_before=os.getloadavg(),
        commit_ms=measure_commit_ms(),
    )
    return Bench(arguments, token, timestamp, event, batch_item, ids_dir, WORK_DIR / "server.log", results)


def measure_single_events(bench: Bench, commits: CommitWatch) -> None:
    """B0-http and B1 by turns, both servers up on the server's cores; the probe event first."""
    arguments, results = bench.arguments, bench.results
    hello, wrk = bench.wrk(arguments.port + 1), bench.wrk(arguments.port)
    hello.commits = wrk.commits = commits
    cpus, workers = arguments.server_cpus, results.workers
    with (
        bench.server(HELLO_APP, port=hello.port, cpus=cpus, workers=workers) as hello.server,
        bench.server(CANVAS_APP, port=wrk.port, cpus=cpus, workers=workers) as wrk.server,
    ):
        send_probe(bench)
        measure_http_baseline_and_single_events(
            hello, wrk, results, bench.event, arguments.http_connections, arguments.connections
        )


def send_probe(bench: Bench) -> None:
    """One event before the runs: the benchmark stops at once if /v1/event refuses its body."""
    body = "b1-probe".join(bench.event).encode()
    status, answer = http_request(bench.arguments.port, "POST", "/v1/event", body, bench.token.plaintext)
    parsed = orjson.loads(answer) if status == 200 else {}
    if status != 200 or parsed.get("duplicate") is not False:
        raise SystemExit(f"/v1/event refused the benchmark's event: {status} {answer[:500]!r}")
    (bench.ids_dir / "b1-probe.ids").write_text(f"{parsed['id']}\n")


def measure_copy_and_batches(bench: Bench, commits: CommitWatch, machine_cores: set[int]) -> None:
    """B0-copy and B2 with the server on every core, in rounds (`--all-core-batch-connections 0`: B0-copy once,
    no B2 there), then B2 with the server on its own cores, for comparison."""
    arguments, results = bench.arguments, bench.results
    wrk = bench.wrk(arguments.port)
    wrk.commits = commits
    if arguments.all_core_batch_connections != [0]:
        results.rounds = max(arguments.rounds, 1)
        results.all_cpus = ",".join(str(n) for n in sorted(machine_cores))
        results.all_workers = int(os.environ.get("GUNICORN_WORKERS") or len(machine_cores))
        with bench.server(CANVAS_APP, port=wrk.port, cpus=results.all_cpus, workers=results.all_workers) as wrk.server:
            measure_copy_and_batch_rounds(
                wrk, results, bench.token, bench.timestamp, bench.batch_item, arguments.all_core_batch_connections
            )
    else:
        measure_copy_baseline(results, bench.token, bench.timestamp)
        forget_copied_rows()
    with bench.server(CANVAS_APP, port=wrk.port, cpus=arguments.server_cpus, workers=results.workers) as wrk.server:
        measure_batches(wrk, results, bench.batch_item, arguments.batch_connections)


def finish(bench: Bench) -> int:
    """Reconcile, print, draw, write; 1 if an acknowledged event is missing."""
    results = bench.results
    acknowledged = acknowledged_by_phase(results, probes=PROBES)
    summary = reconcile(results, bench.ids_dir, acknowledged, database_url=DATABASE_URL)
    print_summary(results)
    from .chart import draw_chart  # matplotlib: a benchmark requirement only, not installed by `make test`

    draw_chart(results, CHART)
    write_report(results, REPORT)
    (WORK_DIR / "results.json").write_text(json.dumps(asdict(results), indent=2))
    print(
        f"\nWrote {REPORT.relative_to(ROOT)} and {CHART.relative_to(ROOT)}; `make bench-publish` copies them to docs/"
    )
    if summary["missing"]:
        print(f"FAIL: {summary['missing']} acknowledged event(s) are not in the table", file=sys.stderr)
        return 1
    return 0


def main() -> int:
    arguments = parse_arguments()
    if isinstance(sys.stdout, io.TextIOWrapper):
        sys.stdout.reconfigure(line_buffering=True)
    if shutil.which("wrk") is None:
        raise SystemExit("wrk is not installed: `apt-get install -y wrk` (make bench does it).")
    require_free_ports(arguments.port, arguments.port + 1)
    # This script, the COPY client and wrk stay on the load generator's cores.
    machine_cores = os.sched_getaffinity(0)  # before this script pins itself: the cores the machine gives it
    os.sched_setaffinity(0, cpu_list(arguments.client_cpus))
    bench = prepare(arguments)
    results = bench.results
    print(
        f"Server: {cores_text(arguments.server_cpus)} (cpu{arguments.server_cpus}), {results.workers} worker(s) x "
        f"{results.threads} threads; wrk: {cores_text(arguments.client_cpus)} (cpu{arguments.client_cpus}); "
        f"PostgreSQL and Redis on this machine, unpinned. Event: {results.event_bytes} bytes. A COMMIT (WAL flush) "
        f"takes {results.commit_ms:.1f} ms. Load average: {results.load_before[0]:.2f}",
    )
    commits = CommitWatch()
    commits.start()
    measure_single_events(bench, commits)
    measure_copy_and_batches(bench, commits, machine_cores)
    results.load_after = os.getloadavg()
    commits.stop()
    results.slowest_commit_ms = commits.slowest_ms()
    return finish(bench)


if __name__ == "__main__":
    sys.exit(main())
