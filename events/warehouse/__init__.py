"""Team warehouses: each team's events as typed PostgreSQL tables in a schema of its own, for its BI tools.

- catalog.py: every event name and property a team sent, with counts, inferred types and hourly volume.
- column_types.py (the type a property's values ask for) and naming.py (schema, view and column names): the
  rules the catalog applies as it first sees a name or property.
- view_definitions.py: the relations a team's catalog calls for; tables.py: their tables, filled set-based by the
  catalog sync, and the views over them; sync.py: the full pass that checks them all (manage.py sync_warehouse).
- credentials.py: the team's read-only PostgreSQL login. dry_run.py: what storing events would change, for
  the API's dry runs. distinct_count.py: the sketch that counts the names past the catalog's caps.

The rule a newcomer must know: ingest writes the event row and nothing else. Everything here follows from
events_event afterwards (the catalog, then the tables), so no request waits on the warehouse; each relation
reads the events past the last sync live from events_event, so only its shape waits for the next sync.
"""
