"""The faults: gunicorn workers killed with SIGKILL; PostgreSQL crashed (immediate shutdown) and started again, or
frozen (SIGSTOP) and resumed."""

import random
import threading
import time
from dataclasses import dataclass

from .processes import Gunicorn, ThrowawayPostgres


class WorkerKiller(threading.Thread):
    """SIGKILLs a random worker of `server` every `interval` seconds (±30%) until stopped."""

    def __init__(self, server: Gunicorn, *, interval: float) -> None:
        super().__init__(name="worker-killer", daemon=True)
        self.server = server
        self.interval = interval
        self.stopped = threading.Event()
        self.kills: list[tuple[float, int]] = []  # (time.monotonic(), pid)

    def run(self) -> None:
        while not self.stopped.wait(self.interval * random.uniform(0.7, 1.3)):
            pid = self.server.kill_random_worker()
            if pid is not None:
                self.kills.append((time.monotonic(), pid))

    def stop(self) -> None:
        self.stopped.set()
        self.join()


CRASH = "crash"
STALL = "stall"


@dataclass(frozen=True, slots=True)
class Outage:
    """One database fault, in time.monotonic(): unavailable from `began_at`, answering again from `back_at`."""

    kind: str  # CRASH or STALL
    began_at: float
    back_at: float

    @property
    def seconds(self) -> float:
        return self.back_at - self.began_at


def crash_postgres(postgres: ThrowawayPostgres, *, down_seconds: float) -> Outage:
    """`pg_ctl stop -m immediate`, stay down `down_seconds`, start again (crash recovery) and wait until ready."""
    began_at = time.monotonic()
    postgres.crash()
    time.sleep(down_seconds)
    postgres.start()
    return Outage(CRASH, began_at, time.monotonic())


def stall_postgres(postgres: ThrowawayPostgres, *, stalled_seconds: float) -> Outage:
    """Freeze every PostgreSQL process for `stalled_seconds`, then let them run on: open connections hang
    instead of failing, which is what a stalled disk or a network partition looks like to the app."""
    began_at = time.monotonic()
    stopped = postgres.freeze()
    try:
        time.sleep(stalled_seconds)
    finally:
        postgres.thaw(stopped)
    return Outage(STALL, began_at, time.monotonic())
