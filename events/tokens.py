"""The Events API token format: `cnv_` + 32 random base62 characters + a 6-character base62 CRC32 checksum.

The prefix lets secret scanners recognise a leaked token; the checksum lets us refuse a mistyped or truncated
token before any database query (GitHub's token format works the same way). Only the SHA-256 digest is
stored: the secret has 190 bits of entropy, so a fast unsalted hash is safe and keeps the hot path cheap,
where a password hasher would cost milliseconds per request.
"""

import hashlib
import re
import secrets
import zlib

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
