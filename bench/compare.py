"""`make compare BASELINE=<rev>`: the server CPU per request of the working tree against another revision, by
turns in one run.

The baseline is checked out in a detached git worktree under var/compare/. Each side gets its own database
migrated and seeded by its own code (chaos.processes.migrate_and_create_token of that checkout), its own Redis
db and its own gunicorn, pinned to the same core as the other's, with wrk on the other core. In each round both
servers start afresh, and /v1/event and /v1/batch are loaded by each side in turn (base, head; then head, base;
...), so that a slow minute on a shared machine falls on both sides. The table gives each side's median CPU per
request and the median of the rounds' head/base ratios; requests per second are beside it, but on a shared
machine only the CPU is fair.
"""

import argparse
import json
import os
import shutil
import statistics
import sys
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from datetime import UTC, datetime
from itertools import groupby
from pathlib import Path
from typing import NamedTuple

from chaos.processes import Gunicorn, NewToken, run

from .config import BATCH_SIZE, ROOT
from .machine import cpu_list
from .payloads import batch_item_template, event_template
from .phases import WARMUP_SECONDS
from .results import Run
from .servers import CANVAS_APP, bench_environment, reset_stores
from .wrk import Wrk

WORK_DIR = ROOT / "var" / "compare"
SIDES = ("base", "head")
STORES = {  # the comparison's own databases and Redis dbs, never the development or test ones
    "base": ("postgres://postgres@127.0.0.1:5432/canvas_compare_base", "redis://127.0.0.1:6379/7"),
    "head": ("postgres://postgres@127.0.0.1:5432/canvas_compare_head", "redis://127.0.0.1:6379/8"),
}
ENDPOINTS = ("/v1/event", "/v1/batch")
THREADS = 32  # gunicorn.conf.py's default

# Run in the side's checkout, so that its own migrations and its own token service make the team and token.
MIGRATE_AND_SEED = (
    "import json, os; from chaos.processes import migrate_and_create_token; "
    "print(json.dumps(migrate_and_create_token(dict(os.environ), who='compare')))"
)


def schedule(rounds: int) -> list[tuple[int, str, str]]:
    """(round, endpoint, side) in the order they run: in odd rounds base goes first, in even rounds head, so that
    each side meets as many turns first as second."""
    turns = []
    for number in range(1, rounds + 1):
        sides = SIDES if number % 2 else SIDES[::-1]
        turns += [(number, endpoint, side) for endpoint in ENDPOINTS for side in sides]
    return turns


def summary(measured: dict[tuple[int, str, str], Run]) -> list[str]:
    """The table: per endpoint, each side's median CPU per request and req/s, and the median and range of the
    rounds' head/base ratios of CPU per request."""
    lines = [
        f"{'endpoint':<10} {'base CPU':>10} {'head CPU':>10} {'head/base':>9} {'(min-max)':>11}"
        f" {'base req/s':>11} {'head req/s':>11}"
    ]
    rounds = sorted({number for number, _, _ in measured})
    for endpoint in ENDPOINTS:
        runs = {side: [measured[number, endpoint, side] for number in rounds] for side in SIDES}
        ratios = [head.server_cpu_ms / base.server_cpu_ms for base, head in zip(*runs.values(), strict=True)]
        cpu = {side: statistics.median(run.server_cpu_ms for run in runs[side]) for side in SIDES}
        rate = {side: statistics.median(run.rate for run in runs[side]) for side in SIDES}
        lines.append(
            f"{endpoint:<10} {cpu['base']:7.3f} ms {cpu['head']:7.3f} ms {statistics.median(ratios):9.3f}"
            f" {f'({min(ratios):.2f}-{max(ratios):.2f})':>11} {rate['base']:11.0f} {rate['head']:11.0f}"
        )
    return lines


def parse_arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.compare", description=__doc__.split("\n\n")[0])
    add = parser.add_argument
    add("baseline", help="the git revision to compare the working tree against")
    add("--rounds", type=int, default=4, help="rounds of both endpoints on both sides (4)")
    add("--duration", type=int, default=10, help="seconds per wrk run (10)")
    add("--connections", type=int, default=16, help="wrk connections for /v1/event (16)")
    add("--batch-connections", type=int, default=4, help=f"wrk connections for /v1/batch of {BATCH_SIZE} (4)")
    add("--together", action="store_true", help="load both servers at once, each with its own wrk, not by turns")
    add("--server-cpus", default="1", help="taskset list for both servers (1)")
    add("--client-cpus", default="0", help="taskset list for wrk (0)")
    return parser.parse_args()


def check_out(revision: str) -> Path:
    """A detached worktree of `revision` under var/compare/, made afresh."""
    path = WORK_DIR / "baseline"
    if path.exists():
        run(["git", "worktree", "remove", "--force", path], cwd=ROOT, check=False)
    shutil.rmtree(path, ignore_errors=True)
    # --force: a worktree of an earlier run whose directory is gone is still registered under this path.
    run(["git", "worktree", "add", "--force", "--detach", "--quiet", path, revision], cwd=ROOT)
    return path


def prepare_stores(side: str, root: Path, workers: int) -> tuple[dict[str, str], NewToken]:
    """The side's fresh database and Redis db, migrated by the side's own code, with a team and a token."""
    database_url, redis_url = STORES[side]
    reset_stores(database_url, redis_url)
    env = bench_environment(workers, THREADS, database_url=database_url, redis_url=redis_url)
    result = run(
        [sys.executable, "-c", MIGRATE_AND_SEED], cwd=root, env=env, capture_output=True, text=True, check=False
    )
    if result.returncode:  # e.g. a baseline older than chaos.processes.migrate_and_create_token
        raise SystemExit(f"Preparing {side} ({root}) failed:\n{result.stderr[-3000:]}")
    return env, NewToken(*json.loads(result.stdout.splitlines()[-1]))


class Side(NamedTuple):
    root: Path  # the checkout whose code the side runs
    env: dict[str, str]
    log: Path
    wrk: Wrk


def prepare_side(side: str, root: Path, arguments: argparse.Namespace, ids_dir: Path) -> Side:
    """The side's stores, migrated by its own code, and a wrk with its token."""
    env, token = prepare_stores(side, root, workers=len(cpu_list(arguments.server_cpus)))
    log = WORK_DIR / f"{side}.log"
    log.unlink(missing_ok=True)
    wrk = Wrk(port=0, token=token.plaintext, cpus=arguments.client_cpus, seconds=arguments.duration, ids_dir=ids_dir)
    return Side(root, env, log, wrk)  # each round's server sets the wrk's port and server


def measure(sides: dict[str, Side], arguments: argparse.Namespace, templates: dict[str, tuple[str, str]]) -> dict:
    """Round by round: both servers started afresh, in the round's order, and warmed up on each endpoint, then
    the round's turns. A server keeps its luck for life (docs/performance.md#how-changes-are-compared), so each
    round draws it again. A run with errors or refusals stops the comparison."""
    loads = {
        "/v1/event": {"mode": "event", "template": templates["event"], "connections": arguments.connections},
        "/v1/batch": {"mode": "batch", "template": templates["batch"], "connections": arguments.batch_connections},
    }
    measured = {}
    for number, turns in groupby(schedule(arguments.rounds), key=lambda turn: turn[0]):
        turns = list(turns)
        order = [side for _, endpoint, side in turns if endpoint == ENDPOINTS[0]]
        with ExitStack() as running:
            for name in order:
                side = sides[name]
                server = Gunicorn(side.env, log=side.log, app=CANVAS_APP, cpus=arguments.server_cpus, root=side.root)
                side.wrk.server, side.wrk.port = running.enter_context(server), server.port
            for endpoint in ENDPOINTS:
                for name in order:
                    warmup = f"{name}-{endpoint[4:]}-w{number}"
                    sides[name].wrk.run("warmup", warmup, path=endpoint, seconds=WARMUP_SECONDS, **loads[endpoint])
            for endpoint in ENDPOINTS:
                names = [name for _, each, name in turns if each == endpoint]
                label = f"{endpoint[4:]}-r{number}"
                # By turns, or with --together both at once (each under its own wrk), in the round's order.
                with ThreadPoolExecutor(max_workers=2 if arguments.together else 1) as pool:
                    runs = [
                        pool.submit(sides[name].wrk.run, name, f"{name}-{label}", path=endpoint, **loads[endpoint])
                        for name in names
                    ]
                for name, done in zip(names, (run.result() for run in runs), strict=True):
                    if not done.clean or not done.requests:
                        raise SystemExit(f"{name} answered {endpoint} with errors or refusals; see {sides[name].log}")
                    measured[number, endpoint, name] = done
    return measured


def main() -> int:
    arguments = parse_arguments()
    sys.stdout.reconfigure(line_buffering=True)
    if shutil.which("wrk") is None:
        raise SystemExit("wrk is not installed: `apt-get install -y wrk` (make compare does it).")
    os.sched_setaffinity(0, cpu_list(arguments.client_cpus))  # this script and wrk stay off the servers' core
    ids_dir = WORK_DIR / "ids"
    shutil.rmtree(ids_dir, ignore_errors=True)
    ids_dir.mkdir(parents=True)
    timestamp = datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    templates = {"event": event_template(timestamp), "batch": batch_item_template(timestamp)}
    roots = {"base": check_out(arguments.baseline), "head": ROOT}
    try:
        sides = {side: prepare_side(side, roots[side], arguments, ids_dir) for side in SIDES}
        print(
            f"base {arguments.baseline} against head (the working tree), both servers on cpu{arguments.server_cpus},"
            f" wrk on cpu{arguments.client_cpus}; load average {os.getloadavg()[0]:.2f}"
        )
        measured = measure(sides, arguments, templates)
    finally:
        run(["git", "worktree", "remove", "--force", roots["base"]], cwd=ROOT, check=False)
    print(f"\nServer CPU per request, median of {arguments.rounds} rounds of {arguments.duration} s each:")
    print("\n".join(summary(measured)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
