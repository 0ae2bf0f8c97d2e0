"""Writes to Events API access (events/tokens/services.py): secret, the team switch, and the audit trail they leave."""

import pytest
from django.contrib.sessions.models import Session
from django.db import connection

from accounts.models import Team
from events.models import ApiToken, AuditAction, AuditEntry
from events.tokens import secret, services

IP = "203.0.113.7"


def audit_rows(team: Team) -> list[tuple]:
    return list(
        AuditEntry.objects.filter(team=team)
        .order_by("id")
        .values_list("action", "actor__email", "token_hint", "ip_address")
    )


def test_creating_a_token_stores_its_digest_and_hint_and_audits_it(acme, alice):
    token, plaintext = services.api_token_create(team=acme, created_by=alice, name="  Production stream  ", ip=IP)

    token.refresh_from_db()
    assert token.team == acme
    assert token.name == "Production stream"
    assert token.digest == secret.digest(plaintext)
    assert token.hint == secret.hint(plaintext)
    assert token.created_by == alice
    assert token.last_used_at is None
    assert not token.is_revoked
    assert audit_rows(acme) == [(AuditAction.TOKEN_CREATED, "alice@acme.test", token.hint, IP)]


def test_revoking_a_token_records_who_when_and_from_where(acme, alice):
    token, _ = services.api_token_create(team=acme, created_by=alice, name="Old stream")

    assert services.api_token_revoke(token=token, by=alice, ip=IP) is True

    token.refresh_from_db()
    assert token.is_revoked
    assert token.revoked_by == alice
    assert audit_rows(acme)[-1] == (AuditAction.TOKEN_REVOKED, "alice@acme.test", token.hint, IP)


def test_revoking_twice_records_one_revocation(acme, alice, bob):
    token, _ = services.api_token_create(team=acme, created_by=alice, name="Old stream")
    services.api_token_revoke(token=token, by=alice, ip=IP)
    first_revoked_at = ApiToken.objects.get(pk=token.pk).revoked_at

    # A second Owner working from a copy loaded before the first revocation.
    stale_copy = ApiToken.objects.get(pk=token.pk)
    stale_copy.revoked_at = None
    assert services.api_token_revoke(token=stale_copy, by=bob, ip="198.51.100.1") is False

    token.refresh_from_db()
    assert token.revoked_at == first_revoked_at
    assert token.revoked_by == alice
    assert AuditEntry.objects.filter(team=acme, action=AuditAction.TOKEN_REVOKED).count() == 1


@pytest.mark.parametrize(
    "enabled, action",
    [
        pytest.param(False, AuditAction.API_DISABLED, id="disable"),
        pytest.param(True, AuditAction.API_ENABLED, id="enable"),
    ],
)
def test_switching_the_api_records_who_and_from_where(db, alice, enabled, action):
    team = Team.objects.create(name="Initech", slug="initech", events_api_enabled=not enabled)

    assert services.events_api_set_enabled(team=team, enabled=enabled, by=alice, ip=IP) is True

    team.refresh_from_db()
    assert team.events_api_enabled is enabled
    assert team.events_api_changed_by == alice
    assert team.events_api_changed_at is not None
    assert audit_rows(team) == [(action, "alice@acme.test", "", IP)]


def test_switching_to_the_current_state_records_nothing(acme, alice):
    assert services.events_api_set_enabled(team=acme, enabled=True, by=alice, ip=IP) is False
    assert audit_rows(acme) == []


def test_disabling_the_api_keeps_the_tokens_unrevoked(acme, alice):
    token, _ = services.api_token_create(team=acme, created_by=alice, name="Production stream")

    services.events_api_set_enabled(team=acme, enabled=False, by=None)

    token.refresh_from_db()
    assert token.revoked_at is None
    assert list(ApiToken.objects.for_team(acme).live()) == [token]
    assert audit_rows(acme)[-1] == (AuditAction.API_DISABLED, None, "", None)


def database_text() -> str:
    """Every row of every table, as PostgreSQL prints it: whatever is stored, in any column, shows up here."""
    dump: list[str] = []
    with connection.cursor() as cursor:
        for table in connection.introspection.table_names(cursor):
            cursor.execute(f"SELECT row_to_json(t)::text FROM {connection.ops.quote_name(table)} AS t")  # noqa: S608
            dump.extend(row for (row,) in cursor.fetchall())
    return "\n".join(dump)


def test_the_plaintext_is_nowhere_in_the_database_or_the_session(alice_client, acme):
    settings_page = alice_client.get("/settings/events-api/")
    form_id = settings_page.context["token_form"].initial["form_id"]
    response = alice_client.post("/settings/tokens/", {"name": "Production stream", "form_id": form_id})
    token = ApiToken.objects.get(team=acme)
    plaintext = response.context["plaintext"]
    random_part = plaintext[len(secret.PREFIX) : len(secret.PREFIX) + secret.RANDOM_LENGTH]
    assert plaintext in response.content.decode()

    dump = database_text()
    # The dump does see the token's row, so an absent plaintext means it really is not stored.
    assert token.digest in dump
    assert "Production stream" in dump
    assert plaintext not in dump
    assert random_part not in dump
    # Session data is signed and compressed, so search it decoded too.
    sessions = [str(session.get_decoded()) for session in Session.objects.all()]
    assert sessions
    assert not any(plaintext in data or random_part in data for data in sessions)
    assert not any(random_part in morsel.value for morsel in response.cookies.values())
