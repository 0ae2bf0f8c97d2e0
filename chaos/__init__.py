"""Fault injection for the Events API (`make chaos`; issue 7, item 1).

`chaos.run` loads the production server (gunicorn.conf.py) with events while it kills gunicorn workers and
crashes PostgreSQL, then reconciles every acknowledgement against the table. Everything it needs runs on the
side, started and removed by the harness: a throwaway PostgreSQL cluster, its own Redis and its own gunicorn.
`chaos.processes` is shared with the benchmark (bench/servers.py) and the multi-server tests.
"""
