"""The plaintext token is shown once and then exists nowhere: not in logs, not in later pages."""

import base64
import gzip
import logging
from collections.abc import Iterator

import orjson
import pytest
import requests
from django.conf import settings
from django.core.management import call_command
from django.db import connection
from django.db.migrations.executor import MigrationExecutor
from django.test.utils import CaptureQueriesContext

from chaos.processes import Gunicorn, app_environment, database_url, wait_until
from events.ingest import rejections
from events.ingest.tests.test_hostile_http import exchange, request_head
from events.models import ApiToken, Event, RejectedEvent
from events.tokens import secret

pytestmark = pytest.mark.django_db


def test_the_plaintext_token_never_reaches_a_log_line(alice_client, client, caplog):
    caplog.set_level(logging.DEBUG)
    with CaptureQueriesContext(connection) as queries:
        page = alice_client.get("/settings/events-api/").content.decode()
        form_id = page.split('name="form_id" value="', 1)[1].split('"', 1)[0]
        created = alice_client.post("/settings/tokens/", {"name": "Logged?", "form_id": form_id})
        plaintext = created.content.decode().split('data-testid="new-token"', 1)[0].rsplit('value="', 1)[1]
        plaintext = plaintext.split('"', 1)[0]
        assert plaintext.startswith("cnv_")
        headers = {"X-Auth-Token": plaintext}
        client.post("/v1/event", b'{"version": 1, "type": "event", "event": "e"}', "application/json", headers=headers)
        client.post("/v1/event", b"{bad json", "application/json", headers=headers)
        client.post("/v1/event", b"{}", "application/json", headers={"X-Auth-Token": plaintext[:-1] + "x"})
        token = ApiToken.objects.get()
        alice_client.post(f"/settings/tokens/{token.pk}/revoke/")
        client.post("/v1/event", b"{}", "application/json", headers=headers)

    secret_part = plaintext[4:-6]
    assert caplog.records, "the flow logged nothing at all; the check would prove nothing"
    assert secret_part not in caplog.text
    assert all(secret_part not in str(query["sql"]) for query in queries.captured_queries)
    assert secret_part not in alice_client.get("/settings/events-api/").content.decode()


# --- Against the production server: tokens sent where they do not belong --------------------------------------
#
# gunicorn -c gunicorn.conf.py on the test database, logging all it can: the access log, and DEBUG from Django and
# gunicorn. Whatever a client does with a token (its own, or another team's), no table and no log line may then
# hold a string that passes the token checksum.


@pytest.fixture(scope="module")
def logged_server(django_db_setup, tmp_path_factory) -> Iterator[Gunicorn]:
    db = connection.settings_dict
    url = database_url(user=db["USER"], password=db["PASSWORD"], host=db["HOST"], port=db["PORT"], name=db["NAME"])
    env = app_environment(database_url=url, redis_url=settings.REDIS_URL, workers=1, threads=4)
    env.update(GUNICORN_ACCESSLOG="-", LOG_LEVEL="DEBUG", GUNICORN_LOGLEVEL="debug", LOG_FORMAT="json")
    server = Gunicorn(env, log=tmp_path_factory.mktemp("token-secrecy") / "gunicorn.log")
    server.start()
    yield server
    server.stop()


def _basic(token: str) -> str:
    """What Segment's libraries send: the token as the Basic auth user, no password."""
    return "Basic " + base64.b64encode(f"{token}:".encode()).decode()


def _log_of(server: Gunicorn, *, after: int, expect: str) -> str:
    """The server's log written since offset `after`, once a line holding `expect` is in it."""
    wait_until(lambda: expect in server.log.read_text(errors="replace")[after:], timeout=10, what="the log lines")
    return server.log.read_text(errors="replace")[after:]


@pytest.mark.live
@pytest.mark.django_db(transaction=True)
def test_a_token_in_a_refused_requests_url_reaches_no_log_line(logged_server, acme_token, find_tokens):
    _, plaintext = acme_token
    url = logged_server.url
    start = logged_server.log.stat().st_size
    json_headers = {"Content-Type": "application/json"}

    answers = [
        requests.post(f"{url}/v1/event?token={plaintext}", data=b"{}", headers=json_headers),
        requests.post(
            f"{url}/v1/event?writeKey={plaintext}&dry_run=1",
            data=b"{bad json",
            headers={**json_headers, "X-Auth-Token": plaintext},
        ),
        requests.post(
            f"{url}/v1/batch?token={plaintext}",
            data=b'{"batch": 1}',
            headers={**json_headers, "Authorization": _basic(plaintext)},
        ),
        requests.get(f"{url}/v1/event?token={plaintext}"),
        requests.get(f"{url}/no-such-page?token={plaintext}", headers={"Referer": f"{url}/?token={plaintext}"}),
        requests.get(f"{url}/settings/?token={plaintext}", allow_redirects=False),
    ]

    assert [answer.status_code for answer in answers] == [401, 400, 400, 401, 404, 302]
    log = _log_of(logged_server, after=start, expect="/settings/?token=")
    assert find_tokens(log) == []
    assert log.count(f"{secret.hint(plaintext)}") >= len(answers), "the requests' lines are not in the log"
    assert '"logger": "django.request"' in log  # Django's own lines about the refusals, not only gunicorn's


def _hostile_requests(own: str, other: str) -> list[tuple[str, str, dict, bytes]]:
    """(method, path, headers, body): Acme's token `own`, and Globex's `other`, everywhere a client might put them."""
    json_type = {"Content-Type": "application/json"}
    auth = {**json_type, "X-Auth-Token": own}
    segment = {**json_type, "Authorization": _basic(own)}

    def event(**fields) -> bytes:
        return orjson.dumps({"version": 1, "type": "event", "event": "hostile", **fields})

    escaped = own.encode().replace(b"_", b"\\u005f").replace(b"c", b"\\u0063")  # JSON escapes spell it too
    padding = "x" * (rejections.PAYLOAD_LIMIT - 40)  # puts the token across the 4 KB cut of a refused payload
    return [
        ("POST", "/v1/event", auth, event(properties={"apiKey": own, "theirs": other})),
        ("POST", "/v1/event", auth, event(properties={"a": {"b": [{"c": [own]}], own: {"writeKey": "sk-live-1234"}}})),
        ("POST", "/v1/event", auth, event(properties={"escaped": "<own>"}).replace(b"<own>", escaped)),
        ("POST", "/v1/event", auth, event(event="x" * 300, properties={"escaped": "<own>"}).replace(b"<own>", escaped)),
        ("POST", "/v1/event", auth, event(event=own, properties={"text": f"token={own};other={other}"})),
        ("POST", "/v1/event", auth, event(event=own + "x" * 300)),
        ("POST", "/v1/event", auth, event(**{own: 1})),
        ("POST", "/v1/event", auth, event(properties={"pasted": f"cnv_{'A' * 35}{own}"})),  # after a cut copy
        ("POST", "/v1/event", auth, orjson.dumps({"writeKey": own, "event": 1}).decode().encode("utf-16")),
        ("POST", "/v1/event", auth, b'{"' + own.encode() + b'": 1, "' + own.encode() + b'": 2}'),
        ("POST", "/v1/event", auth, b'{"writeKey": "' + own.encode() + b'", "event": '),
        ("POST", "/v1/event", auth, b'{"pad": "' + padding.encode() + b'", "t": "' + own.encode() + b'", oops}'),
        (
            "POST",
            "/v1/batch",
            segment,
            orjson.dumps(
                {"writeKey": own, "batch": [{"type": "track", "userId": own, "event": other, "messageId": own}]}
            ),
        ),
        (
            "POST",
            "/v1/batch",
            segment,
            orjson.dumps(
                {
                    "writeKey": own,
                    "batch": [
                        {"type": "track", "userId": "u", "event": "e", "properties": {"k": own}},
                        {"type": "track"},
                    ],
                }
            ),
        ),
        ("POST", "/v1/batch", segment, orjson.dumps({"writeKey": own, "batch": "not a list"})),
        ("POST", "/v1/batch", segment, orjson.dumps({"writeKey": "sk-live-1234", "batch": 5})),
        (
            "POST",
            "/v1/batch",
            {**segment, "Content-Encoding": "gzip"},
            gzip.compress(orjson.dumps({"writeKey": own, "batch": [{"type": "track", "event": own}]})),
        ),
        (
            "POST",
            "/v1/track",
            segment,
            orjson.dumps({"writeKey": own, "userId": "u", "event": own, "properties": {own: own}}),
        ),
        ("POST", "/v1/track", segment, orjson.dumps({"writeKey": own, "event": "no identity"})),
        ("POST", f"/v1/event?token={own}", json_type, event()),
        ("POST", "/v1/event?token=" + own.replace("_", "%5F"), auth, b"{}"),
        ("POST", "/v1/event?token=" + own.replace("_", "%255F"), auth, b"{}"),  # encoded twice by mistake
        ("POST", f"/v1/event?writeKey={own}&token={other}", auth, event()),
        ("POST", f"/v1/event?dry_run=1&token={own}", auth, event(event=own, properties={own: other})),
        (
            "POST",
            f"/v1/batch?dry_run=1&writeKey={own}",
            segment,
            orjson.dumps({"writeKey": own, "batch": [{"type": "track", "userId": "u", "event": own}, {"event": own}]}),
        ),
        (
            "POST",
            "/v1/event",
            {**auth, "X-Request-ID": own, "User-Agent": own, "Referer": f"https://app.example/?t={own}"},
            event(event="with headers"),
        ),
        ("POST", "/v1/event", {**json_type, "X-Auth-Token": other}, event(event="x" * 300, properties={"stolen": own})),
        ("POST", "/v1/event", {**json_type, "X-Auth-Token": own[:-1] + "0"}, event(properties={"key": own})),
        ("POST", "/v1/event", {**auth, "Host": own}, event()),
        ("GET", f"/v1/docs?token={own}", {"Referer": own}, b""),
        (
            "POST",
            f"/login/?next=/settings/%3Ftoken%3D{own}",
            {"Content-Type": "application/x-www-form-urlencoded"},
            f"username={own}&password={own}".encode(),
        ),
    ]


def _malformed_requests(own: str) -> list[bytes]:
    """Requests gunicorn itself refuses, and logs with what it could not parse."""
    token = own.encode()
    return [
        b"GET /v1/event?token=" + token + b" HTTP/1.1 junk\r\nHost: 127.0.0.1\r\n\r\n",
        b"GET /v1/event?token=" + token + b" HTTP/9.9\r\nHost: 127.0.0.1\r\n\r\n",
        b"G\x00T /?token=" + token + b" HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n",
        request_head(b"X-Note: " + token + b"\x00", token=own, length=2) + b"{}",
        request_head(b"X-Note: a\nX-Auth-Token: " + token, token=own, length=2) + b"{}",
    ]


def _every_row_as_text() -> dict[str, str]:
    """Every relation of the database (tables, views, the system catalogs), each row as text: {name: rows}."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT n.nspname, c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
            "WHERE c.relkind IN ('r', 'p', 'v', 'm') AND n.nspname NOT IN ('information_schema', 'pg_toast') "
            "ORDER BY 1, 2"
        )
        relations = cursor.fetchall()
    dumps = {}
    for schema, name in relations:
        quoted = f"{connection.ops.quote_name(schema)}.{connection.ops.quote_name(name)}"
        with connection.cursor() as cursor:
            cursor.execute(f"SELECT t::text FROM {quoted} AS t")  # noqa: S608 - names from the catalog, quoted
            dumps[f"{schema}.{name}"] = "\n".join(row[0] for row in cursor.fetchall())
    return dumps


@pytest.mark.live
@pytest.mark.django_db(transaction=True)
def test_no_table_and_no_log_line_holds_a_token_after_hostile_requests(
    logged_server, acme_token, globex_token, find_tokens
):
    _, own = acme_token
    _, other = globex_token
    start = logged_server.log.stat().st_size

    answers = [
        requests.request(method, logged_server.url + path, headers=headers, data=body, allow_redirects=False)
        for method, path, headers, body in _hostile_requests(own, other)
    ]
    refused_by_gunicorn = [exchange(logged_server, request).status for request in _malformed_requests(own)]
    call_command("sync_warehouse")

    tables = _every_row_as_text()
    log = _log_of(logged_server, after=start, expect="/login/?next=")
    assert {name: find_tokens(rows) for name, rows in tables.items() if find_tokens(rows)} == {}
    assert find_tokens(log) == []
    receipts = [answer.text for answer in answers if answer.headers.get("Content-Type") == "application/json"]
    assert find_tokens("\n".join(receipts)) == []  # receipts, error messages and dry-run echoes
    # The sweep saw what it was meant to: answers to every request, stored events and refusals, the tables.
    assert all(answer.status_code < 500 for answer in answers), [answer.status_code for answer in answers]
    assert refused_by_gunicorn == [400] * len(refused_by_gunicorn)
    assert len(receipts) >= 20
    assert Event.objects.filter(event=secret.hint(own)).exists()
    assert RejectedEvent.objects.count() >= 10
    assert tables["public.events_event"] and tables["public.events_rejectedevent"]
    everything = "\n".join([*tables.values(), log])
    assert "sk-live-1234" not in everything  # a writeKey that is no Canvas token is hidden all the same
    assert (
        own[4:36] not in everything and other[4:36] not in everything
    )  # nor a random part (a token cut in its checksum)


@pytest.mark.django_db(transaction=True)
def test_refused_events_stored_before_the_release_lose_their_tokens_when_it_migrates(acme, find_tokens):
    before = [("events", "0008_revoke_public_write_privileges")]
    executor = MigrationExecutor(connection)
    executor.migrate(before)
    token = secret.generate()
    old_payload = ('{"pad": "' + "x" * 4050 + '", "writeKey": "' + token + '"}')[:4096]  # cut inside the token
    RejectedEvent = executor.loader.project_state(before).apps.get_model("events", "RejectedEvent")
    RejectedEvent.objects.create(
        team_id=acme.pk,
        endpoint="/v1/batch",
        status=400,
        payload=f'{{"writeKey": "{token}", "batch": 1}}',
        errors=[{"path": f"/{token}", "message": f'Unknown field "{token}".'}],
    )
    RejectedEvent.objects.create(team_id=acme.pk, endpoint="/v1/event", status=400, payload=old_payload, errors=[])

    executor = MigrationExecutor(connection)
    executor.migrate(executor.loader.graph.leaf_nodes())  # 0009_hide_tokens_in_refused_events, and any later

    stored = str(list(RejectedEvent.objects.values_list("payload", "errors")))
    assert find_tokens(stored) == []
    assert token[4:30] not in stored
    assert secret.hint(token) in stored


@pytest.mark.parametrize("encoding", ["utf-16", "utf-16-le", "utf-32"])
def test_a_refused_body_in_another_unicode_encoding_keeps_no_token(client, acme_token, find_tokens, encoding):
    """A client that writes its JSON as UTF-16 (.NET's Encoding.Unicode, PowerShell) is refused, and its body kept."""
    _, own = acme_token
    body = orjson.dumps({"writeKey": own, "event": "x", "properties": {"k": own}}).decode().encode(encoding)

    answer = client.post("/v1/event", body, content_type="application/json", headers={"X-Auth-Token": own})

    assert answer.status_code == 400
    payload = RejectedEvent.objects.get().payload
    assert find_tokens(payload.replace("\ufffd", "").replace("\x00", "")) == [], payload
    assert secret.hint(own) in payload
