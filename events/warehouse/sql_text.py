"""psycopg's composed SQL as the text Django's cursor runs: the warehouse's one way to turn identifiers and
literals into a statement."""

from django.db import connection
from psycopg import sql


def sql_text(statement: sql.Composable) -> str:
    connection.ensure_connection()
    return statement.as_string(connection.connection)
