"""The load client: events with unique messageIds, each resent with the same messageId until it is acknowledged.

Every attempt is written to a `Ledger`, so that afterwards each acknowledgement can be checked against the table
and each answer against the moment it was given (during an outage or not).
"""

import contextlib
import itertools
import math
import random
import threading
import time
from collections import Counter
from dataclasses import dataclass, field

import orjson
import requests

EVENT_PATH = "/v1/event"
# Longer than gunicorn's worker timeout (30 s): a request the server holds too long must show up as what the
# server answers, not as a client-side timeout.
REQUEST_TIMEOUT_SECONDS = 40


def event_body(message_id: str) -> bytes:
    return orjson.dumps(
        {
            "version": 1,
            "type": "event",
            "event": "Chaos",
            "properties": {"sentBy": "chaos"},
            "messageId": message_id,
        }
    )


@dataclass(frozen=True, slots=True)
class Attempt:
    """One POST: when it left and came back (time.monotonic()), and what came back."""

    message_id: str
    sent_at: float
    answered_at: float
    status: int | None  # None: no HTTP answer (connection refused or reset, timeout)
    retry_after: str | None = None
    error: str | None = None

    @property
    def acknowledged(self) -> bool:
        return self.status is not None and 200 <= self.status < 300


@dataclass
class Ledger:
    """What the client sent and what it was told, shared by every client thread."""

    attempts: list[Attempt] = field(default_factory=list)
    sent: list[str] = field(default_factory=list)
    acknowledged: dict[str, int] = field(default_factory=dict)  # messageId -> the id the server answered
    lock: threading.Lock = field(default_factory=threading.Lock)

    def note_sent(self, message_id: str) -> None:
        with self.lock:
            self.sent.append(message_id)

    def record(self, attempt: Attempt, event_id: int | None = None) -> None:
        with self.lock:
            self.attempts.append(attempt)
            if event_id is not None:
                self.acknowledged[attempt.message_id] = event_id

    def statuses(self) -> Counter:
        return Counter(attempt.status for attempt in self.attempts if attempt.status is not None)

    def errors(self) -> Counter:
        return Counter(attempt.error for attempt in self.attempts if attempt.error is not None)


class EventSender:
    """Delivers one event at a time over its own keep-alive session (one per thread)."""

    def __init__(self, base_url: str, token: str, ledger: Ledger, *, honor_retry_after: bool = True) -> None:
        self.url = base_url + EVENT_PATH
        self.headers = {"Content-Type": "application/json", "X-Auth-Token": token}
        self.ledger = ledger
        self.honor_retry_after = honor_retry_after
        self.session = requests.Session()

    def post(self, message_id: str) -> Attempt:
        sent_at = time.monotonic()
        try:
            response = self.session.post(
                self.url, data=event_body(message_id), headers=self.headers, timeout=REQUEST_TIMEOUT_SECONDS
            )
        except requests.RequestException as error:
            attempt = Attempt(message_id, sent_at, time.monotonic(), None, error=type(error).__name__)
            self.ledger.record(attempt)
            return attempt
        attempt = Attempt(
            message_id, sent_at, time.monotonic(), response.status_code, response.headers.get("Retry-After")
        )
        event_id = None
        if attempt.acknowledged:
            try:
                event_id = int(response.json()["id"])
            except (ValueError, KeyError, TypeError):
                attempt = Attempt(message_id, sent_at, attempt.answered_at, response.status_code, error="bad 2xx body")
        self.ledger.record(attempt, event_id)
        return attempt

    def deliver(
        self, message_id: str, *, give_up_at, minimum_backoff: float = 0.05, maximum_backoff: float = 2.0
    ) -> bool:
        """Send until a 2xx, always with the same messageId; waits Retry-After when the server names one,
        else backs off exponentially with jitter. `give_up_at()` is read on every round: it may move."""
        self.ledger.note_sent(message_id)
        backoff = minimum_backoff
        while True:
            attempt = self.post(message_id)
            if attempt.acknowledged and attempt.error is None:
                return True
            delay = random.uniform(backoff / 2, backoff)
            if self.honor_retry_after and attempt.retry_after is not None:
                with contextlib.suppress(ValueError):
                    delay = float(attempt.retry_after)
            backoff = min(backoff * 2, maximum_backoff)
            remaining = give_up_at() - time.monotonic()
            if remaining <= 0:
                return False
            time.sleep(min(delay, remaining))


class LoadThread(threading.Thread):
    """Sends new events back to back (or one every `pace` seconds) until `stop_new` is set, delivering each.

    A prober is a LoadThread with a pace, a fixed backoff and `honor_retry_after=False`: it tries every 0.1 s,
    which is what measures when the service is back after an outage.
    """

    def __init__(
        self,
        name: str,
        sender: EventSender,
        *,
        stop_new: threading.Event,
        give_up_at,
        pace: float = 0.0,
        backoff: tuple[float, float] = (0.05, 2.0),
    ) -> None:
        super().__init__(name=name, daemon=True)
        self.sender = sender
        self.stop_new = stop_new
        self.give_up_at = give_up_at
        self.pace = pace
        self.backoff = backoff
        self.undelivered: list[str] = []

    def run(self) -> None:
        for number in itertools.count():
            if self.stop_new.is_set():
                return
            message_id = f"{self.name}-{number}"
            minimum_backoff, maximum_backoff = self.backoff
            delivered = self.sender.deliver(
                message_id, give_up_at=self.give_up_at, minimum_backoff=minimum_backoff, maximum_backoff=maximum_backoff
            )
            if not delivered:
                self.undelivered.append(message_id)
            if self.pace:
                self.stop_new.wait(self.pace)


class GiveUpClock:
    """When client threads stop retrying: never while the load runs, then a drain deadline."""

    def __init__(self) -> None:
        self.deadline = math.inf

    def __call__(self) -> float:
        return self.deadline

    def drain_for(self, seconds: float) -> None:
        self.deadline = time.monotonic() + seconds
