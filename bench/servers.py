"""The benchmark's servers: gunicorn as production starts it (chaos.processes.Gunicorn, shared with `make chaos`
and the multi-server tests), pinned with taskset, on the benchmark's own database and Redis db."""

import http.client
from pathlib import Path
from urllib.parse import urlsplit

import psycopg
import redis
from psycopg import sql

from chaos.processes import Gunicorn, NewToken, app_environment, migrate_and_create_token, port_is_free

from .config import DATABASE_URL, REDIS_URL

HELLO_APP = "bench.hello_wsgi:application"  # B0-http
CANVAS_APP = "canvas.wsgi:application"
# The benchmark measures capacity, not the per-token limit (still counted in Redis on each request).
RATE_LIMIT_OUT_OF_THE_WAY = 100_000_000


def require_free_ports(*ports: int) -> None:
    for port in ports:
        if not port_is_free(port):
            raise SystemExit(f"Port {port} is in use: stop what listens there or set BENCH_PORT.")


def reset_stores(database_url: str = DATABASE_URL, redis_url: str = REDIS_URL) -> None:
    """Drop and create a benchmark database, flush its Redis db. Refuses any name without "bench" or "compare",
    and Redis db 0, so that the development and test stores are never touched."""
    database = urlsplit(database_url).path.lstrip("/")
    redis_db = urlsplit(redis_url).path.lstrip("/") or "0"
    if "bench" not in database and "compare" not in database:
        raise SystemExit(f"The benchmark's database must have 'bench' or 'compare' in its name, not {database!r}.")
    if redis_db == "0":
        raise SystemExit("The benchmark's Redis db must be another than 0, which the tests use.")
    maintenance = urlsplit(database_url)._replace(path="/postgres").geturl()
    with psycopg.connect(maintenance, autocommit=True) as connection:
        connection.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(database)))
        connection.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(database)))
    redis.Redis.from_url(redis_url).flushdb()


def bench_environment(
    workers: int, threads: int, *, database_url: str = DATABASE_URL, redis_url: str = REDIS_URL
) -> dict[str, str]:
    """The production settings (README: Configuration) on the benchmark's database and Redis db."""
    return app_environment(
        database_url=database_url,
        redis_url=redis_url,
        workers=workers,
        threads=threads,
        rate_limit_per_second=RATE_LIMIT_OUT_OF_THE_WAY,
    )


def create_team_and_token(env: dict[str, str]) -> NewToken:
    """Migrate the fresh database and create a team with the Events API on and a token (events.tokens.services)."""
    return migrate_and_create_token(env, who="bench")


def server(app: str, *, port: int, cpus: str, workers: int, threads: int, log: Path) -> Gunicorn:
    """gunicorn -c gunicorn.conf.py APP on `port`, held to `cpus`; start it with `with`."""
    return Gunicorn(bench_environment(workers, threads), log=log, app=app, port=port, cpus=cpus)


def http_request(port: int, method: str, path: str, body: bytes = b"", token: str = "") -> tuple[int, bytes]:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    headers = {"Content-Type": "application/json"}
    if token:
        headers["X-Auth-Token"] = token
    try:
        connection.request(method, path, body=body or None, headers=headers)
        response = connection.getresponse()
        return response.status, response.read()
    finally:
        connection.close()
