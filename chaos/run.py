"""`make chaos`: is any acknowledged event lost while workers are killed and PostgreSQL crashes?

    python -m chaos.run [--duration 60] [--outages 2] [--kill-interval 3] ...

One run, on processes of its own that it removes afterwards, even on failure: a throwaway PostgreSQL 15 cluster
(never the shared one on 5432), a private redis-server, and gunicorn with gunicorn.conf.py. While client threads
send events with unique messageIds, each resent with the same messageId until a 2xx (honouring Retry-After):

- a random gunicorn worker is killed with SIGKILL every few seconds;
- PostgreSQL is stopped in immediate mode (a crash: crash recovery on the next start), kept down a few
  seconds, and started again, `--outages` times, evenly spread over the run;
- optionally (`--stalls`), PostgreSQL is frozen with SIGSTOP for `--stall-seconds` and then resumed: open
  connections hang instead of failing, as with a stalled disk or a network partition.

Then the client stops sending new events, gives the ones in flight time to be acknowledged, and reconciles
against the table. Exit status 1 on any violation:

- an acknowledged event missing, stored twice, or stored under another id than the one answered;
- a row the client never sent; an event never acknowledged although the service was back;
- any 500 (or other 5xx but 503); a 503 without Retry-After; no 503 + Retry-After while PostgreSQL was down;
- no 2xx within RECOVERY_LIMIT_SECONDS after PostgreSQL was back (or resumed), or fresh events refused at the
  end, or the gunicorn master gone (nothing is restarted by hand).
"""

import argparse
import json
import shutil
import signal
import sys
import tempfile
import threading
import time
from collections import Counter
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import NamedTuple

import psycopg
import requests

from .faults import CRASH, STALL, Outage, WorkerKiller, crash_postgres, stall_postgres
from .load import EventSender, GiveUpClock, Ledger, LoadThread
from .processes import Gunicorn, RedisServer, ThrowawayPostgres, app_environment, migrate_and_create_token

RECOVERY_LIMIT_SECONDS = 10.0
FINAL_EVENTS = 20
PROBE_INTERVAL_SECONDS = 0.1
DATABASE_NAME = "canvas_chaos"


@dataclass(frozen=True)
class ChaosConfig:
    duration: float = 60.0  # seconds of load with faults
    outages: int = 2  # PostgreSQL crashes, evenly spread over the duration
    down_seconds: float = 3.0  # how long PostgreSQL stays down each time
    kill_interval: float = 3.0  # seconds between worker kills (±30%)
    stalls: int = 0  # PostgreSQL freezes (SIGSTOP), spread over the duration with the crashes
    stall_seconds: float = 35.0  # how long each freeze lasts
    clients: int = 12  # client threads sending back to back
    workers: int = 2  # gunicorn workers
    threads: int = 8  # gunicorn threads per worker
    drain_seconds: float = 60.0  # after the load: how long events in flight may still be retried
    keep: bool = False  # keep the temporary directory (logs, data) for inspection


@dataclass
class OutageResult:
    kind: str  # CRASH or STALL
    seconds: float  # from the crash (or freeze) to PostgreSQL answering again
    refused_with_retry_after: int  # 503 + Retry-After answered while it was down
    recovery_seconds: float | None  # from "accepting again" to the first 2xx of a request sent after that


@dataclass
class ChaosReport:
    config: ChaosConfig
    sent: int = 0
    acknowledged: int = 0
    stored: int = 0
    missing: int = 0
    duplicates: int = 0
    never_sent: int = 0
    wrong_ids: int = 0
    unacknowledged: int = 0
    attempts: int = 0
    statuses: Counter = field(default_factory=Counter)
    connection_errors: Counter = field(default_factory=Counter)
    retry_after_missing: int = 0
    refused_outside_outages: int = 0
    slowest_answer_seconds: float = 0.0
    p50_ms: float = 0.0  # of acknowledged attempts
    p99_ms: float = 0.0
    outages: list[OutageResult] = field(default_factory=list)
    workers_killed: int = 0
    master_survived: bool = False
    ready_at_end: bool = False
    final_refused: int = 0
    server_tracebacks: int = 0
    server_log_excerpt: str = ""

    @property
    def server_errors(self) -> int:
        return self.statuses[500]

    @property
    def other_5xx(self) -> int:
        return sum(count for status, count in self.statuses.items() if status >= 500 and status not in (500, 503))

    def violations(self) -> list[str]:
        problems = []
        for name in ("missing", "duplicates", "never_sent", "wrong_ids", "unacknowledged", "retry_after_missing"):
            if getattr(self, name):
                problems.append(f"{name.replace('_', ' ')}: {getattr(self, name)}")
        if self.server_errors:
            problems.append(f"500 answers: {self.server_errors}")
        if self.other_5xx:
            problems.append(f"5xx other than 503: {self.other_5xx}")
        for kind, planned in ((CRASH, self.config.outages), (STALL, self.config.stalls)):
            happened = sum(1 for outage in self.outages if outage.kind == kind)
            if happened != planned:
                problems.append(f"{happened} PostgreSQL faults of kind {kind!r} instead of {planned}")
        for number, outage in enumerate(self.outages, 1):
            if outage.kind == CRASH and not outage.refused_with_retry_after:
                problems.append(f"outage {number}: no 503 with Retry-After while PostgreSQL was down")
            if outage.recovery_seconds is None or outage.recovery_seconds > RECOVERY_LIMIT_SECONDS:
                limit = f"{RECOVERY_LIMIT_SECONDS:.0f} s"
                problems.append(f"outage {number}: no 2xx within {limit} after PostgreSQL was back")
        if self.config.kill_interval and not self.workers_killed:
            problems.append("no gunicorn worker was killed")
        if not self.master_survived:
            problems.append("the gunicorn master did not survive")
        if not self.ready_at_end:
            problems.append("/readyz did not answer 200 at the end")
        if self.final_refused:
            problems.append(f"{self.final_refused} of {FINAL_EVENTS} fresh events at the end were not acknowledged")
        return problems

    def render(self) -> str:
        def line(label: str, value, note: str = "") -> str:
            return f"  {label:<34} {value!s:>10}  {note}".rstrip()

        statuses = ", ".join(f"{status}: {count}" for status, count in sorted(self.statuses.items()))
        errors = ", ".join(f"{name}: {count}" for name, count in self.connection_errors.most_common()) or "none"
        lines = [
            f"Chaos run: {self.config.duration:.0f} s of load, {self.config.clients} clients, "
            f"{self.config.workers} workers x {self.config.threads} threads",
            line("sent (unique messageIds)", self.sent),
            line("acknowledged (2xx)", self.acknowledged),
            line("stored (rows)", self.stored),
            line("missing (acked, not stored)", self.missing, "must be 0"),
            line("duplicates (extra rows)", self.duplicates, "must be 0"),
            line("rows never sent", self.never_sent, "must be 0"),
            line("stored under another id", self.wrong_ids, "must be 0"),
            line("never acknowledged", self.unacknowledged, "must be 0"),
            line("HTTP attempts", self.attempts, f"{self.attempts - self.sent} retries"),
            line("500 answers", self.server_errors, "must be 0"),
            line("other 5xx but 503", self.other_5xx, "must be 0"),
            line("503 without Retry-After", self.retry_after_missing, "must be 0"),
            line("503 outside outages", self.refused_outside_outages),
            line("2xx latency p50 / p99", f"{self.p50_ms:.0f} / {self.p99_ms:.0f} ms"),
            line("slowest answer", f"{self.slowest_answer_seconds:.2f} s"),
            line("workers killed (SIGKILL)", self.workers_killed),
            f"  statuses: {statuses}",
            f"  connection errors: {errors}",
        ]
        for number, outage in enumerate(self.outages, 1):
            recovery = "never" if outage.recovery_seconds is None else f"{outage.recovery_seconds:.2f} s"
            state = "down (crashed)" if outage.kind == CRASH else "frozen (SIGSTOP)"
            lines.append(
                f"  outage {number}: PostgreSQL {state} {outage.seconds:.1f} s; "
                f"{outage.refused_with_retry_after} x 503 with Retry-After; first 2xx {recovery} after it was back"
            )
        recovered = self.master_survived and self.ready_at_end and not self.final_refused
        fresh = f"{FINAL_EVENTS - self.final_refused}/{FINAL_EVENTS}"
        lines += [
            line(
                "recovered by itself",
                "yes" if recovered else "no",
                f"same gunicorn master; /readyz 200: {self.ready_at_end}; {fresh} fresh events 2xx at first try",
            ),
            line("tracebacks in the server log", self.server_tracebacks),
        ]
        problems = self.violations()
        lines.append("RESULT: " + ("PASS" if not problems else "FAIL\n  - " + "\n  - ".join(problems)))
        if problems and self.server_log_excerpt:
            lines.append("Server log (first traceback or last lines):\n" + self.server_log_excerpt)
        return "\n".join(lines)


def reconcile(report: ChaosReport, ledger: Ledger, database_url: str, team_id: int) -> None:
    """Compare what the client sent and was told with what the events table holds."""
    with psycopg.connect(database_url) as connection:
        rows = connection.execute(
            "SELECT message_id, count(*), min(id) FROM events_event WHERE team_id = %s GROUP BY message_id",
            (team_id,),
        ).fetchall()
    stored = {message_id: (count, first_id) for message_id, count, first_id in rows}
    sent = set(ledger.sent)
    report.sent = len(sent)
    report.acknowledged = len(ledger.acknowledged)
    report.stored = sum(count for count, _ in stored.values())
    report.missing = sum(1 for message_id in ledger.acknowledged if message_id not in stored)
    report.duplicates = sum(count - 1 for count, _ in stored.values())
    report.never_sent = sum(count for message_id, (count, _) in stored.items() if message_id not in sent)
    report.wrong_ids = sum(
        1
        for message_id, event_id in ledger.acknowledged.items()
        if message_id in stored and stored[message_id][1] != event_id
    )
    report.unacknowledged = len(sent - ledger.acknowledged.keys())


def judge_answers(report: ChaosReport, ledger: Ledger, outages: list[Outage]) -> None:
    """Statuses, Retry-After, and for each outage: refused properly while down, and how soon it was back."""
    report.attempts = len(ledger.attempts)
    report.statuses = ledger.statuses()
    report.connection_errors = ledger.errors()
    refused = [attempt for attempt in ledger.attempts if attempt.status == 503]
    report.retry_after_missing = sum(1 for attempt in refused if not attempt.retry_after)
    report.slowest_answer_seconds = max((a.answered_at - a.sent_at for a in ledger.attempts), default=0.0)
    latencies = sorted(a.answered_at - a.sent_at for a in ledger.attempts if a.acknowledged)
    if latencies:
        report.p50_ms = 1000 * latencies[len(latencies) // 2]
        report.p99_ms = 1000 * latencies[min(len(latencies) - 1, len(latencies) * 99 // 100)]

    def during(attempt, outage: Outage) -> bool:
        # A 503 belongs to a fault from a second before it began (the client reads its clock before the
        # harness does) until RECOVERY_LIMIT_SECONDS after it ended: a committer connection the crash broke is
        # only found broken by the first batch after the restart.
        return outage.began_at - 1 <= attempt.answered_at <= outage.back_at + RECOVERY_LIMIT_SECONDS

    report.refused_outside_outages = sum(1 for attempt in refused if not any(during(attempt, o) for o in outages))
    for outage in outages:
        first_success = min(
            (a.answered_at for a in ledger.attempts if a.acknowledged and a.sent_at >= outage.back_at), default=None
        )
        report.outages.append(
            OutageResult(
                kind=outage.kind,
                seconds=outage.seconds,
                refused_with_retry_after=sum(
                    1 for a in refused if a.retry_after and outage.began_at <= a.answered_at <= outage.back_at
                ),
                recovery_seconds=None if first_success is None else first_success - outage.back_at,
            )
        )


def check_fresh_events(report: ChaosReport, server: Gunicorn, token: str, ledger: Ledger) -> None:
    """After the faults: the same server, never restarted, is ready and takes new events at the first try."""
    report.master_survived = server.alive()
    try:
        report.ready_at_end = requests.get(f"{server.url}/readyz", timeout=10).status_code == 200
    except requests.RequestException:
        report.ready_at_end = False
    sender = EventSender(server.url, token, ledger)
    for number in range(FINAL_EVENTS):
        message_id = f"final-{number}"
        ledger.note_sent(message_id)
        if not sender.post(message_id).acknowledged:
            report.final_refused += 1


def read_server_log(report: ChaosReport, server: Gunicorn) -> None:
    """Count tracebacks and keep the first one (from a JSON log line's exc_info, or plain text)."""
    text = server.log.read_text(errors="replace") if server.log.exists() else ""
    lines = [line for line in text.splitlines() if "Traceback (most recent call last)" in line]
    report.server_tracebacks = len(lines)
    if not lines:
        report.server_log_excerpt = server.log_tail()
        return
    try:
        report.server_log_excerpt = json.loads(lines[0])["exc_info"]
    except (ValueError, KeyError, TypeError):
        start = text.find("Traceback (most recent call last)")
        report.server_log_excerpt = text[start : start + 4000]


class Processes(NamedTuple):
    postgres: ThrowawayPostgres
    server: Gunicorn
    database_url: str
    team_id: int
    token: str


def start_processes(config: ChaosConfig, cleanup: ExitStack, say) -> Processes:
    """A throwaway PostgreSQL cluster, redis-server and gunicorn in a temporary directory, each stopped (and the
    directory removed, unless `keep`) by `cleanup`."""
    workdir = Path(tempfile.mkdtemp(prefix="canvas-chaos-"))
    workdir.chmod(0o755)  # the postgres OS user must reach its cluster directory inside
    if config.keep:
        cleanup.callback(say, f"Kept {workdir}")
    else:
        cleanup.callback(shutil.rmtree, workdir, ignore_errors=True)
    say("Starting a throwaway PostgreSQL 15 cluster, redis-server and gunicorn ...")
    postgres = ThrowawayPostgres(workdir / "postgres")
    cleanup.callback(postgres.destroy)
    postgres.create()
    redis_server = RedisServer(workdir)
    cleanup.callback(redis_server.stop)
    redis_server.start()
    database_url = postgres.create_database(DATABASE_NAME)
    env = app_environment(
        database_url=database_url, redis_url=redis_server.url(), workers=config.workers, threads=config.threads
    )
    team_id, _, token = migrate_and_create_token(env)
    server = Gunicorn(env, log=workdir / "gunicorn.log")
    cleanup.callback(server.stop)
    server.start()
    say(f"  PostgreSQL :{postgres.port}, redis :{redis_server.port}, gunicorn {server.url} (master {server.pid})")
    return Processes(postgres, server, database_url, team_id, token)


def inject_database_faults(config: ChaosConfig, postgres: ThrowawayPostgres, started: float, say) -> list[Outage]:
    """The crashes, then the freezes, evenly spread over the run; returns once the last is over."""
    outages = []
    faults = [CRASH] * config.outages + [STALL] * config.stalls
    for number, kind in enumerate(faults):
        length = config.down_seconds if kind == CRASH else config.stall_seconds
        begin_at = started + config.duration * (number + 1) / (len(faults) + 1) - length / 2
        time.sleep(max(begin_at - time.monotonic(), 0))
        if kind == CRASH:
            outage = crash_postgres(postgres, down_seconds=length)
        else:
            outage = stall_postgres(postgres, stalled_seconds=length)
        outages.append(outage)
        say(f"  PostgreSQL {kind} from {outage.began_at - started:.1f} s to {outage.back_at - started:.1f} s")
    return outages


def _plan(config: ChaosConfig) -> str:
    plan = [f"SIGKILL a worker every ~{config.kill_interval:g} s"] if config.kill_interval else []
    if config.outages:
        plan.append(f"crash PostgreSQL {config.outages} time(s) for {config.down_seconds:g} s")
    if config.stalls:
        plan.append(f"freeze PostgreSQL {config.stalls} time(s) for {config.stall_seconds:g} s")
    return ", ".join(plan) or "no faults"


def run_chaos(config: ChaosConfig, *, say=print) -> ChaosReport:
    """One chaos run; every process and file it creates is gone when it returns or raises (unless `keep`)."""
    report = ChaosReport(config)
    with ExitStack() as cleanup:
        postgres, server, database_url, team_id, token = start_processes(config, cleanup, say)
        master_pid = server.pid
        ledger = Ledger()
        stop_new = threading.Event()
        give_up_at = GiveUpClock()
        clients = [
            LoadThread(f"load{n}", EventSender(server.url, token, ledger), stop_new=stop_new, give_up_at=give_up_at)
            for n in range(config.clients)
        ]
        prober = LoadThread(
            "probe",
            EventSender(server.url, token, ledger, honor_retry_after=False),
            stop_new=stop_new,
            give_up_at=give_up_at,
            pace=PROBE_INTERVAL_SECONDS,
            backoff=(PROBE_INTERVAL_SECONDS, PROBE_INTERVAL_SECONDS),
        )
        killer = WorkerKiller(server, interval=config.kill_interval)
        threads = [*clients, prober]

        def stop_everything() -> None:
            stop_new.set()
            give_up_at.drain_for(0)
            if killer.is_alive():
                killer.stop()
            for thread in threads:
                thread.join(timeout=60)

        cleanup.callback(stop_everything)
        say(f"Load for {config.duration:.0f} s: {_plan(config)} ...")
        started = time.monotonic()
        for thread in threads:
            thread.start()
        if config.kill_interval:
            killer.start()
        outages = inject_database_faults(config, postgres, started, say)
        time.sleep(max(started + config.duration - time.monotonic(), 0))
        if config.kill_interval:
            killer.stop()
        report.workers_killed = len(killer.kills)
        say(f"  {report.workers_killed} workers killed; no new events now, draining (up to {config.drain_seconds:g} s)")
        stop_new.set()
        give_up_at.drain_for(config.drain_seconds)
        for thread in threads:
            thread.join()

        check_fresh_events(report, server, token, ledger)
        report.master_survived = report.master_survived and server.pid == master_pid
        judge_answers(report, ledger, outages)
        reconcile(report, ledger, database_url, team_id)
        read_server_log(report, server)
    return report


def parse_config(argv: list[str]) -> ChaosConfig:
    defaults = ChaosConfig()
    parser = argparse.ArgumentParser(prog="python -m chaos.run", description=__doc__.split("\n\n")[0])
    parser.add_argument("--duration", type=float, default=defaults.duration, help="seconds of load with faults")
    parser.add_argument("--outages", type=int, default=defaults.outages, help="PostgreSQL crashes during the run")
    parser.add_argument("--down-seconds", type=float, default=defaults.down_seconds, help="seconds down per crash")
    parser.add_argument("--kill-interval", type=float, default=defaults.kill_interval, help="0: no worker kills")
    parser.add_argument("--stalls", type=int, default=defaults.stalls, help="PostgreSQL freezes (SIGSTOP)")
    parser.add_argument("--stall-seconds", type=float, default=defaults.stall_seconds, help="seconds per freeze")
    parser.add_argument("--clients", type=int, default=defaults.clients, help="client threads")
    parser.add_argument("--workers", type=int, default=defaults.workers, help="gunicorn workers")
    parser.add_argument("--threads", type=int, default=defaults.threads, help="gunicorn threads per worker")
    parser.add_argument("--drain-seconds", type=float, default=defaults.drain_seconds)
    parser.add_argument("--keep", action="store_true", help="keep the temporary directory (logs, data)")
    return ChaosConfig(**vars(parser.parse_args(argv)))


def main(argv: list[str] | None = None) -> int:
    config = parse_config(sys.argv[1:] if argv is None else argv)
    # `kill` or CI cancelling the job: clean up as on Ctrl-C.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    report = run_chaos(config, say=lambda message: print(message, flush=True))
    print(report.render(), flush=True)
    return 1 if report.violations() else 0


if __name__ == "__main__":
    sys.exit(main())
