"""The processes a chaos run, the benchmark or a multi-server test starts, each stopped by whoever started it.

- `ThrowawayPostgres`: a PostgreSQL 15 cluster in a temporary directory on its own port, which may be crashed
  (`pg_ctl stop -m immediate`) or frozen (SIGSTOP) at will. Never the shared cluster on 5432: other test runs
  and CI use it.
- `RedisServer`: a private redis-server on a free port, nothing persisted.
- `Gunicorn`: the production server as production starts it (`gunicorn -c gunicorn.conf.py`), in its own
  process group, so stopping it stops its workers and nothing else; optionally held to some cores (taskset).
- `app_environment` and `migrate_and_create_token`: the production settings on a given database and Redis, and
  a team with the Events API on and a token.
"""

import contextlib
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from secrets import token_urlsafe
from typing import NamedTuple
from urllib.parse import quote

import psycopg
import redis
import requests
from psycopg import sql

ROOT = Path(__file__).resolve().parent.parent
PG_BIN = Path(os.environ.get("CHAOS_PG_BIN", "/usr/lib/postgresql/15/bin"))
POSTGRES_PORTS = range(55432, 55500)
START_TIMEOUT_SECONDS = 60
STOP_TIMEOUT_SECONDS = 30  # gunicorn.conf.py's graceful_timeout is 20 s

# One Django start-up for both steps: on a busy machine each start costs seconds. WHO names the user and team.
MIGRATE_AND_CREATE_TEAM = """
from django.core.management import call_command
call_command("migrate", interactive=False, verbosity=0)
from accounts.models import Team, User
from events.tokens.services import api_token_create, events_api_set_enabled
user = User.objects.create(email=f"{WHO}@canvas.test")
team = Team.objects.create(name=WHO.title(), slug=WHO)
events_api_set_enabled(team=team, enabled=True, by=user)
token, plaintext = api_token_create(team=team, created_by=user, name=f"{WHO} load")
print("NEW_TOKEN", team.id, token.id, plaintext)
"""


def run(command: list, *, check: bool = True, **kwargs) -> subprocess.CompletedProcess:
    """Every short-lived command goes through here: a list of arguments, never a shell."""
    return subprocess.run([str(part) for part in command], check=check, **kwargs)  # noqa: S603


def port_is_free(port: int) -> bool:
    """Nothing listens on 127.0.0.1:port and it can be bound."""
    with socket.socket() as probe:
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def free_port(candidates: range | None = None) -> int:
    """A TCP port nothing listens on: one of `candidates` when given, else one the kernel picks."""
    if not candidates:
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            return probe.getsockname()[1]
    for port in random.sample(candidates, len(candidates)):
        if port_is_free(port):
            return port
    raise RuntimeError(f"no free port in {candidates}")


def wait_until(ready, *, timeout: float, what: str, interval: float = 0.1) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if ready():
            return
        time.sleep(interval)
    raise RuntimeError(f"{what} was not ready within {timeout:.0f} s")


def cpu_seconds_of(include, *, children: bool = False) -> float:
    """User + system time of the processes for which include(name, fields of /proc/<pid>/stat after the name)
    holds; with `children`, also the times of their ended children."""
    ticks = 0
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            text = stat.read_text()
        except OSError:  # the process ended meanwhile
            continue
        name, _, rest = text.partition("(")[2].rpartition(")")
        fields = rest.split()
        if include(name, fields):
            ticks += sum(int(value) for value in fields[11 : 15 if children else 13])  # utime, stime(, cutime, cstime)
    return ticks / os.sysconf("SC_CLK_TCK")


def database_url(*, user: str, host: str, port: int | str, name: str, password: str = "") -> str:
    """A DATABASE_URL (django-environ's format) from a Django settings_dict's parts."""
    credentials = quote(user, safe="") + (f":{quote(password, safe='')}" if password else "")
    address = f"{host}:{port}" if port else host
    return f"postgres://{credentials}@{address}/{quote(name, safe='')}"


class ThrowawayPostgres:
    """A cluster of its own under `directory` (trust auth, loopback only, fsync on).

    As root the cluster runs as the `postgres` OS user (the server refuses to run as root) through runuser.
    """

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.data = directory / "data"
        self.log = directory / "postgres.log"
        self.port = 0

    def _as_owner(self, *command, check: bool = True) -> subprocess.CompletedProcess:
        prefix = [shutil.which("runuser") or "/usr/sbin/runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
        return run([*prefix, *command], check=check, capture_output=True, text=True)

    def _pg_ctl(self, *arguments, check: bool = True) -> subprocess.CompletedProcess:
        command = [PG_BIN / "pg_ctl", "-D", self.data, "-l", self.log, "-w", "-t", str(START_TIMEOUT_SECONDS)]
        return self._as_owner(*command, *arguments, check=check)

    def create(self) -> None:
        """initdb and start; the cluster then answers on `self.port`."""
        self.directory.mkdir(parents=True, exist_ok=True)
        if os.geteuid() == 0:
            shutil.chown(self.directory, "postgres", "postgres")
        # --no-sync only skips initdb's own final flush of the new files; the server below runs with fsync on.
        self._as_owner(PG_BIN / "initdb", "-D", self.data, "-U", "postgres", "--auth=trust", "-E", "UTF8",
                       "--locale=C", "--no-sync")  # fmt: skip
        self.port = free_port(POSTGRES_PORTS)
        settings = {
            "port": self.port,
            "listen_addresses": "'127.0.0.1'",
            "unix_socket_directories": f"'{self.directory}'",
            "fsync": "on",
            "synchronous_commit": "on",
            "full_page_writes": "on",
            "max_connections": 200,
        }
        with (self.data / "postgresql.conf").open("a") as config:
            config.writelines(f"{name} = {value}\n" for name, value in settings.items())
        self.start()

    def start(self) -> None:
        """Start the server and return once it accepts connections (after crash recovery, if any)."""
        self._pg_ctl("start")

    def crash(self) -> None:
        """Immediate shutdown: every backend dies at once and the next start runs crash recovery."""
        self._pg_ctl("stop", "-m", "immediate")

    def _processes(self) -> list[int]:
        """The postmaster and every server process it started."""
        postmaster = int((self.data / "postmaster.pid").read_text().split()[0])
        children = Path(f"/proc/{postmaster}/task/{postmaster}/children").read_text().split()
        return [postmaster, *map(int, children)]

    def freeze(self) -> list[int]:
        """SIGSTOP the whole server: connections stay open but nothing answers, as in a stalled disk or a
        network partition. Returns the stopped processes, for `thaw`."""
        stopped = self._processes()
        for pid in stopped:
            os.kill(pid, signal.SIGSTOP)
        return stopped

    @staticmethod
    def thaw(stopped: list[int]) -> None:
        for pid in stopped:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGCONT)

    def destroy(self) -> None:
        """Stop the server if it runs, or may run (a start that timed out still leaves a postmaster)."""
        if (self.data / "postmaster.pid").exists():
            self._pg_ctl("stop", "-m", "immediate", check=False)

    def url(self, database: str) -> str:
        return database_url(user="postgres", host="127.0.0.1", port=self.port, name=database)

    def create_database(self, name: str) -> str:
        with psycopg.connect(self.url("postgres"), autocommit=True) as connection:
            connection.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        return self.url(name)


class RedisServer:
    """redis-server on a free loopback port, in memory only."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.port = 0
        self.process: subprocess.Popen | None = None

    def start(self) -> None:
        self.port = free_port()
        command = [shutil.which("redis-server") or "redis-server", "--port", str(self.port), "--bind", "127.0.0.1"]
        command += ["--save", "", "--appendonly", "no", "--dir", str(self.directory)]
        with (self.directory / "redis.log").open("ab") as log:
            self.process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)  # noqa: S603
        client = redis.Redis(port=self.port)
        wait_until(lambda: self._answers(client), timeout=10, what="redis-server")

    @staticmethod
    def _answers(client: redis.Redis) -> bool:
        try:
            return bool(client.ping())
        except redis.ConnectionError:
            return False

    def url(self, db: int = 0) -> str:
        return f"redis://127.0.0.1:{self.port}/{db}"

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def app_environment(
    *,
    database_url: str,
    redis_url: str,
    workers: int = 2,
    threads: int = 8,
    rate_limit_per_second: int = 100_000_000,
    conn_max_age: int = 60,
) -> dict[str, str]:
    """The production settings (README: Configuration) over plain HTTP on loopback, for one database and Redis.
    The caller's GUNICORN_* and BENCH_* variables are dropped: the server gets exactly what is asked here."""
    env = {name: value for name, value in os.environ.items() if not name.startswith(("GUNICORN_", "BENCH_"))}
    env.update(
        DJANGO_SETTINGS_MODULE="canvas.settings",
        DEBUG="0",
        SECRET_KEY=token_urlsafe(32),
        DATABASE_URL=database_url,
        REDIS_URL=redis_url,
        CONN_MAX_AGE=str(conn_max_age),
        ALLOWED_HOSTS="127.0.0.1,localhost",
        SECURE_SSL_REDIRECT="0",
        SESSION_COOKIE_SECURE="0",
        CSRF_COOKIE_SECURE="0",
        EVENTS_RATE_LIMIT_PER_SECOND=str(rate_limit_per_second),
        LOG_LEVEL="WARNING",
        GUNICORN_WORKERS=str(workers),
        GUNICORN_THREADS=str(threads),
        GUNICORN_LOGLEVEL="warning",
    )
    return env


class NewToken(NamedTuple):
    team_id: int
    token_id: int
    plaintext: str


def migrate_and_create_token(env: dict[str, str], *, who: str = "chaos") -> NewToken:
    """Migrate the database `env` names and create a team with the Events API on and a token for it; `who` names
    the user, the team and the token."""
    script = f"WHO = {who!r}\n{MIGRATE_AND_CREATE_TEAM}"
    command = [sys.executable, "manage.py", "shell", "-c", script]
    result = run(command, check=False, cwd=ROOT, env=env, capture_output=True, text=True)
    if result.returncode:
        raise RuntimeError(f"migrating the database failed:\n{result.stderr[-4000:]}")
    line = next(line for line in result.stdout.splitlines() if line.startswith("NEW_TOKEN "))
    _, team_id, token_id, plaintext = line.split()
    return NewToken(int(team_id), int(token_id), plaintext)


class Gunicorn:
    """`gunicorn -c gunicorn.conf.py APP` on a loopback port (a free one unless given), held to the cores `cpus`
    (a taskset list) when given, running the code of the checkout at `root` (another revision's, for
    bench/compare.py). A context manager: started on entry, stopped on exit."""

    def __init__(
        self,
        env: dict[str, str],
        *,
        log: Path,
        app: str = "canvas.wsgi:application",
        port: int | None = None,
        cpus: str | None = None,
        root: Path = ROOT,
    ) -> None:
        self.port = port or free_port()
        self.env = {**env, "GUNICORN_BIND": f"127.0.0.1:{self.port}"}
        self.log, self.app, self.cpus, self.root = log, app, cpus, root
        self.process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def start(self) -> "Gunicorn":
        # No control socket: its default path (~/.gunicorn/gunicorn.ctl) is one per user, shared by every server.
        command = [sys.executable, "-m", "gunicorn", "-c", str(self.root / "gunicorn.conf.py"), "--no-control-socket"]
        command.append(self.app)
        if self.cpus is not None:
            command = [shutil.which("taskset") or "taskset", "-c", self.cpus, *command]
        with self.log.open("ab") as log:
            self.process = subprocess.Popen(  # noqa: S603
                command, cwd=self.root, env=self.env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
            )
        try:
            wait_until(self._healthy, timeout=START_TIMEOUT_SECONDS, what=f"gunicorn on port {self.port}")
        except RuntimeError:
            self.stop()
            raise RuntimeError(f"{self.app} did not start; its log:\n{self.log_tail()}") from None
        return self

    def __enter__(self) -> "Gunicorn":
        return self.start()

    def __exit__(self, *exc_info) -> None:
        self.stop()

    def _healthy(self) -> bool:
        if self.process is None or self.process.poll() is not None:
            raise RuntimeError(f"{self.app} exited at start; its log:\n{self.log_tail()}")
        try:
            return requests.get(f"{self.url}/healthz", timeout=2).status_code == 200
        except requests.RequestException:
            return False

    def cpu_seconds(self) -> float:
        """CPU time used so far by the master and its workers (they share its process group)."""
        return cpu_seconds_of(lambda name, fields: int(fields[2]) == self.pid)

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def worker_pids(self) -> list[int]:
        """The master's children: its workers (gunicorn starts no other processes)."""
        try:
            return [int(pid) for pid in Path(f"/proc/{self.pid}/task/{self.pid}/children").read_text().split()]
        except FileNotFoundError:
            return []

    def kill_random_worker(self) -> int | None:
        """SIGKILL one worker, as the OOM killer would; the master starts a new one. Returns its pid."""
        workers = self.worker_pids()
        if not workers:
            return None
        pid = random.choice(workers)
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            return None
        return pid

    def stop(self) -> None:
        """Graceful stop (in-flight requests finish and commit), then SIGKILL of the whole group."""
        if self.process is None or self.process.poll() is not None:
            return
        try:
            os.killpg(self.process.pid, signal.SIGTERM)
            self.process.wait(timeout=STOP_TIMEOUT_SECONDS)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()
        except ProcessLookupError:
            self.process.wait()

    def log_tail(self, lines: int = 40) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        except FileNotFoundError:
            return "(no log)"
