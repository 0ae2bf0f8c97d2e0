"""The Events API token format: `cnv_` + 32 random base62 characters + a 6-character base62 CRC32 checksum.

The prefix lets secret scanners recognise a leaked token; the checksum lets us refuse a mistyped or truncated
token before any database query (GitHub's token format works the same way). Only the SHA-256 digest is
stored: the secret has 190 bits of entropy, so a fast unsalted hash is safe and keeps the hot path cheap,
where a password hasher would cost milliseconds per request.

The second half keeps tokens out of what Canvas stores and logs (`scrub`, `scrub_document`). The rule a
newcomer must know: anything written from a request (a refused payload, an event, a log line) goes through
them first, so that whoever reads it sees a hint, never a working token.
"""

import base64
import hashlib
import re
import secrets
import zlib

import orjson

PREFIX = "cnv_"
RANDOM_LENGTH = 32
CHECKSUM_LENGTH = 6
BASE62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
TOKEN_PATTERN = re.compile(rf"{PREFIX}[0-9A-Za-z]{{{RANDOM_LENGTH + CHECKSUM_LENGTH}}}")
TOKEN_LENGTH = len(PREFIX) + RANDOM_LENGTH + CHECKSUM_LENGTH


def _base62(number: int, width: int) -> str:
    digits = []
    while number:
        number, rest = divmod(number, 62)
        digits.append(BASE62[rest])
    return "".join(reversed(digits)).rjust(width, "0")


def _checksum(random_part: str) -> str:
    return _base62(zlib.crc32(random_part.encode("ascii")), CHECKSUM_LENGTH)


def generate() -> str:
    random_part = "".join(secrets.choice(BASE62) for _ in range(RANDOM_LENGTH))
    return PREFIX + random_part + _checksum(random_part)


def is_well_formed(token: str) -> bool:
    """Prefix, length, alphabet and checksum are right. Costs no query."""
    # fullmatch, not match with `$`: `$` also matches before a trailing newline.
    if not TOKEN_PATTERN.fullmatch(token):
        return False
    random_part = token[len(PREFIX) : len(PREFIX) + RANDOM_LENGTH]
    return secrets.compare_digest(_checksum(random_part), token[-CHECKSUM_LENGTH:])


def digest(token: str) -> str:
    return hashlib.sha256(token.encode("ascii")).hexdigest()


def hint(token: str) -> str:
    """What a person sees to tell tokens apart: `cnv_…wXyZ`. Reveals 4 of 38 random characters."""
    return f"{PREFIX}…{token[-4:]}"


# --- Keeping tokens out of what is stored and logged -------------------------------------------------------------
#
# A client may send its token where it does not belong: Segment's libraries put it in every batch as `writeKey`,
# some clients in the URL (`?token=`, `?writeKey=`), in a property or an event name. Whatever Canvas keeps or logs
# of a request (refused payloads, events, log lines) shows the token's hint in its place, so that nobody who reads
# them (a Member, staff, whoever reads the logs) obtains a working token.

# A JSON escape of a letter, digit or underscore: JSON never needs one, so it only hides a token or writeKey.
_NEEDLESS_ESCAPE = re.compile(r"\\u00(?:3[0-9]|4[1-9A-Fa-f]|5[0-9Aa]|5[Ff]|6[1-9A-Fa-f]|7[0-9Aa])")
# A token, plain or in a URL whose client percent-encoded its underscore (once, or twice by mistake). A lookahead,
# so that a candidate with a wrong checksum consumes nothing: `cnv_` + 35 characters + a token would otherwise
# hide the token's `cnv`.
_TOKEN_CANDIDATE = re.compile(
    rf"(?=cnv(?:_|%5[Ff]|%255[Ff])(?P<rest>[0-9A-Za-z]{{{RANDOM_LENGTH + CHECKSUM_LENGTH}}}))"
)
WRITE_KEY = "writeKey"
# A writeKey's value in JSON text (also one cut short by the end of the text), a Python repr or a query string.
_WRITE_KEY_VALUE = re.compile(
    r"""(?P<name>["']?writeKey["']?\s*:\s*)(?P<quote>["'])(?P<quoted>(?:\\.|(?!(?P=quote))[^\\])*)"""
    r"|(?P<parameter>writeKey=)(?P<bare>[^&#\s\"']*)"
)
# HTTP Basic credentials (Segment's libraries send the token as the username) should a header ever be written.
_BASIC_CREDENTIALS = re.compile(r"(?i)(?P<scheme>\bbasic\s+)(?P<credentials>[A-Za-z0-9+/]{4,}={0,2})")
_HIDDEN = f"{PREFIX}…"
# A writeKey value this short is hidden whole: its last four characters would be most of it.
_SHORTEST_HINTED = 16


def _hidden(secret: str) -> str:
    """What stands in for a secret: its hint, or the bare prefix for a short one. A hint stays as it is."""
    if secret.startswith(_HIDDEN):
        return secret
    return hint(secret) if len(secret) >= _SHORTEST_HINTED else _HIDDEN


def _hide_tokens(text: str) -> str:
    """Every token in `text`, plain or percent-encoded, replaced by its hint; candidates may overlap."""
    pieces, shown_up_to = [], 0
    for match in _TOKEN_CANDIDATE.finditer(text):
        token = PREFIX + match["rest"]
        if is_well_formed(token):
            pieces.append(text[shown_up_to : match.start()])
            pieces.append(hint(token))
            shown_up_to = match.end("rest")
    return "".join(pieces) + text[shown_up_to:] if pieces else text


def _hide_basic_credentials(match: re.Match) -> str:
    """Only what decodes as `user:password` (printable ASCII): "basic" followed by a word is left alone."""
    try:
        decoded = base64.b64decode(match["credentials"], validate=True).decode("ascii")
    except (ValueError, UnicodeDecodeError):
        return match[0]
    return match["scheme"] + _HIDDEN if ":" in decoded and decoded.isprintable() else match[0]


def _hide_write_key(match: re.Match) -> str:
    if match["parameter"] is not None:
        return match["parameter"] + _hidden(match["bare"]) if match["bare"] else match[0]
    return match["name"] + match["quote"] + _hidden(match["quoted"])


def scrub(text: str) -> str:
    """`text` with every token in it (wherever it appears) and every writeKey value replaced by its hint,
    `cnv_…wXyZ`, and HTTP Basic credentials by `cnv_…`. For anything stored or logged: refused payloads (whole or
    cut short), error messages, log lines. JSON escapes of letters, digits and `_` are written out first."""
    if "\\u" in text:
        text = _NEEDLESS_ESCAPE.sub(lambda match: chr(int(match[0][2:], 16)), text)
    if "asic" in text or "ASIC" in text:
        text = _BASIC_CREDENTIALS.sub(_hide_basic_credentials, text)
    if WRITE_KEY in text:
        text = _WRITE_KEY_VALUE.sub(_hide_write_key, text)
    if PREFIX in text or "cnv%" in text:
        text = _hide_tokens(text)
    return text


def scrub_document(document, raw: bytes):
    """The document parsed from `raw` with every token in its strings and keys, and every writeKey value, replaced
    by its hint (in place where it can be). The writeKey at the top, which Segment's libraries put in every batch,
    is replaced at once; the document is walked only when `raw` spells the token prefix or writeKey more often than
    that writeKey accounts for. Neither can be spelled outside a string, nor inside one but by a \\u escape."""
    prefixes, write_keys = raw.count(b"cnv_"), raw.count(b"writeKey")
    escaped = b"\\" in raw and b"\\u" in raw
    if not (prefixes or write_keys or escaped):
        return document  # most bodies
    write_key = document.get(WRITE_KEY) if type(document) is dict else None
    if type(write_key) is str:
        document[WRITE_KEY] = _hidden(write_key)
    if escaped:  # count again in the decoded text (orjson escapes no letter), where the writeKey is its hint now
        try:
            text = orjson.dumps(document)
        except TypeError:  # an integer beyond 64 bits (parse_json keeps those exact): look everywhere
            return _scrubbed(document)
        prefixes, write_keys = text.count(b"cnv_") - (type(write_key) is str), text.count(b"writeKey")
    else:
        prefixes -= write_key.count(PREFIX) if type(write_key) is str else 0
    return _scrubbed(document) if prefixes > 0 or write_keys > (write_key is not None) else document


def _scrubbed(value):
    kind = type(value)
    if kind is str:
        return scrub(value)
    if kind is list:
        value[:] = [_scrubbed(item) for item in value]
        return value
    if kind is dict:
        return {
            _scrubbed(key): _hidden(item) if key == WRITE_KEY and type(item) is str else _scrubbed(item)
            for key, item in value.items()
        }
    return value
