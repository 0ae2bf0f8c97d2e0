"""Take from PUBLIC the rights a warehouse login must not have: TEMPORARY on the database, CREATE on `public`,
and EXECUTE on pg_catalog's functions that write without asking for a privilege. The app's role keeps
TEMPORARY. Rights this role may not take away are left with a warning (see docs/operations.md, "Warehouse
logins"); every login rotation runs it again and refuses a login that could still write. No-op on SQLite."""

from django.db import migrations


def revoke_public_write_privileges(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    from events.warehouse.credentials import database_privileges_ensure

    with schema_editor.connection.cursor() as cursor:
        database_privileges_ensure(cursor)


class Migration(migrations.Migration):
    dependencies = [
        ("events", "0007_warehouse_sync_health"),
    ]

    operations = [
        migrations.RunPython(revoke_public_write_privileges, migrations.RunPython.noop, elidable=False),
    ]
