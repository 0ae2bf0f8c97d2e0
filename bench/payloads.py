"""What every phase sends or copies: one event, as a /v1/event body, as a /v1/batch item, and as the rows
B0-copy writes in COPY's text and binary formats. MESSAGE_ID is cut out and replaced by a unique id per event."""

import struct
from datetime import UTC, datetime, timedelta

import orjson

MESSAGE_ID = "@@MESSAGE_ID@@"
EVENT_NAME = "Purchased an Item"
USER_ID = "user-4821"
PROPERTIES = {
    "revenue": 39.95,
    "currency": "USD",
    "sku": "SKU-48213",
    "name": "The Pragmatic Programmer",
    "category": "Books",
    "quantity": 2,
    "coupon": "WINTER10",
    "cart_id": "cart-7d2f9a41",
    "checkout_step": 3,
}
# The columns events.ingest.storage writes; every other column of events_event is nullable.
COPY_COLUMNS = (
    "team_id, token_id, type, event, properties, timestamp, original_timestamp, sent_at, received_at, "
    "message_id, user_id, anonymous_id, context"
)


def event_template(timestamp: str) -> tuple[str, str]:
    """A /v1/event body (Canvas v1 event), as the text before and after its messageId."""
    return _around_message_id(timestamp, version=1, type="event", event=EVENT_NAME)


def batch_item_template(timestamp: str) -> tuple[str, str]:
    """One /v1/batch item (Segment track call), as the text before and after its messageId."""
    return _around_message_id(timestamp, type="track", event=EVENT_NAME, userId=USER_ID)


def _around_message_id(timestamp: str, **fields) -> tuple[str, str]:
    document = {**fields, "properties": PROPERTIES, "timestamp": timestamp, "messageId": MESSAGE_ID}
    prefix, suffix = orjson.dumps(document).decode().split(MESSAGE_ID)
    return prefix, suffix


def text_copy_rows(team_id: int, token_id: int, timestamp: str):
    """COPY's text format for a batch of B2's rows, given their messageIds."""
    received_at = datetime.now(UTC).isoformat()
    properties = orjson.dumps(PROPERTIES).decode()
    if any(character in properties for character in "\\\t\n"):
        raise RuntimeError("PROPERTIES must need no escaping in COPY's text format")
    prefix = (
        f"{team_id}\t{token_id}\ttrack\t{EVENT_NAME}\t{properties}\t{timestamp}\t{timestamp}\t\\N\t{received_at}\t"
    ).encode()
    suffix = f"\t{USER_ID}\t\\N\t\\N\n".encode()
    return lambda message_ids: b"".join(prefix + message_id + suffix for message_id in message_ids)


def binary_copy_rows(team_id: int, token_id: int, timestamp: str):
    """COPY's binary format for a batch of B2's rows, given their messageIds (PostgreSQL's documented layout: a
    field count per row, then each field as its length and bytes, -1 for NULL)."""

    def integer(value: int) -> bytes:
        return struct.pack(">iq", 8, value)

    def text(value: str, *, jsonb: bool = False) -> bytes:
        data = (b"\x01" if jsonb else b"") + value.encode()  # jsonb: a version byte, then the text
        return struct.pack(">i", len(data)) + data

    def moment(value: datetime) -> bytes:  # microseconds since 2000-01-01 UTC
        return integer((value - datetime(2000, 1, 1, tzinfo=UTC)) // timedelta(microseconds=1))

    null = struct.pack(">i", -1)
    happened = moment(datetime.fromisoformat(timestamp))
    prefix = struct.pack(">h", 13) + integer(team_id) + integer(token_id) + text("track") + text(EVENT_NAME)
    prefix += text(orjson.dumps(PROPERTIES).decode(), jsonb=True) + happened + happened + null
    prefix += moment(datetime.now(UTC))
    suffix = text(USER_ID) + null + null
    signature, trailer = b"PGCOPY\n\xff\r\n\x00" + struct.pack(">ii", 0, 0), struct.pack(">h", -1)

    def rows(message_ids: list[bytes]) -> bytes:
        body = b"".join(prefix + struct.pack(">i", len(m)) + m + suffix for m in message_ids)
        return signature + body + trailer

    return rows
