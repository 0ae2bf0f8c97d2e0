"""Read-only PostgreSQL logins for BI tools: one per team, reading that team's warehouse relations and nothing else.

The login gets USAGE on its team's schema and SELECT on the BI-facing views there (not on the tables and live
views behind them), and nothing anywhere else. The views belong to the app's role and read the team's tables
and events_event with its privileges, so the login needs (and has) no privilege on events_event, on any other
table of `public`, or on another team's schema. It is
created NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS, with at most CONNECTION_LIMIT
sessions, read-only transactions by default, its schema as search_path, the statement timeout, work_mem
and temp_file_limit of the WAREHOUSE_* settings, JIT off, and none of its errors written to the server's log.

Read-only transactions are only a default: the login can switch them off. So it must have no right to create
or write anything, and PUBLIC has some by default: TEMPORARY on the database, and EXECUTE on functions that
write or take a shared resource with no privilege asked (WRITING_FUNCTIONS). `database_privileges_ensure`
takes those from PUBLIC (migration 0007 and every rotation run it), and a rotation refuses to hand out a login
that could still write (WarehouseLoginUnsafe), naming the statements a superuser must run.

The statement timeout and work_mem are only the login's defaults too: PostgreSQL lets every role change them
in its session, and reset its own defaults (SUPERUSER_PARAMETERS excepted). So each pass of sync_warehouse runs
warehouse_logins_enforce, which puts the defaults back and ends what outlasts the timeout; the app's role is a
member of every login, so that it may see and signal their sessions. Memory PostgreSQL cannot hold a login to
(docs/operations.md says what to do about it).

The app's own database role needs CREATEROLE (to create these logins and change their passwords), CREATE
on the database (to create the team schemas, which it then owns) and TEMPORARY (the batch path's staging
table); not superuser. Two things only a superuser can give it, once: `GRANT SET ON PARAMETER` for
SUPERUSER_PARAMETERS (to set the login's temp-file limit and log levels), and the revoking of
WRITING_FUNCTIONS from PUBLIC (`manage.py warehouse_credentials --superuser-sql` prints what is still to do).

Roles belong to the whole PostgreSQL cluster, not to one database, so their names carry a prefix:
`<WAREHOUSE_ROLE_PREFIX>_team_<team id>`, the prefix being the database name unless set.

The password is random and shown once; Canvas does not keep it. PostgreSQL is sent only its SCRAM-SHA-256
verifier, computed here as psql's \\password does, so the plaintext is in no server log even with
log_statement = 'ddl'.

Known limit: PostgreSQL's system catalogs are readable by every role, so the login can list the names (never
the data) of other schemas, relations and columns in the database; no view's text names an event.
"""

import base64
import hashlib
import hmac
import logging
import re
import secrets
from urllib.parse import quote

import psycopg
from django.conf import settings
from django.db import DatabaseError, connection, transaction
from django.utils import timezone
from psycopg import sql

from accounts.models import Team, User
from events.models import AuditAction, AuditEntry, TeamWarehouse
from events.warehouse.naming import warehouse_for_team
from events.warehouse.sync import WarehouseUnavailable, require_postgresql, warehouse_sync_team
from events.warehouse.tables import grant_read, role_exists

logger = logging.getLogger(__name__)

CONNECTION_LIMIT = 10
SCRAM_ITERATIONS = 4096
MAX_PREFIX_LENGTH = 40
# pg_catalog functions PUBLIC may call that write or hold something shared, with no privilege asked: large
# objects, WAL messages, transaction ids (wraparound), notifications, and advisory locks (they can fill the
# cluster's lock table, and then no new connection to any database succeeds; see
# docs/performance.md#holding-warehouse-logins-to-their-limits). The app calls none of them.
WRITING_FUNCTIONS = (
    r"^(lo_creat|lo_create|lo_from_bytea|pg_logical_emit_message|txid_current|pg_current_xact_id|pg_notify"
    r"|pg_(try_)?advisory_(xact_)?lock(_shared)?)$"
)
SEE_OPERATIONS = 'See docs/operations.md, "Warehouse logins".'


class WarehouseLoginUnsafe(WarehouseUnavailable):
    """The database would let the login write, or refused a limit for it; the rotation was rolled back."""


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
        for statement in statements:
            cursor.execute(sql.SQL(statement).format(**names).as_string(connection.connection))
        login_settings_apply(cursor, role=role, schema=warehouse.schema_name)
        grant_read(cursor, schema=warehouse.schema_name, role=role)
        database_privileges_ensure(cursor)
        unsafe = login_write_paths(cursor, role=role)
        if unsafe:
            raise WarehouseLoginUnsafe(
                f"Not creating the warehouse login: it could {'; '.join(unsafe)}. A superuser must run, once, in "
                f"this database: {' '.join(_privileges_statements(cursor))} {SEE_OPERATIONS}"
            )
    TeamWarehouse.objects.filter(pk=warehouse.pk).update(
        role_name=role, credentials_rotated_at=timezone.now(), credentials_rotated_by=by
    )
    AuditEntry.objects.create(team=team, actor=by, action=AuditAction.WAREHOUSE_CREDENTIALS, ip_address=ip)
    return connection_url(role=role, password=password)


def login_settings(*, schema: str) -> dict[str, str]:
    """The login's session defaults, as PostgreSQL lists them in pg_roles.rolconfig."""
    return {
        "search_path": schema,
        "default_transaction_read_only": "on",
        "statement_timeout": settings.WAREHOUSE_STATEMENT_TIMEOUT,
        # A transaction left open holds back vacuum of events_event for every team.
        "idle_in_transaction_session_timeout": settings.WAREHOUSE_STATEMENT_TIMEOUT,
        "work_mem": settings.WAREHOUSE_WORK_MEM,
        # BI queries read indexed tables; compiling each plan would add ~150 ms to every one of them.
        "jit": "off",
        "temp_file_limit": settings.WAREHOUSE_TEMP_FILE_LIMIT,
        # An error quotes the value it refused, so one query can fill the server's log; see
        # docs/performance.md#holding-warehouse-logins-to-their-limits.
        "log_min_messages": "fatal",
        "log_min_error_statement": "fatal",
    }


# The login's settings only a superuser may set, or delegate (PostgreSQL 15: GRANT SET ON PARAMETER).
SUPERUSER_PARAMETERS = ("temp_file_limit", "log_min_messages", "log_min_error_statement")


def login_settings_apply(cursor, *, role: str, schema: str) -> None:
    """Set the login's defaults, and make the app's role a member of the login so that it may see and end the
    login's sessions (warehouse_logins_enforce); the login gains nothing from it."""
    cursor.execute("SELECT quote_ident(current_user)")
    (app_role,) = cursor.fetchone()
    for parameter, value in login_settings(schema=schema).items():
        quoted = sql.Identifier(value) if parameter == "search_path" else sql.Literal(value)
        statement = sql.SQL("ALTER ROLE {} SET {} = {}").format(sql.Identifier(role), sql.Identifier(parameter), quoted)
        try:
            cursor.execute(statement.as_string(connection.connection))
        except DatabaseError as error:
            if not isinstance(error.__cause__, psycopg.errors.InsufficientPrivilege):
                raise
            # One of SUPERUSER_PARAMETERS; PostgreSQL 15 lets a superuser delegate them.
            raise WarehouseLoginUnsafe(
                f"PostgreSQL refused to set {parameter} for the warehouse login ({error.__cause__}). A superuser "
                f"must run, once: GRANT SET ON PARAMETER {parameter} TO {app_role}; {SEE_OPERATIONS}"
            ) from error
    cursor.execute(sql.SQL("GRANT {} TO CURRENT_USER").format(sql.Identifier(role)).as_string(connection.connection))


def _privileges_statements(cursor) -> list[str]:
    """What would take from PUBLIC the rights it still has and a warehouse login must not have, granting the app's
    role TEMPORARY of its own first. Only what is still to do: revoking a right from PUBLIC again is an error
    for a role that holds no right at all on the object."""
    cursor.execute(
        "SELECT quote_ident(current_database()), quote_ident(current_user), "
        " NOT EXISTS (SELECT FROM pg_database d, aclexplode(coalesce(d.datacl, acldefault('d', d.datdba))) a "
        "  WHERE d.datname = current_database() AND a.privilege_type = 'TEMPORARY' "
        "  AND a.grantee = (SELECT oid FROM pg_roles WHERE rolname = current_user)), "
        " has_database_privilege('public', current_database(), 'TEMPORARY'), "
        " EXISTS (SELECT FROM pg_namespace WHERE nspname = 'public' "
        "  AND has_schema_privilege('public', oid, 'CREATE')), "
        " (SELECT string_agg(oid::regprocedure::text, ', ' ORDER BY oid::regprocedure::text) FROM pg_proc "
        "  WHERE pronamespace = 'pg_catalog'::regnamespace AND proname ~ %s "
        "  AND has_function_privilege('public', oid, 'EXECUTE'))",
        [WRITING_FUNCTIONS],
    )
    database, app_role, app_lacks_temporary, public_temporary, public_create, functions = cursor.fetchone()
    statements = []
    if public_temporary and app_lacks_temporary:
        statements.append(f"GRANT TEMPORARY ON DATABASE {database} TO {app_role};")
    if public_temporary:
        statements.append(f"REVOKE TEMPORARY ON DATABASE {database} FROM PUBLIC;")
    if public_create:
        statements.append("REVOKE CREATE ON SCHEMA public FROM PUBLIC;")
    if functions:
        statements.append(f"REVOKE EXECUTE ON FUNCTION {functions} FROM PUBLIC;")
    return statements


def superuser_statements(cursor) -> list[str]:
    """What a superuser runs once in the database when the app's role is not one: the right to set
    SUPERUSER_PARAMETERS, and what database_privileges_ensure still has to do."""
    cursor.execute("SELECT quote_ident(current_user)")
    (app_role,) = cursor.fetchone()
    grant = []
    for parameter in SUPERUSER_PARAMETERS:
        cursor.execute("SELECT has_parameter_privilege(%s, 'SET')", [parameter])
        if not cursor.fetchone()[0]:
            grant.append(f"GRANT SET ON PARAMETER {parameter} TO {app_role};")
    return grant + _privileges_statements(cursor)


def database_privileges_ensure(cursor) -> None:
    """Take from PUBLIC what a warehouse login must not have. Safe to repeat. A right this role may not take
    away (it is not the owner, or not a superuser for pg_catalog's functions) is left, with a warning from
    PostgreSQL: login_write_paths is what checks the outcome."""
    for statement in _privileges_statements(cursor):
        cursor.execute(statement)


def login_write_paths(cursor, *, role: str) -> list[str]:
    """The ways `role` could still create or write something in this database, in words; empty when none."""
    cursor.execute(
        "SELECT has_database_privilege(%(role)s, current_database(), 'TEMPORARY'), "
        "has_database_privilege(%(role)s, current_database(), 'CREATE'), "
        "(SELECT string_agg(quote_ident(nspname), ', ' ORDER BY nspname) FROM pg_namespace "
        " WHERE has_schema_privilege(%(role)s, oid, 'CREATE')), "
        "(SELECT string_agg(DISTINCT proname, ', ') FROM pg_proc WHERE pronamespace = 'pg_catalog'::regnamespace "
        " AND proname ~ %(functions)s AND has_function_privilege(%(role)s, oid, 'EXECUTE'))",
        {"role": role, "functions": WRITING_FUNCTIONS},
    )
    temporary, create, schemas, functions = cursor.fetchone()
    return [
        problem
        for problem, present in (
            ("create temporary tables and functions", temporary),
            ("create schemas", create),
            (f"create objects in {schemas}", schemas),
            (f"call {functions}", functions),
        )
        if present
    ]


def other_databases_open_to(*, role: str) -> list[str]:
    """The cluster's other databases the login has CONNECT on (unless pg_hba.conf refuses it): PostgreSQL
    gives CONNECT to PUBLIC on every new database."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT datname FROM pg_database WHERE datallowconn AND datname <> current_database() "
            "AND has_database_privilege(%s, oid, 'CONNECT') ORDER BY datname",
            [role],
        )
        return [name for (name,) in cursor.fetchall()]


# The app sends no notifications, yet any role may NOTIFY (no privilege governs it, not even in a read-only
# transaction) and LISTEN: a listener that does not read holds back the cluster's notification queue (8 GB on
# disk). Past this share of the queue, the logins' sessions that could be that listener are ended.
NOTIFY_QUEUE_LIMIT = 0.01
_OVERDUE_SESSIONS = """
    SELECT usename, reason, CASE WHEN reason = 'statement timeout' THEN pg_cancel_backend(pid)
                                 ELSE pg_terminate_backend(pid) END
    FROM (
        SELECT usename, pid, CASE
            WHEN pg_notification_queue_usage() > %(queue_limit)s AND (state <> 'idle' OR wait_event = 'ClientWrite')
                THEN 'notification queue'
            WHEN state IN ('active', 'fastpath function call')
                AND clock_timestamp() - query_start > %(timeout)s::interval THEN 'statement timeout'
            WHEN state LIKE 'idle in transaction%%'
                AND clock_timestamp() - state_change > %(timeout)s::interval THEN 'idle in transaction'
        END AS reason
        FROM pg_stat_activity WHERE usename = ANY(%(logins)s)
    ) AS sessions
    WHERE reason IS NOT NULL
"""


def warehouse_logins_enforce() -> int:
    """The login's timeouts are only defaults, which it may switch off in its own session or even for its next
    ones (ALTER ROLE on itself): put its settings back when they were changed, cancel a statement it has run
    for longer than WAREHOUSE_STATEMENT_TIMEOUT, end a session of it idle in a transaction that long, and
    end those that could be holding back a filling notification queue. `sync_warehouse` runs this on every
    pass. Returns how many statements and sessions were ended."""
    require_postgresql()
    logins = dict(TeamWarehouse.objects.exclude(role_name="").values_list("role_name", "schema_name"))
    if not logins:
        return 0
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT rolname, coalesce(rolconfig, '{}') FROM pg_roles WHERE rolname = ANY(%s)", [list(logins)]
        )
        for role, config in cursor.fetchall():
            wanted = login_settings(schema=logins[role])
            if sorted(config) == sorted(f"{name}={value}" for name, value in wanted.items()):
                continue
            logger.warning("The settings of warehouse login %s differ from the WAREHOUSE_* ones; setting them.", role)
            try:
                with transaction.atomic():
                    login_settings_apply(cursor, role=role, schema=logins[role])
            except WarehouseLoginUnsafe as error:
                logger.error("Could not set the settings of warehouse login %s: %s", role, error)
        limits: dict[str, str | float] = {
            "timeout": settings.WAREHOUSE_STATEMENT_TIMEOUT,
            "queue_limit": NOTIFY_QUEUE_LIMIT,
        }
        cursor.execute(_OVERDUE_SESSIONS, {"logins": list(logins), **limits})
        ended = cursor.fetchall()
    for role, reason, _ in ended:
        logger.warning("Ended a session of warehouse login %s: %s.", role, reason)
    return len(ended)
