"""gunicorn's gthread worker, except that no thread ever waits on a client.

gthread gives a connection to a thread as soon as it is readable, and the thread then reads the request head and
body on a blocking socket: a client that sends them a byte a second holds the thread for as long as it likes, and
a few dozen such clients hold every thread of a worker. Here the worker's event loop reads each request without
blocking, and gives it to a thread only once its head and its body are in memory, or once its deadline has passed:

- the head must arrive within `head_timeout` seconds of the connection opening (or, on a kept-alive connection,
  of the request's first byte); past it, the connection is closed;
- the whole body must arrive within `body_timeout` seconds of the head, however slowly it comes; past it, the
  request goes to a thread with the part that came, and reading the rest raises TimeoutError, which the app
  answers with 408 (events.ingest.body).

A thread reads only what the loop received. A body the loop does not wait for (larger than `max_buffered_body`,
or chunked) is not read at all: the app refuses those by their headers (413, 411) before reading them.
Requests not yet answered hold at most about `max_buffered_bytes` of a worker's memory. A request whose head is in
reserves its whole length; one that would not fit waits, unread, until a thread has answered another (or its
deadline passes), so the reserved ones always complete. A head still arriving with more than one read's worth
buffered is not read again past the budget either.
gunicorn.conf.py sets the limits (`buffering_worker(...)`); TLS is left to the load balancer in front. What it
costs against gthread and a buffering proxy: docs/performance.md#slow-clients-the-buffering-worker.
"""

import contextlib
import errno
import re
import selectors
import socket
import time
from functools import partial

from gunicorn import http, util
from gunicorn.http.message import DEFAULT_MAX_HEADERFIELD_SIZE, MAX_HEADERS, MAX_REQUEST_LINE
from gunicorn.workers.gthread import STOP_KEEPALIVE_LINGER, TConn, ThreadWorker

RECEIVE_BYTES = 64 * 1024
# How often the loop looks for connections past their deadline: a deadline is kept to within this.
SWEEP_SECONDS = 0.25
# An answered connection is closed as gunicorn's util.close_graceful closes it, without blocking the loop.
LINGER_SECONDS = 2.0
LINGER_BYTES = 64 * 1024
# A reserved body that receives nothing this long gives its reservation up while others wait for room.
STALLED_RESERVATION_SECONDS = 1.0
_FRAMING_FIELD = re.compile(rb"\r\n(content-length|transfer-encoding|expect)[ \t]*:[ \t]*([^\r\n]*)", re.IGNORECASE)


class RequestIncomplete(TimeoutError):
    """Raised in a thread that reads past what the loop received: the rest did not arrive before the deadline, or
    the loop did not wait for it (a body too large to buffer, or chunked)."""


class ReceivedBytes:
    """The parser's source in a thread: the bytes the loop received for the request, and nothing after them."""

    def __init__(self) -> None:
        self.data = memoryview(b"")
        self.ended = False  # the client closed its side: the request ends where its bytes end

    def recv(self, size: int) -> bytes:
        if not self.data:
            if self.ended:
                return b""
            raise RequestIncomplete("the rest of the request did not arrive before its deadline")
        chunk = bytes(self.data[:size])
        self.data = self.data[size:]
        return chunk


class BufferedConnection(TConn):
    def __init__(self, cfg, sock, client, server) -> None:
        super().__init__(cfg, sock, client, server)  # which makes the socket non-blocking
        self.data_ready = True  # gthread's thread-side wait for a first byte is never needed
        self.received = ReceivedBytes()
        self.buffer: bytes | bytearray = b""
        self.deadline: float | None = None  # while the loop receives a request (or lingers after closing)
        self.scanned = 0  # bytes of `buffer` known to hold no end of head
        self.request_end: int | None = None  # once the head is in: where the buffered part of the request ends
        self.reserved = False  # its whole length counts in the worker's budget, so it is never paused
        self.charge = 0  # what it counts in the worker's budget until a thread has answered it
        self.received_at = 0.0  # when its last bytes came
        self.stalled = False  # it gave its reservation up for receiving nothing: it goes on last
        self.lingered = 0

    def init(self) -> None:
        """gthread's TConn.init, for HTTP/1 over plain TCP: the parser reads what the loop received."""
        if self.parser is None:
            self.parser = http.get_parser(self.cfg, self.received, self.client)
        self.initialized = True

    def start_request(self, data: bytes, deadline: float) -> None:
        self.buffer = data
        self.received.ended = False
        self.deadline, self.scanned, self.request_end, self.reserved = deadline, 0, None, False
        self.received_at, self.stalled = time.monotonic(), False

    def hand_over(self) -> None:
        self.received.data = memoryview(self.buffer)
        self.buffer = b""
        self.deadline = None

    def unread(self) -> bytes:
        """What the thread left unread: the start of a pipelined next request."""
        left = self.parser.unreader.take_buffered() + bytes(self.received.data)
        self.received.data = memoryview(b"")
        return left


class BufferingWorker(ThreadWorker):
    head_timeout = 10.0
    body_timeout = 10.0
    max_buffered_body = 1024 * 1024
    max_buffered_bytes = 64 * 1024 * 1024

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.receiving: set[BufferedConnection] = set()  # paused ones included
        self.paused: set[BufferedConnection] = set()
        self.buffered = 0  # bytes received or reserved for requests not yet answered: the sum of their charges
        self.reservations = 0  # requests with a reservation, not yet answered
        self.lingering: set[BufferedConnection] = set()
        self.next_sweep = 0.0
        # Beyond this a head is too large whatever it holds: gunicorn's parser refuses it (414 or 431) from these
        # bytes alone, as it measures heads (gunicorn.http.message.Request).
        line = self.cfg.limit_request_line if 0 < self.cfg.limit_request_line < MAX_REQUEST_LINE else MAX_REQUEST_LINE
        fields = self.cfg.limit_request_fields if 0 < self.cfg.limit_request_fields <= MAX_HEADERS else MAX_HEADERS
        field = self.cfg.limit_request_field_size or DEFAULT_MAX_HEADERFIELD_SIZE
        self.max_head_bytes = line + 2 + fields * (field + 2) + 4

    @classmethod
    def check_config(cls, cfg, log) -> None:
        super().check_config(cfg, log)
        if cfg.is_ssl:
            raise RuntimeError("BufferingWorker speaks plain HTTP/1: terminate TLS in front of it.")

    # --- Connections the loop receives a request on ---------------------------------------------------------------

    def accept(self, listener) -> None:
        try:
            sock, client = listener.accept()
        except OSError as error:
            if error.errno not in (errno.EAGAIN, errno.ECONNABORTED, errno.EWOULDBLOCK):
                raise
            return
        self.nr_conns += 1
        conn = BufferedConnection(self.cfg, sock, client, listener.getsockname())
        conn.start_request(b"", time.monotonic() + self.head_timeout)
        self.receiving.add(conn)
        self.poller.register(sock, selectors.EVENT_READ, partial(self.on_readable, conn))

    def on_readable(self, conn: BufferedConnection, _sock) -> None:
        if conn.deadline is None:  # kept alive, idle until now: a new request starts
            self.keepalived_conns.remove(conn)
            conn.start_request(b"", time.monotonic() + self.head_timeout)
            self.receiving.add(conn)
        data = _receive(conn)
        if data is None:
            return
        if not data:  # the client went away
            if conn.request_end is None:
                self._close(conn)
            else:  # mid-body: the app refuses the short body (400) and logs it, so the client's loss is on record
                conn.received.ended = True
                self._dispatch(conn)
            return
        conn.received_at, conn.stalled = time.monotonic(), False
        if not conn.buffer:
            conn.buffer = data  # most requests come in one piece: no copy
        else:
            if isinstance(conn.buffer, bytes):
                conn.buffer = bytearray(conn.buffer)
            conn.buffer += data
        self._recharge(conn)
        if self._whole(conn):
            self._dispatch(conn)
        elif conn.request_end is not None and not conn.reserved:
            self._pause(conn)  # its body waits for room in the budget (its deadline runs on)
        elif conn.request_end is None and self.buffered > self.max_buffered_bytes and len(conn.buffer) > RECEIVE_BYTES:
            self._pause(conn)  # a large head: ordinary ones still come in one read

    def _recharge(self, conn: BufferedConnection) -> None:
        charge = max(len(conn.buffer), conn.request_end or 0) if conn.reserved else len(conn.buffer)
        self.buffered += charge - conn.charge
        conn.charge = charge

    def _reserve(self, conn: BufferedConnection) -> bool:
        """Count the request's whole length in the budget if it fits, or if no other request has a reservation (one
        always goes on: unreserved requests' first reads may fill the budget alone)."""
        if not conn.reserved and (
            conn.request_end <= RECEIVE_BYTES
            or self.buffered - conn.charge + conn.request_end <= self.max_buffered_bytes
            or self.reservations == 0
        ):
            conn.reserved = True
            self.reservations += 1
            self._recharge(conn)
        return conn.reserved

    def _pause(self, conn: BufferedConnection) -> None:
        self.poller.unregister(conn.sock)
        self.paused.add(conn)

    def _release(self, conn: BufferedConnection) -> None:
        """The request was answered (or dropped): its charge leaves the budget, and paused ones may go on."""
        self._unreserve(conn)
        self.buffered -= conn.charge
        conn.charge = 0
        self._resume()

    def _unreserve(self, conn: BufferedConnection) -> None:
        if conn.reserved:
            conn.reserved = False
            self.reservations -= 1
            self._recharge(conn)

    def _resume(self) -> None:
        """Read again the paused requests that now fit, those closest to their deadline first; a stalled one only
        when no other request holds a reservation."""
        for paused in sorted(self.paused, key=lambda paused: paused.deadline):
            if paused.request_end is None:
                if self.buffered > self.max_buffered_bytes:
                    continue
            elif (paused.stalled and self.reservations) or not self._reserve(paused):
                continue
            self.paused.discard(paused)
            paused.received_at = time.monotonic()  # its wait was not its stall
            self.poller.register(paused.sock, selectors.EVENT_READ, partial(self.on_readable, paused))

    def _whole(self, conn: BufferedConnection) -> bool:
        """Whether the request can go to a thread: its head is in, and its body too when the loop waits for it."""
        if conn.request_end is None:
            end = conn.buffer.find(b"\r\n\r\n", max(0, conn.scanned - 3))
            if end < 0:
                conn.scanned = len(conn.buffer)
                return len(conn.buffer) > self.max_head_bytes
            conn.request_end = end + 4 + self._body_to_buffer(conn, head_end=end)
            conn.deadline = time.monotonic() + self.body_timeout
            self._reserve(conn)
        return len(conn.buffer) >= conn.request_end

    def _body_to_buffer(self, conn: BufferedConnection, *, head_end: int) -> int:
        """How many body bytes to receive before the request goes to a thread. Only a single, plain Content-Length
        is waited for; any other framing goes to gunicorn's parser at once, which refuses what is ambiguous."""
        fields: dict[bytes, list[bytes]] = {}
        for name, value in _FRAMING_FIELD.findall(conn.buffer, 0, head_end):
            fields.setdefault(name.lower(), []).append(value.strip())
        lengths = fields.get(b"content-length", [])
        if b"transfer-encoding" in fields or len(lengths) != 1 or not lengths[0].isdigit():
            return 0
        length = int(lengths[0])
        if length > self.max_buffered_body:
            return 0
        if fields.get(b"expect") == [b"100-continue"] and len(conn.buffer) < head_end + 4 + length:
            # The client waits for this before it sends the body. gunicorn sends one more when the app reads the
            # body; clients skip any number of them (RFC 9110 section 15.2).
            with contextlib.suppress(OSError):
                conn.sock.send(b"HTTP/1.1 100 Continue\r\n\r\n")
        return length

    def _dispatch(self, conn: BufferedConnection) -> None:
        self._stop_receiving(conn)
        conn.hand_over()
        self.enqueue_req(conn)

    def _stop_receiving(self, conn: BufferedConnection) -> None:
        """Its charge stays in the budget until a thread has answered it (finish_request) or it is closed."""
        self.receiving.discard(conn)
        if conn in self.paused:
            self.paused.discard(conn)
        else:
            self.poller.unregister(conn.sock)

    def murder_pending(self) -> None:
        """Runs on every turn of the loop (gthread's connections deferred by a thread are never made here)."""
        now = time.monotonic()
        if now < self.next_sweep:
            return
        self.next_sweep = now + SWEEP_SECONDS
        for conn in [conn for conn in self.receiving if conn.deadline <= now]:
            if conn.request_end is None:  # the head is not in: nothing to answer
                self._close(conn)
            else:  # the body is late: the app answers 408 for it
                self._dispatch(conn)
        if self.paused:  # a client that stopped sending keeps no room from those waiting
            stalled = [c for c in self.receiving if c.reserved and now - c.received_at > STALLED_RESERVATION_SECONDS]
            for conn in stalled:
                self._unreserve(conn)
                self._pause(conn)
                conn.stalled = True
            if stalled:
                self._resume()
        for conn in [conn for conn in self.lingering if conn.deadline <= now]:
            self._close(conn)

    # --- After a thread answered ----------------------------------------------------------------------------------

    def finish_request(self, conn: BufferedConnection, fs) -> None:
        self._release(conn)
        try:
            keep_alive = not fs.cancelled() and fs.result()
            conn.sock.setblocking(False)
            if not keep_alive:
                self._linger(conn)
                return
            pipelined = conn.unread()
            if pipelined:  # the next request came with this one's
                conn.start_request(pipelined, time.monotonic() + self.head_timeout)
                self.receiving.add(conn)
                self._recharge(conn)
                self.poller.register(conn.sock, selectors.EVENT_READ, partial(self.on_readable, conn))
                if self._whole(conn):
                    self._dispatch(conn)
                return
            conn.set_timeout()
            if not self.alive:  # a stopping worker answers a request already on its way, as gthread does
                conn.timeout = min(conn.timeout, time.monotonic() + STOP_KEEPALIVE_LINGER)
            self.keepalived_conns.append(conn)
            self.poller.register(conn.sock, selectors.EVENT_READ, partial(self.on_readable, conn))
        except Exception:
            self._close(conn)

    def _linger(self, conn: BufferedConnection) -> None:
        """Half-close, then drop what the client still sends until it closes, for a while: closing with its
        unread bytes in the kernel's buffer would make the kernel reset the connection and lose the answer."""
        try:
            conn.sock.shutdown(socket.SHUT_WR)
        except OSError:
            self._close(conn)
            return
        conn.deadline = time.monotonic() + LINGER_SECONDS
        conn.lingered = 0
        self.lingering.add(conn)
        self.poller.register(conn.sock, selectors.EVENT_READ, partial(self.on_lingering_readable, conn))

    def on_lingering_readable(self, conn: BufferedConnection, _sock) -> None:
        data = _receive(conn)
        if data is None:
            return
        conn.lingered += len(data)
        if not data or conn.lingered >= LINGER_BYTES:
            self._close(conn)

    def _close(self, conn: BufferedConnection) -> None:
        if conn in self.receiving:
            self._stop_receiving(conn)
            self._release(conn)
        else:
            self.lingering.discard(conn)
            with contextlib.suppress(KeyError, ValueError, OSError):  # unregistered: closed right after a thread
                self.poller.unregister(conn.sock)
        self.nr_conns -= 1
        util.close(conn.sock)


def _receive(conn: BufferedConnection) -> bytes | None:
    """What the client sent since the last read: b"" once it has gone, None if nothing is there after all."""
    try:
        return conn.sock.recv(RECEIVE_BYTES)
    except (BlockingIOError, InterruptedError):
        return None
    except OSError:
        return b""


def buffering_worker(
    *, head_timeout: float, body_timeout: float, max_buffered_body: int, max_buffered_bytes: int
) -> type[BufferingWorker]:
    """BufferingWorker with these limits, for gunicorn.conf.py's `worker_class`."""
    limits = {
        "head_timeout": head_timeout,
        "body_timeout": body_timeout,
        "max_buffered_body": max_buffered_body,
        "max_buffered_bytes": max_buffered_bytes,
    }
    return type("BufferingWorker", (BufferingWorker,), limits)
