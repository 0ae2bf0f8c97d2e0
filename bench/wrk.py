"""wrk (Debian's, closed loop) against one server, pinned to the load generator's cores. bench/ingest.lua builds
every body, counts non-2xx answers and writes down the ids the server acknowledged; each run becomes a `Run`,
with the server's and PostgreSQL's CPU time per request read around it."""

import json
import os
import shutil
import time
from pathlib import Path

from chaos.processes import Gunicorn, run

from .config import BATCH_SIZE, LUA_SCRIPT, ROOT
from .machine import CommitWatch, core_busy, core_ticks, cpu_list, database_cpu_seconds
from .results import Run


class Wrk:
    def __init__(self, *, port: int, token: str, cpus: str, seconds: int, ids_dir: Path):
        self.port, self.token, self.cpus, self.seconds, self.ids_dir = port, token, cpus, seconds, ids_dir
        self.threads = len(cpu_list(cpus))
        self.server: Gunicorn | None = None  # the server under test, whose CPU time each run reads
        self.commits: CommitWatch | None = None

    def run(
        self,
        phase: str,
        name: str,
        *,
        path: str,
        mode: str,
        template: tuple[str, str],
        connections: int,
        think_ms: float = 0.0,
        seconds: int | None = None,
    ) -> Run:
        """One wrk run; `mode` is ingest.lua's: "event", "batch" or "hello" (an event body, answer not read)."""
        assert self.server is not None, "set Wrk.server to the server under test first"
        seconds = seconds or self.seconds
        events_per_request = BATCH_SIZE if mode == "batch" else 1
        command = self._command(path, mode, name, template, connections, think_ms, seconds, events_per_request)
        cpu_before, database_before, cores_before = self.server.cpu_seconds(), database_cpu_seconds(), core_ticks()
        started = time.monotonic()
        env = {**os.environ, "BENCH_TOKEN": self.token}
        output = run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=seconds + 60).stdout
        slowest_commit_ms = self.commits.slowest_ms(started, time.monotonic()) if self.commits else 0.0
        raw = _wrk_result(output)
        requests = raw["requests"]
        measured = Run(
            phase=phase,
            name=name,
            connections=connections,
            seconds=raw["duration_us"] / 1e6,
            requests=requests,
            events_per_request=events_per_request,
            think_ms=think_ms,
            server_cpu_ms=(self.server.cpu_seconds() - cpu_before) * 1000 / requests if requests else 0.0,
            database_cpu_ms=(database_cpu_seconds() - database_before) * 1000 / requests if requests else 0.0,
            core_busy=core_busy(cores_before, core_ticks()),
            slowest_commit_ms=slowest_commit_ms,
            **_answers_and_latency(raw),
        )
        print(measured.line())
        return measured

    def _command(self, path, mode, name, template, connections, think_ms, seconds, events_per_request) -> list[str]:
        threads = min(self.threads, connections)
        command = [shutil.which("taskset") or "taskset", "-c", self.cpus, shutil.which("wrk") or "wrk"]
        command += [f"-t{threads}", f"-c{connections}", f"-d{seconds}s", "--timeout", "5s", "-s", str(LUA_SCRIPT)]
        command += [f"http://127.0.0.1:{self.port}{path}", "--", mode, name, *template]
        return [*command, str(events_per_request), f"{think_ms:.3f}", str(self.ids_dir)]


def _wrk_result(output: str) -> dict:
    """The BENCH_RESULT line ingest.lua prints when wrk is done."""
    line = next((line for line in output.splitlines() if line.startswith("BENCH_RESULT ")), None)
    if line is None:
        raise RuntimeError(f"wrk printed no result:\n{output}")
    return json.loads(line.removeprefix("BENCH_RESULT "))


def _answers_and_latency(raw: dict) -> dict:
    """Run's fields from ingest.lua's counts and wrk's latency percentiles (microseconds)."""
    latency = raw["latency_us"]
    return {
        "acknowledged": raw["acknowledged"],
        "errors": sum(raw["errors"].values()) - raw["errors"]["status"],  # status errors are counted as refused
        "refused": raw["refused"],
        "duplicates": raw["duplicates"],
        **{f"{name}_ms": latency[name] / 1000 for name in ("p50", "p90", "p99", "p999", "max", "mean")},
    }
