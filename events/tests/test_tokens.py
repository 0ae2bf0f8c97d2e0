"""The token format (events/tokens.py): `cnv_` + 32 base62 + a 6-character base62 CRC32 of the random part.

A mistyped token must be refused by its checksum alone, before authentication asks the database anything.
"""

import hashlib
import re
import zlib

import pytest

from events import errors, tokens
from events.authentication import authenticate_token
from events.errors import ApiError

BASE62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
# The pattern documented for secret scanners, written out here rather than imported.
DOCUMENTED_PATTERN = re.compile(r"cnv_[0-9A-Za-z]{38}")
# Replacements for one character: other base62 characters of each class, and characters outside base62.
REPLACEMENTS = ["0", "9", "A", "Z", "a", "z", "_", "-", " ", "é"]


def crc32_base62(text: str) -> str:
    """An independent implementation of the checksum, so the test pins the format rather than the code."""
    number = zlib.crc32(text.encode("ascii"))
    digits = ""
    for _ in range(6):
        number, rest = divmod(number, 62)
        digits = BASE62[rest] + digits
    return digits


@pytest.fixture
def stored_plaintext(acme_token) -> str:
    """A real token, stored: a changed copy must be refused even though the original would be accepted."""
    return acme_token[1]


def test_generated_tokens_follow_the_documented_format():
    for _ in range(200):
        token = tokens.generate()
        assert DOCUMENTED_PATTERN.fullmatch(token)
        assert len(token) == tokens.TOKEN_LENGTH == 42
        random_part, checksum = token[4:36], token[36:]
        assert checksum == crc32_base62(random_part)
        assert tokens.is_well_formed(token)


def test_generated_tokens_are_all_different():
    assert len({tokens.generate() for _ in range(1000)}) == 1000


def test_the_digest_is_the_sha256_of_the_whole_token():
    token = tokens.generate()
    assert tokens.digest(token) == hashlib.sha256(token.encode()).hexdigest()


def test_the_hint_shows_the_prefix_and_only_the_last_four_characters():
    token = tokens.generate()
    assert tokens.hint(token) == f"cnv_…{token[-4:]}"
    assert token[4:-4] not in tokens.hint(token)


@pytest.mark.parametrize("replacement", REPLACEMENTS, ids=lambda replacement: f"with-{replacement!r}")
def test_every_one_character_change_is_refused_without_a_query(
    stored_plaintext, replacement, django_assert_num_queries
):
    assert tokens.is_well_formed(stored_plaintext)
    for position in range(len(stored_plaintext)):
        if stored_plaintext[position] == replacement:
            continue
        changed = stored_plaintext[:position] + replacement + stored_plaintext[position + 1 :]

        assert not tokens.is_well_formed(changed), f"accepted with position {position} changed: {changed}"
        with django_assert_num_queries(0), pytest.raises(ApiError) as refused:
            authenticate_token(changed)
        assert refused.value.status_code == 401
        assert refused.value.code == errors.MALFORMED_TOKEN[0]


def test_every_deleted_character_is_refused():
    token = tokens.generate()
    for position in range(len(token)):
        assert not tokens.is_well_formed(token[:position] + token[position + 1 :]), position


@pytest.mark.parametrize(
    "mangle",
    [
        pytest.param(lambda token: token.upper(), id="upper-cased"),
        pytest.param(lambda token: token.lower(), id="lower-cased"),
        pytest.param(lambda token: token[:-1], id="truncated"),
        pytest.param(lambda token: token + "a", id="extra-character"),
        pytest.param(lambda token: token + "\n", id="trailing-newline"),
        pytest.param(lambda token: " " + token, id="leading-space"),
        pytest.param(lambda token: token[4:], id="no-prefix"),
        pytest.param(lambda token: "ghp_" + token[4:], id="other-prefix"),
        pytest.param(lambda token: token[:4] + token[5:36] + token[4] + token[36:], id="random-part-rotated"),
        pytest.param(lambda token: token[:36] + token[-1] + token[36:-1], id="checksum-rotated"),
        pytest.param(lambda token: token.replace("c", "\N{CYRILLIC SMALL LETTER ES}", 1), id="cyrillic-lookalike"),
        pytest.param(lambda token: token[:20] + "\x00" + token[21:], id="nul-inside"),
    ],
)
def test_mangled_copies_are_refused_without_a_query(stored_plaintext, mangle, django_assert_num_queries):
    mangled = mangle(stored_plaintext)
    assert mangled != stored_plaintext
    assert not tokens.is_well_formed(mangled)
    with django_assert_num_queries(0), pytest.raises(ApiError) as refused:
        authenticate_token(mangled)
    assert refused.value.status_code == 401


def test_the_unchanged_token_is_accepted(stored_plaintext, acme):
    assert authenticate_token(stored_plaintext).team_id == acme.pk
