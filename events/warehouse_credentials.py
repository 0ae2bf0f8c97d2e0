"""Read-only PostgreSQL logins for BI tools: one per team, reading that team's warehouse views and nothing else.

The login gets USAGE on its team's schema and SELECT on the views there, and nothing anywhere else. The views
belong to the app's role and read events_event with its privileges, filtered to the team, so the login needs
(and has) no privilege on events_event, on any other table of `public`, or on another team's schema. It is
created NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS, with at most CONNECTION_LIMIT
sessions, read-only transactions by default and its schema as search_path.

The app's own database role needs CREATEROLE (to create these logins and change their passwords) and CREATE
on the database (to create the team schemas, which it then owns); not superuser.

Roles belong to the whole PostgreSQL cluster, not to one database, so their names carry a prefix:
`<WAREHOUSE_ROLE_PREFIX>_team_<team id>`, the prefix being the database name unless set.

The password is random and shown once; Canvas does not keep it. PostgreSQL is sent only its SCRAM-SHA-256
verifier, computed here as psql's \\password does, so the plaintext is in no server log even with
log_statement = 'ddl'.

Known limit: PostgreSQL's system catalogs are readable by every role, so the login can list the names (never
the data) of other schemas, views and columns in the database.
"""

import base64
import hashlib
import hmac
import re
import secrets
from urllib.parse import quote

from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone
from psycopg import sql

from accounts.models import Team, User

from .models import AuditAction, AuditEntry, TeamWarehouse
from .warehouse import grant_read, require_postgresql, role_exists, warehouse_for_team, warehouse_sync_team

CONNECTION_LIMIT = 10
SCRAM_ITERATIONS = 4096
MAX_PREFIX_LENGTH = 40


def warehouse_role_prefix() -> str:
    prefix = getattr(settings, "WAREHOUSE_ROLE_PREFIX", "") or connection.settings_dict["NAME"]
    return re.sub(r"[^a-z0-9_]", "_", str(prefix).lower())[:MAX_PREFIX_LENGTH]


def warehouse_role_name(*, team: Team) -> str:
    return f"{warehouse_role_prefix()}_team_{team.pk}"


def scram_sha256_verifier(password: str, *, salt: bytes | None = None, iterations: int = SCRAM_ITERATIONS) -> str:
    """PostgreSQL's stored form of a SCRAM-SHA-256 password (RFC 5802 / RFC 7677)."""
    salt = salt if salt is not None else secrets.token_bytes(16)
    salted = hashlib.pbkdf2_hmac("sha256", password.encode("utf-8"), salt, iterations)
    client_key = hmac.new(salted, b"Client Key", hashlib.sha256).digest()
    stored_key = hashlib.sha256(client_key).digest()
    server_key = hmac.new(salted, b"Server Key", hashlib.sha256).digest()

    def b64(data: bytes) -> str:
        return base64.b64encode(data).decode("ascii")

    return f"SCRAM-SHA-256${iterations}:{b64(salt)}${b64(stored_key)}:{b64(server_key)}"


def connection_url(*, role: str, password: str) -> str:
    """The URL a BI tool connects with. Host and port are the app's own unless WAREHOUSE_PUBLIC_HOST and
    WAREHOUSE_PUBLIC_PORT say how the database is reached from outside."""
    database = connection.settings_dict
    host = getattr(settings, "WAREHOUSE_PUBLIC_HOST", "") or database.get("HOST") or "localhost"
    port = getattr(settings, "WAREHOUSE_PUBLIC_PORT", "") or database.get("PORT") or 5432
    if ":" in host:
        host = f"[{host}]"
    return f"postgres://{quote(role, safe='')}:{quote(password, safe='')}@{host}:{port}/{quote(database['NAME'])}"


@transaction.atomic
def warehouse_credentials_rotate(*, team: Team, by: User | None = None, ip: str | None = None) -> str:
    """Create the team's read-only login, or give it a new password (the old one stops working for new
    connections; sessions already open stay open). Returns the postgres:// URL, for the caller to show once."""
    require_postgresql()
    warehouse = warehouse_for_team(team=team)
    if not warehouse.views:
        warehouse_sync_team(warehouse_id=warehouse.pk)  # the schema and its views must exist to be granted
    warehouse = TeamWarehouse.objects.select_for_update().get(pk=warehouse.pk)
    role = warehouse_role_name(team=team)
    password = secrets.token_urlsafe(32)
    names = {
        "role": sql.Identifier(role),
        "verifier": sql.Literal(scram_sha256_verifier(password)),
        "limit": sql.Literal(CONNECTION_LIMIT),
        "schema": sql.Identifier(warehouse.schema_name),
    }
    connection.ensure_connection()
    with connection.cursor() as cursor:
        if role_exists(cursor, role):
            statements = ["ALTER ROLE {role} WITH LOGIN CONNECTION LIMIT {limit} PASSWORD {verifier}"]
        else:
            statements = [
                "CREATE ROLE {role} WITH LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOINHERIT NOREPLICATION "
                "NOBYPASSRLS CONNECTION LIMIT {limit} PASSWORD {verifier}"
            ]
        statements += [
            "ALTER ROLE {role} SET search_path = {schema}",
            "ALTER ROLE {role} SET default_transaction_read_only = on",
        ]
        for statement in statements:
            cursor.execute(sql.SQL(statement).format(**names).as_string(connection.connection))
        grant_read(cursor, schema=warehouse.schema_name, role=role)
    TeamWarehouse.objects.filter(pk=warehouse.pk).update(
        role_name=role, credentials_rotated_at=timezone.now(), credentials_rotated_by=by
    )
    AuditEntry.objects.create(team=team, actor=by, action=AuditAction.WAREHOUSE_CREDENTIALS, ip_address=ip)
    return connection_url(role=role, password=password)
