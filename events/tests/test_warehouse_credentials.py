"""events/warehouse_credentials.py: a team's read-only login reads its own views and nothing else, and cannot write.

These tests connect as the login with psycopg, so the login and its grants must be committed: the privilege
checks share one committed setup (two teams, Initech and Hooli), the other tests use transactional_db; all
drop the logins and schemas they made (roles outlive a test database).
"""

import base64
import hashlib
import hmac
import io
import re

import psycopg
import pytest
from django.core.management import CommandError, call_command
from django.db import connection
from psycopg import sql

from accounts.models import Team
from events.models import CatalogSyncState, TeamWarehouse
from events.tests.event_factories import fetch, store_event, sync
from events.warehouse_credentials import (
    CONNECTION_LIMIT,
    scram_sha256_verifier,
    warehouse_credentials_rotate,
    warehouse_role_name,
    warehouse_role_prefix,
)

pytestmark = pytest.mark.skipif(connection.vendor != "postgresql", reason="warehouse logins need PostgreSQL")

URL = re.compile(r"^postgres://(?P<role>[a-z0-9_]+):(?P<password>[A-Za-z0-9_-]{43})@[^/]+:\d+/(?P<db>\w+)$")


def _logins_and_schemas() -> tuple[set[str], set[str]]:
    roles = fetch("SELECT rolname FROM pg_roles WHERE starts_with(rolname, %s)", [warehouse_role_prefix() + "_team_"])
    schemas = fetch("SELECT nspname FROM pg_namespace WHERE starts_with(nspname, 'team_')")
    return {role for (role,) in roles}, {schema for (schema,) in schemas}


def _drop_logins_and_schemas(*, keep: tuple[set[str], set[str]]) -> None:
    """Drop the warehouse logins and schemas made since `keep` was taken."""
    roles, schemas = _logins_and_schemas()
    with connection.cursor() as cursor:
        for role in roles - keep[0]:
            cursor.execute(f'DROP OWNED BY "{role}"')
            cursor.execute(f'DROP ROLE "{role}"')
        for schema in schemas - keep[1]:
            cursor.execute(f'DROP SCHEMA "{schema}" CASCADE')


@pytest.fixture
def cleanup(transactional_db):
    before = _logins_and_schemas()
    yield
    _drop_logins_and_schemas(keep=before)


@pytest.fixture(scope="module")
def initech_url(django_db_setup, django_db_blocker) -> str:
    """The login of Initech, which has an event; Hooli, another team, has one too."""
    with django_db_blocker.unblock():
        before = _logins_and_schemas()
        initech = Team.objects.create(name="Initech", slug="initech")
        hooli = Team.objects.create(name="Hooli", slug="hooli")
        store_event(initech, "Purchased an Item", {"revenue": "39.95"})
        store_event(hooli, "Purchased an Item", {"revenue": "1000"})
        sync()
        yield warehouse_credentials_rotate(team=initech)
        _drop_logins_and_schemas(keep=before)
        Team.objects.filter(pk__in=[initech.pk, hooli.pk]).delete()
        CatalogSyncState.objects.all().delete()


@pytest.fixture
def reader(initech_url):
    with psycopg.connect(initech_url, autocommit=True) as conn:
        yield conn


@pytest.fixture
def acme_url(cleanup, acme) -> str:
    store_event(acme, "Purchased an Item", {"revenue": "39.95"})
    sync()
    return warehouse_credentials_rotate(team=acme)


def _refused(conn, statement: str) -> psycopg.Error:
    with pytest.raises(psycopg.Error) as caught:
        conn.execute(statement)
    return caught.value


def test_the_url_reads_the_teams_views_by_their_plain_names(reader):
    assert reader.execute("SELECT revenue::text FROM purchased_an_item").fetchall() == [("39.95",)]
    assert reader.execute("SELECT count(*) FROM team_initech.tracks").fetchone() == (1,)
    for view in ("identifies", "pages", "screens", "groups", "aliases"):
        assert reader.execute(sql.SQL("SELECT count(*) FROM {}").format(sql.Identifier(view))).fetchone() == (0,)


@pytest.mark.parametrize(
    "statement",
    [
        pytest.param("SELECT * FROM team_hooli.tracks", id="other-team-view"),
        pytest.param("SELECT * FROM team_hooli.purchased_an_item", id="other-team-event-view"),
        pytest.param("SELECT * FROM public.events_event", id="events-table"),
        pytest.param("SELECT * FROM public.accounts_user", id="users-table"),
        pytest.param("SELECT * FROM public.events_apitoken", id="tokens-table"),
        pytest.param("SELECT * FROM public.events_teamwarehouse", id="warehouse-table"),
        pytest.param("SELECT * FROM public.django_session", id="sessions-table"),
    ],
)
def test_the_login_reads_nothing_outside_its_schema(reader, statement):
    assert isinstance(_refused(reader, statement), psycopg.errors.InsufficientPrivilege)


@pytest.mark.parametrize(
    "statement",
    [
        pytest.param("INSERT INTO tracks (id) VALUES (1)", id="insert-through-view"),
        pytest.param("UPDATE tracks SET user_id = 'x'", id="update-through-view"),
        pytest.param("DELETE FROM tracks", id="delete-through-view"),
        pytest.param("INSERT INTO public.events_event (id) VALUES (1)", id="insert-events-table"),
        pytest.param("CREATE TABLE team_initech.mine (x int)", id="create-in-own-schema"),
        pytest.param("CREATE TABLE public.mine (x int)", id="create-in-public"),
        pytest.param("CREATE VIEW team_initech.mine AS SELECT 1", id="create-view"),
        pytest.param("CREATE SCHEMA mine", id="create-schema"),
        pytest.param("DROP VIEW team_initech.tracks", id="drop-view"),
        pytest.param("CREATE FUNCTION team_initech.f() RETURNS int AS 'SELECT 1' LANGUAGE sql", id="create-function"),
    ],
)
def test_the_login_cannot_write_even_after_leaving_read_only_mode(reader, statement):
    # Transactions are read-only by default for the login, but it could switch that off: privileges must hold.
    refused = (psycopg.errors.ReadOnlySqlTransaction, psycopg.errors.InsufficientPrivilege)
    assert isinstance(_refused(reader, statement), refused)
    reader.execute("SET default_transaction_read_only = off")
    assert isinstance(_refused(reader, statement), psycopg.errors.InsufficientPrivilege)


def test_the_login_has_no_role_attributes(initech_url, django_db_blocker):
    role = URL.match(initech_url)["role"]
    with django_db_blocker.unblock():
        assert role == warehouse_role_name(team=Team.objects.get(slug="initech"))
        attributes = fetch(
            "SELECT rolsuper, rolcreaterole, rolcreatedb, rolreplication, rolbypassrls, rolinherit, rolcanlogin, "
            "rolconnlimit, rolconfig FROM pg_roles WHERE rolname = %s",
            [role],
        )
    assert attributes == [
        (
            False,
            False,
            False,
            False,
            False,
            False,
            True,
            CONNECTION_LIMIT,
            ["search_path=team_initech", "default_transaction_read_only=on"],
        )
    ]


def test_views_built_after_the_login_are_readable_too(acme_url, acme):
    store_event(acme, "Signed Up", {"plan": "pro"})
    sync()
    with psycopg.connect(acme_url) as conn:
        assert conn.execute("SELECT plan FROM signed_up").fetchall() == [("pro",)]


def test_rotating_sets_a_new_password_and_keeps_the_login(acme_url, acme):
    second = warehouse_credentials_rotate(team=acme)
    first, again = URL.match(acme_url), URL.match(second)
    assert first["role"] == again["role"]
    assert first["password"] != again["password"]
    (stored,) = fetch("SELECT rolpassword FROM pg_authid WHERE rolname = %s", [again["role"]])[0]
    assert _verifier_matches(stored, again["password"])
    assert not _verifier_matches(stored, first["password"])
    assert TeamWarehouse.objects.get(team=acme).role_name == again["role"]


def test_a_team_without_events_gets_its_empty_views_and_a_login(cleanup, acme):
    url = warehouse_credentials_rotate(team=acme)
    with psycopg.connect(url) as conn:
        assert conn.execute("SELECT count(*) FROM tracks").fetchone() == (0,)


def test_the_command_prints_only_the_url(cleanup, acme):
    out, err = io.StringIO(), io.StringIO()
    call_command("warehouse_credentials", team="acme", stdout=out, stderr=err)
    assert URL.match(out.getvalue().strip())
    assert "shown only now" in err.getvalue()


def test_the_command_refuses_an_unknown_team(cleanup):
    with pytest.raises(CommandError, match='No team has the slug "nope"'):
        call_command("warehouse_credentials", team="nope")


def test_the_role_prefix_can_be_set(settings, cleanup, acme):
    settings.WAREHOUSE_ROLE_PREFIX = "Canvas-Prod"
    assert warehouse_role_name(team=acme) == f"canvas_prod_team_{acme.pk}"


def test_the_url_names_the_public_host_when_set(settings, cleanup, acme):
    settings.WAREHOUSE_PUBLIC_HOST = "warehouse.canvas.example"
    settings.WAREHOUSE_PUBLIC_PORT = 6432
    url = warehouse_credentials_rotate(team=acme)
    assert "@warehouse.canvas.example:6432/" in url


def _verifier_matches(stored: str, password: str) -> bool:
    """Check a SCRAM-SHA-256 verifier independently of the code that made it (RFC 5802)."""
    match = re.fullmatch(r"SCRAM-SHA-256\$(\d+):([^$]+)\$([^:]+):(.+)", stored)
    iterations, salt, stored_key = int(match[1]), base64.b64decode(match[2]), base64.b64decode(match[3])
    salted = hashlib.pbkdf2_hmac("sha256", password.encode(), salt, iterations)
    client_key = hmac.new(salted, b"Client Key", hashlib.sha256).digest()
    return hashlib.sha256(client_key).digest() == stored_key


def test_the_verifier_is_postgresqls_scram_format():
    verifier = scram_sha256_verifier("secret", salt=b"0123456789abcdef", iterations=4096)
    assert verifier.startswith("SCRAM-SHA-256$4096:MDEyMzQ1Njc4OWFiY2RlZg==$")
    assert _verifier_matches(verifier, "secret")
    assert not _verifier_matches(verifier, "Secret")


def test_rotating_warehouse_credentials_is_audited(cleanup, alice, acme):
    from events.models import AuditAction, AuditEntry

    warehouse_credentials_rotate(team=acme, by=alice, ip="10.1.2.3")

    entry = AuditEntry.objects.get(team=acme, action=AuditAction.WAREHOUSE_CREDENTIALS)
    assert (entry.actor, entry.ip_address) == (alice, "10.1.2.3")
