"""The plaintext token is shown once and then exists nowhere: not in logs, not in later pages."""

import logging

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from events.models import ApiToken

pytestmark = pytest.mark.django_db


def test_the_plaintext_token_never_reaches_a_log_line(alice_client, client, caplog):
    caplog.set_level(logging.DEBUG)
    with CaptureQueriesContext(connection) as queries:
        page = alice_client.get("/settings/").content.decode()
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
    assert secret_part not in alice_client.get("/settings/").content.decode()
