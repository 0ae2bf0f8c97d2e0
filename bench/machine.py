"""The machine under the benchmark: its facts for the report, how busy its cores were, the CPU time PostgreSQL
spent, and how long its disk takes to commit (once at the start, and all through the run by `CommitWatch`)."""

import os
import platform
import statistics
import threading
import time
from pathlib import Path

import psycopg
import redis

from chaos.processes import cpu_seconds_of, run

from .config import DATABASE_URL, PUBLISHED_CHART, PUBLISHED_REPORT, REDIS_URL, ROOT

LOOP_TURNS = 5_000_000  # the machine's yardstick: a plain Python loop this long (python_loop_seconds)


def cpu_list(cpus: str) -> set[int]:
    """The cores of a taskset list such as "0", "1" or "0-1,3"."""
    result: set[int] = set()
    for part in cpus.split(","):
        first, _, last = part.partition("-")
        result.update(range(int(first), int(last or first) + 1))
    return result


def cores_text(cpus: str) -> str:
    count = len(cpu_list(cpus))
    return f"{count} core" + ("s" if count > 1 else "")


def core_ticks() -> dict[str, tuple[int, int]]:
    """Per core, from /proc/stat: (busy ticks, all ticks) so far. Idle and I/O wait count as not busy."""
    ticks = {}
    for line in Path("/proc/stat").read_text().splitlines():
        name, *values = line.split()
        if name.startswith("cpu") and name != "cpu":
            numbers = [int(value) for value in values]
            ticks[name] = (sum(numbers) - numbers[3] - numbers[4], sum(numbers))
    return ticks


def core_busy(before: dict[str, tuple[int, int]], after: dict[str, tuple[int, int]]) -> dict[str, float]:
    busy = {}
    for name, (busy_after, total_after) in after.items():
        busy_before, total_before = before.get(name, (0, 0))
        if total_after > total_before:
            busy[name] = (busy_after - busy_before) / (total_after - total_before)
    return busy


def database_cpu_seconds() -> float:
    """CPU time used so far by PostgreSQL's processes (every backend, and the WAL writer and checkpointer that
    work for them), including backends that have ended: the postmaster's children's times hold theirs. The cluster
    is shared: other sessions' queries during a run count too."""
    return cpu_seconds_of(lambda name, fields: name == "postgres", children=True)


def measure_commit_ms(samples: int = 200) -> float:
    """Median time of a COMMIT that must flush the WAL (one fsync on this disk): what every acknowledged
    write pays at least once, however many events share it."""
    timings = []
    with psycopg.connect(DATABASE_URL, options="-c synchronous_commit=on") as connection:
        # A transaction that wrote no WAL commits without a flush: each one inserts a row.
        connection.execute("CREATE TABLE bench_commit_probe (n integer)")
        connection.commit()
        for n in range(samples):
            connection.execute("INSERT INTO bench_commit_probe VALUES (%s)", (n,))
            started = time.perf_counter()
            connection.commit()
            timings.append(time.perf_counter() - started)
        connection.execute("DROP TABLE bench_commit_probe")
        connection.commit()
    return statistics.median(timings) * 1000


class CommitWatch:
    """A COMMIT that flushes the WAL every 20 ms on a connection of its own, all through the benchmark. Every
    acknowledged event waits for such a flush, so when the disk stalls every request stalls: a run's slowest
    COMMIT tells a stall of the disk from one of the server. Fifty small commits a second are next to nothing
    beside the runs' thousands."""

    INTERVAL_SECONDS = 0.02

    def __init__(self) -> None:
        self.samples: list[tuple[float, float]] = []  # (monotonic time it started, seconds it took)
        self.stopped = threading.Event()
        self.thread = threading.Thread(target=self._watch, name="commit-watch", daemon=True)

    def start(self) -> None:
        self.thread.start()

    def stop(self) -> None:
        self.stopped.set()
        self.thread.join()

    def _watch(self) -> None:
        with psycopg.connect(DATABASE_URL, options="-c synchronous_commit=on") as connection:
            connection.execute("CREATE TABLE bench_commit_watch (n integer)")
            connection.commit()
            while not self.stopped.wait(self.INTERVAL_SECONDS):
                connection.execute("INSERT INTO bench_commit_watch VALUES (1)")
                started = time.monotonic()
                connection.commit()
                self.samples.append((started, time.monotonic() - started))

    def slowest_ms(self, since: float = 0.0, until: float = float("inf")) -> float:
        """The slowest COMMIT that was under way at some time between since and until."""
        during = [took for started, took in list(self.samples) if started <= until and started + took >= since]
        return max(during, default=0.0) * 1000


def python_loop_seconds(turns: int = LOOP_TURNS) -> float:
    """The best of three timings of a plain Python loop: a yardstick for telling apart machines that name
    themselves alike (docs/performance.md#how-changes-are-compared)."""
    timings = []
    for _ in range(3):
        started = time.perf_counter()
        total = 0
        for number in range(turns):
            total += number
        timings.append(time.perf_counter() - started)
    return min(timings)


def machine_facts() -> dict:
    cpu = {}
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if not line.strip():
            break  # the first processor's fields are enough
        name, _, value = line.partition(":")
        cpu[name.strip()] = value.strip()
    model = cpu.get("model name", "")
    if cpu.get("model"):
        model += f", model {cpu['model']}"
    if cpu.get("cpu MHz"):
        model += f", {float(cpu['cpu MHz']):,.0f} MHz"
    memory_kb = int(Path("/proc/meminfo").read_text().split()[1])
    with psycopg.connect(DATABASE_URL) as connection:
        row = connection.execute("SHOW server_version").fetchone()
        postgres = row[0] if row else "unknown"
    redis_version = redis.Redis.from_url(REDIS_URL).info("server")["redis_version"]
    wrk_version = run(["wrk", "--version"], capture_output=True, text=True, check=False).stdout.split("\n")[0]
    commit = run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True, check=False)
    # A published report and chart (`make bench-publish`) do not make the code uncommitted.
    published = [f":!{path.relative_to(ROOT)}" for path in (PUBLISHED_REPORT, PUBLISHED_CHART)]
    dirty = run(
        ["git", "status", "--porcelain", "--", ".", *published],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    return {
        "cpu": model,
        "python_loop_seconds": python_loop_seconds(),
        "cores": os.cpu_count(),
        "memory_gib": round(memory_kb / 1024 / 1024, 1),
        "kernel": platform.release(),
        "python": platform.python_version(),
        "postgres": postgres,
        "redis": redis_version,
        "wrk": " ".join(wrk_version.split()[:2]),
        "commit": commit.stdout.strip() + (" with uncommitted changes" if dirty.stdout.strip() else ""),
    }
