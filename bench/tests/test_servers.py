"""The one gunicorn launcher (chaos.processes.Gunicorn), as the benchmark uses it: another app, a given port,
held to some cores, its CPU time read, and nothing left running once stopped."""

import os
from pathlib import Path

import pytest
import requests

from bench.servers import HELLO_APP, require_free_ports
from chaos.processes import Gunicorn, app_environment, free_port, wait_until

pytestmark = pytest.mark.live


def _group(pgid: int) -> list[int]:
    """The processes of process group `pgid` still alive (not zombies)."""
    members = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rpartition(")")[2].split()
        except OSError:
            continue
        if int(fields[2]) == pgid and fields[0] != "Z":
            members.append(int(stat.parent.name))
    return members


def test_a_pinned_server_runs_every_process_on_its_cores_and_leaves_none_behind(tmp_path):
    env = app_environment(database_url="postgres://unused/bench", redis_url="redis://unused/1", workers=2)
    port = free_port()
    server = Gunicorn(env, log=tmp_path / "gunicorn.log", app=HELLO_APP, port=port, cpus="0")

    with server:
        assert requests.post(f"http://127.0.0.1:{port}/v1/event", data=b"{}", timeout=10).json() == {
            "id": 1,
            "duplicate": False,
        }
        # The master and two workers: the second may still be starting when the first has answered.
        wait_until(lambda: len(_group(server.pid)) == 3, timeout=30, what="the second worker")
        processes = _group(server.pid)
        assert all(os.sched_getaffinity(pid) == {0} for pid in processes)
        assert server.cpu_seconds() > 0
        with pytest.raises(SystemExit, match=f"Port {port} is in use"):
            require_free_ports(port)

    assert _group(server.pid) == []
