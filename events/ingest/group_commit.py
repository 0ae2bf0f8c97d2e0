"""Group commit: concurrent single-event requests in one worker process share one transaction.

Each request thread hands its row to the process's committer and waits. The committer takes what is pending
(waiting at most EVENTS_GROUP_COMMIT_WAIT_MS after the first row for more to arrive, and only while requests it
was told of are still on their way: see Arrival), writes them all with `ingest.store_group` (`ingest.store_rows`
for a large group) in one transaction on its own connection, commits, and only then wakes each request with its
result. So every 2xx still follows the commit of its row, but a burst of N requests costs one commit (one WAL
flush) instead of N.
"""

import logging
import queue
import select
import threading
import time
from typing import Any

import psycopg
from django.conf import settings
from django.db import connection
from django.db.backends.base.base import BaseDatabaseWrapper

from events.ingest.storage import EventRow, StoredEvent, prepare_group, store_group, store_rows
from events.metrics import record_group_commit

logger = logging.getLogger(__name__)

MAX_ROWS_PER_COMMIT = 1000
# A small group is cheaper as one INSERT than as COPY through a staging table (docs/performance.md#group-commit).
COPY_ABOVE_ROWS = 32
# Below gunicorn's 30 s timeout and the usual client timeouts, so a hung database is answered with a 503.
RESULT_TIMEOUT_SECONDS = 10


class CommitterUnavailable(Exception):
    """The committer could not reach the database; nothing of the request was stored."""


class _Pending:
    """One row waiting for its commit, and its outcome. A bare lock, held until the outcome is set, is the cheapest
    thing a thread can wait on: concurrent.futures.Future costs a condition, a waiter lock and a notify per row,
    and every request waits on one."""

    __slots__ = ("done", "error", "result", "row")

    def __init__(self, row: EventRow) -> None:
        self.row = row
        self.done = threading.Lock()
        self.done.acquire()
        self.result: StoredEvent | None = None
        self.error: BaseException | None = None

    def set_result(self, result: StoredEvent) -> None:
        self.result = result
        self.done.release()

    def set_exception(self, error: BaseException) -> None:
        self.error = error
        self.done.release()


class Arrival:
    """A request on its way to the committer (the pipeline announces each single event as it starts).

    The committer waits for more rows only while announced requests have not handed theirs over: with none on
    the way it commits at once, and a wait usually ends with a row arriving rather than with its deadline: a
    timed wait that runs out is dear (docs/performance.md#group-commit). A request that leaves without a row
    (refused, or answered by Django) says so too.
    """

    __slots__ = ("committer",)

    def __init__(self, committer: "GroupCommitter") -> None:
        self.committer = committer
        committer.on_the_way.add(self)  # set.add and set.discard are single steps under the GIL: no lock needed

    def done(self) -> None:
        """The row is handed over, or the request will bring none: the committer no longer waits for it."""
        self.committer.on_the_way.discard(self)


class GroupCommitter:
    def __init__(self, *, wait_seconds: float) -> None:
        self.wait_seconds = wait_seconds
        self.pending: queue.SimpleQueue[_Pending] = queue.SimpleQueue()
        self.on_the_way: set[Arrival] = set()  # announced requests whose row has not been handed over yet
        self.connection: psycopg.Connection[Any] | None = None
        self.connection_lock = threading.Lock()
        self.commits = 0
        self.rows = 0
        thread = threading.Thread(target=self._run, name="events-group-commit", daemon=True)
        thread.start()

    @property
    def coming(self) -> int:
        """How many announced requests have not handed their row over yet."""
        return len(self.on_the_way)

    def submit(self, row: EventRow, *, arrival: Arrival | None = None) -> StoredEvent:
        """Store one row; returns once the transaction holding it has committed."""
        pending = _Pending(row)
        if arrival is not None:
            arrival.done()
        self.pending.put(pending)
        if not pending.done.acquire(timeout=RESULT_TIMEOUT_SECONDS):
            # The database hangs (a stalled disk, a partition): answer 503 so the client retries with the same
            # messageId. Should the row commit later, that retry is recognised as a duplicate.
            raise CommitterUnavailable("the database did not answer in time")
        if pending.error is not None:
            raise pending.error
        assert pending.result is not None  # the lock is released with a result or an error
        return pending.result

    def _gather(self) -> list[_Pending]:
        batch = [self.pending.get()]
        deadline = time.monotonic() + self.wait_seconds
        while len(batch) < MAX_ROWS_PER_COMMIT:
            try:
                batch.append(self.pending.get_nowait())
                continue
            except queue.Empty:
                pass
            remaining = deadline - time.monotonic()
            if not self.on_the_way or remaining <= 0:  # nothing announced is still on its way, or time is up
                break
            try:
                batch.append(self.pending.get(timeout=remaining))
            except queue.Empty:
                break
        return batch

    def _run(self) -> None:
        while True:
            batch = self._gather()
            try:
                results = self._commit([pending.row for pending in batch])
            except CommitterUnavailable as error:
                for pending in batch:
                    pending.set_exception(error)
                continue
            except Exception:
                # One row the database refused must not fail its neighbours: write each on its own.
                logger.exception("group commit failed; retrying %d rows one by one", len(batch))
                for pending in batch:
                    self._commit_alone(pending)
                continue
            for pending, result in zip(batch, results, strict=True):
                pending.set_result(result)

    def _commit_alone(self, pending: _Pending) -> None:
        try:
            result = self._commit([pending.row])[0]
        except Exception as error:
            pending.set_exception(error)
        else:
            pending.set_result(result)

    def _commit(self, rows: list[EventRow]) -> list[StoredEvent]:
        with self.connection_lock:
            return self._commit_locked(rows)

    def _commit_locked(self, rows: list[EventRow]) -> list[StoredEvent]:
        try:
            db = self._connect()
            if len(rows) > COPY_ABOVE_ROWS:  # several statements: a transaction
                with db.transaction(), db.cursor() as cursor:
                    results = store_rows(cursor, rows)
            else:  # one statement, atomic and committed on its own in autocommit mode
                results = store_group(db, rows)
        except (psycopg.OperationalError, psycopg.InterfaceError) as error:
            self._disconnect()
            raise CommitterUnavailable(str(error)) from error
        self.commits += 1
        self.rows += len(rows)
        record_group_commit(len(rows))
        return results

    def _connect(self) -> psycopg.Connection[Any]:
        if self.connection is not None and not self.connection.closed and connection_was_cut(self.connection):
            self._disconnect()
        if self.connection is None or self.connection.closed:
            self.connection = open_connection()
        return self.connection

    def close(self) -> None:
        """Close the committer's connection; its next commit opens a new one."""
        with self.connection_lock:
            self._disconnect()

    def _disconnect(self) -> None:
        if self.connection is not None:
            try:
                self.connection.close()
            finally:
                self.connection = None


def open_connection() -> psycopg.Connection[Any]:
    """A connection of the committer's own to the default database, in autocommit mode, with store_group's
    statement prepared on it."""
    params = connection.get_connection_params()
    params.pop("cursor_factory", None)
    params.pop("context", None)
    # Keepalives and a user timeout make a partitioned network break the socket instead of hanging it.
    fresh = psycopg.connect(
        **params,
        autocommit=True,
        keepalives=1,
        keepalives_idle=5,
        keepalives_interval=2,
        keepalives_count=3,
        tcp_user_timeout=10_000,
    )
    try:
        prepare_group(fresh)
    except BaseException:
        fresh.close()
        raise
    return fresh


def connection_was_cut(idle: psycopg.Connection[Any]) -> bool:
    """Whether the server has hung up on an idle connection (a restart, a failover, a terminated backend).

    An idle connection has nothing to read; if its socket is readable, the server has sent its goodbye or
    closed it. Checking costs a system call, not a round trip, and it happens before anything is sent, so
    a dead connection is replaced instead of answering 503, with nothing a retry could write twice.
    """
    readable, _, _ = select.select([idle.fileno()], [], [], 0)
    return bool(readable)


_committer: GroupCommitter | None = None
_committer_lock = threading.Lock()


def committer() -> GroupCommitter:
    """This process's committer, started on first use (after gunicorn has forked the worker)."""
    global _committer
    if _committer is None:
        with _committer_lock:
            if _committer is None:
                _committer = GroupCommitter(wait_seconds=settings.EVENTS_GROUP_COMMIT_WAIT_MS / 1000)
    return _committer


def close() -> None:
    """Close this process's committer connection (tests call it before dropping their database)."""
    if _committer is not None:
        _committer.close()


def can_group_commit(database: BaseDatabaseWrapper = connection) -> bool:
    """Group commit needs PostgreSQL and a caller outside any transaction (on `database`, this thread's connection).

    Inside a transaction (a test, or a caller's own atomic block) the row must be written on that transaction's
    connection, where the committer's separate connection could not see uncommitted rows it refers to.
    """
    return settings.EVENTS_GROUP_COMMIT and database.vendor == "postgresql" and not database.in_atomic_block
