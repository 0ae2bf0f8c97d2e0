"""The token format (events/tokens/secret.py): `cnv_` + 32 base62 + a 6-character base62 CRC32 of the random part.

A mistyped token must be refused by its checksum alone, before authentication asks the database anything.
"""

import base64
import hashlib
import json
import re
import zlib

import pytest

from events.ingest import errors
from events.ingest.errors import ApiError
from events.ingest.validation import parse_json
from events.tokens import secret
from events.tokens.authentication import authenticate_token

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
        token = secret.generate()
        assert DOCUMENTED_PATTERN.fullmatch(token)
        assert len(token) == secret.TOKEN_LENGTH == 42
        random_part, checksum = token[4:36], token[36:]
        assert checksum == crc32_base62(random_part)
        assert secret.is_well_formed(token)


def test_generated_tokens_are_all_different():
    assert len({secret.generate() for _ in range(1000)}) == 1000


def test_the_digest_is_the_sha256_of_the_whole_token():
    token = secret.generate()
    assert secret.digest(token) == hashlib.sha256(token.encode()).hexdigest()


def test_the_hint_shows_the_prefix_and_only_the_last_four_characters():
    token = secret.generate()
    assert secret.hint(token) == f"cnv_…{token[-4:]}"
    assert token[4:-4] not in secret.hint(token)


@pytest.mark.parametrize("replacement", REPLACEMENTS, ids=lambda replacement: f"with-{replacement!r}")
def test_every_one_character_change_is_refused_without_a_query(
    stored_plaintext, replacement, django_assert_num_queries
):
    assert secret.is_well_formed(stored_plaintext)
    for position in range(len(stored_plaintext)):
        if stored_plaintext[position] == replacement:
            continue
        changed = stored_plaintext[:position] + replacement + stored_plaintext[position + 1 :]

        assert not secret.is_well_formed(changed), f"accepted with position {position} changed: {changed}"
        with django_assert_num_queries(0), pytest.raises(ApiError) as refused:
            authenticate_token(changed)
        assert refused.value.status_code == 401
        assert refused.value.code == errors.MALFORMED_TOKEN[0]


def test_every_deleted_character_is_refused():
    token = secret.generate()
    for position in range(len(token)):
        assert not secret.is_well_formed(token[:position] + token[position + 1 :]), position


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
    assert not secret.is_well_formed(mangled)
    with django_assert_num_queries(0), pytest.raises(ApiError) as refused:
        authenticate_token(mangled)
    assert refused.value.status_code == 401


def test_the_unchanged_token_is_accepted(stored_plaintext, acme):
    assert authenticate_token(stored_plaintext).team_id == acme.pk


# --- scrub and scrub_document: what is stored or logged shows a token's hint, never the token ------------------

TOKEN = secret.generate()
HINT = secret.hint(TOKEN)


@pytest.mark.parametrize(
    "text, expected",
    [
        pytest.param(f"/v1/event?token={TOKEN}&a=1", f"/v1/event?token={HINT}&a=1", id="query-string"),
        pytest.param(f"/v1/event?writeKey={TOKEN}", f"/v1/event?writeKey={HINT}", id="writekey-parameter"),
        pytest.param("/v1/event?t=" + TOKEN.replace("_", "%5F"), f"/v1/event?t={HINT}", id="percent-encoded"),
        pytest.param("/v1/event?t=" + TOKEN.replace("_", "%255F"), f"/v1/event?t={HINT}", id="percent-encoded-twice"),
        pytest.param(
            '{"t": "' + TOKEN.replace("_", "\\u005f").replace("c", "\\u0063") + '", "\\u0077riteKey": "abc"}',
            f'{{"t": "{HINT}", "writeKey": "cnv_…"}}',
            id="json-escapes",
        ),
        pytest.param('{"t": "\\u00e9\\n\\u0000"}', None, id="escapes-json-needs"),
        pytest.param("/v1/event?writeKey=abcdefghijklmnopq#x", "/v1/event?writeKey=cnv_…nopq#x", id="any-writekey"),
        pytest.param(f'{{"writeKey": "{TOKEN}", "a": 1}}', f'{{"writeKey": "{HINT}", "a": 1}}', id="json-field"),
        pytest.param('{"writeKey":"sk-live-1234567890XY"}', '{"writeKey":"cnv_…90XY"}', id="json-not-a-token"),
        pytest.param('{"writeKey": "short"}', '{"writeKey": "cnv_…"}', id="short-shows-nothing"),
        pytest.param('{"writeKey": "a\\"bcdefghijklmnopq\\""}', '{"writeKey": "cnv_…pq\\""}', id="escaped-quote"),
        pytest.param(
            f'{{"batch": [], "writeKey": "{TOKEN[:20]}',
            '{"batch": [], "writeKey": "cnv_…' + TOKEN[16:20],
            id="cut-json",
        ),
        pytest.param(f"{{'writeKey': '{TOKEN}'}}", f"{{'writeKey': '{HINT}'}}", id="python-repr"),
        pytest.param(f"x{TOKEN}y and {TOKEN}", f"x{HINT}y and {HINT}", id="anywhere-in-text"),
        pytest.param(f"name {TOKEN}{TOKEN}", f"name {HINT}{HINT}", id="twice-in-a-row"),
        pytest.param(f"cnv_{'A' * 35}{TOKEN}", f"cnv_{'A' * 35}{HINT}", id="after-a-cut-token"),
        pytest.param(
            f"?t=cnv%5F{'A' * 35}" + TOKEN.replace("_", "%5F"),
            f"?t=cnv%5F{'A' * 35}{HINT}",
            id="encoded-after-a-cut-token",
        ),
        pytest.param(
            "Authorization: Basic " + base64.b64encode(f"{TOKEN}:".encode()).decode(),
            "Authorization: Basic cnv_…",
            id="basic-credentials",
        ),
        pytest.param("the basic requirements", "the basic requirements", id="the-word-basic"),
        pytest.param(TOKEN[:-1] + ("0" if TOKEN[-1] != "0" else "1"), None, id="bad-checksum-is-not-a-token"),
        pytest.param(f"cnv_{'a' * 32}", None, id="too-short"),
        pytest.param("nothing to hide", None, id="plain"),
        pytest.param(HINT, None, id="a-hint"),
    ],
)
def test_scrub_hides_tokens_and_write_keys_wherever_they_are(text, expected):
    scrubbed = secret.scrub(text)

    assert scrubbed == (text if expected is None else expected)
    assert secret.scrub(scrubbed) == scrubbed


def test_scrub_hides_a_token_in_a_payload_that_is_not_json_any_more():
    payload = '{"writeKey": "' + TOKEN + '", "batch": [{"event": "' + "x" * 5000

    assert TOKEN not in secret.scrub(payload)[:4096]


def test_scrub_document_hides_tokens_in_keys_and_values_at_any_depth():
    other = secret.generate()
    document = {
        "writeKey": TOKEN,
        "event": TOKEN,
        "properties": {TOKEN: [1, {"deep": f"a {other} b"}], "writeKey": "sk-live-1234567890XY", "n": 2**70},
    }

    assert secret.scrub_document(document, json.dumps(document).encode()) == {
        "writeKey": HINT,
        "event": HINT,
        "properties": {HINT: [1, {"deep": f"a {secret.hint(other)} b"}], "writeKey": "cnv_…90XY", "n": 2**70},
    }


def test_scrub_document_hides_the_write_key_of_a_segment_batch_without_walking_it():
    document = {"writeKey": TOKEN, "batch": [{"event": "Signed Up", "properties": {"plan": "pro"}}]}

    scrubbed = secret.scrub_document(document, json.dumps(document).encode())

    assert scrubbed is document
    assert scrubbed == {"writeKey": HINT, "batch": [{"event": "Signed Up", "properties": {"plan": "pro"}}]}


def test_scrub_document_leaves_what_only_looks_like_a_token_as_it_is():
    document = {"event": "cnv_ is a prefix", "properties": {"writeKey": 1, "id": "cnv_" + "a" * 38}}

    assert secret.scrub_document(document, json.dumps(document).encode()) == document


@pytest.mark.parametrize(
    "body",
    [
        pytest.param(b'{"event": "<token>"}', id="plain"),
        pytest.param(b'{"event": "<escaped>"}', id="behind-an-escape"),
        pytest.param(b'{"properties": {"<token>": 1}}', id="key"),
        pytest.param(b'{"n": 123456789012345678901234567890, "e": "<token>"}', id="with-a-big-integer"),
        pytest.param(b'{"e": "<token>", "colon": "\\u003a"}', id="slow-path"),
    ],
)
def test_parse_json_hands_on_no_token(body):
    escaped = TOKEN.replace("_", "\\u005f").encode()
    raw = body.replace(b"<token>", TOKEN.encode()).replace(b"<escaped>", escaped)

    document = parse_json(raw)

    assert TOKEN not in str(document)
    assert HINT in str(document)
