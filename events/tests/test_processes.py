"""The processes that run Canvas Events: Procfile (production), Procfile.dev (`make run`, through honcho), and
the warehouse sync's `--watch` loop that both run beside the web server."""

import io
import shlex
import time
from pathlib import Path
from types import SimpleNamespace

import pytest
from django.core.management import call_command, get_commands, load_command_class

from events.management.commands import sync_warehouse
from events.models import CatalogEvent
from events.tests.event_factories import store_event

ROOT = Path(__file__).resolve().parents[2]


def _processes(procfile: str) -> dict[str, list[str]]:
    """{process name: its command's words}, as honcho reads the file (comments and blank lines skipped)."""
    processes = {}
    for line in (ROOT / procfile).read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            name, command = line.split(":", 1)
            processes[name.strip()] = shlex.split(command)
    return processes


@pytest.mark.parametrize("procfile", ["Procfile", "Procfile.dev"])
def test_every_manage_py_process_names_a_command_and_options_it_has(procfile):
    processes = _processes(procfile)
    commands = get_commands()
    managed = [words for words in processes.values() if words[:2] == ["python", "manage.py"]]
    assert managed, procfile
    for words in managed:
        name, *arguments = words[2:]
        assert name in commands, words
        command = load_command_class(commands[name], name)
        # "$HOST:$PORT" is filled in by the shell honcho runs it in.
        command.create_parser("manage.py", name).parse_args(
            [a.replace("$HOST:$PORT", "127.0.0.1:8000") for a in arguments]
        )


def test_production_runs_gunicorn_with_its_config_and_the_sync_beside_it():
    processes = _processes("Procfile")
    assert processes["web"] == ["gunicorn", "-c", "gunicorn.conf.py", "canvas.wsgi:application"]
    assert (ROOT / "gunicorn.conf.py").is_file()
    assert processes["sync"] == ["python", "manage.py", "sync_warehouse", "--watch"]
    assert _processes("Procfile.dev")["sync"] == processes["sync"]  # make run syncs as production does


class _Stop(Exception):
    """Ends the --watch loop from its sleep, after the passes a test wants."""


def test_watch_syncs_again_every_interval(acme, monkeypatch):
    store_event(acme, "Signed Up")
    naps: list[float] = []

    def nap(seconds: float) -> None:
        naps.append(seconds)
        if len(naps) == 1:
            store_event(acme, "Order Completed")  # arrives while the loop sleeps: the next pass adds it
        else:
            raise _Stop

    # The command's own clock only: other threads (the metrics writer, group commit) keep the real time.sleep.
    monkeypatch.setattr(sync_warehouse, "time", SimpleNamespace(monotonic=time.monotonic, sleep=nap))
    with pytest.raises(_Stop):
        call_command("sync_warehouse", "--watch", "--interval", "0.5", stdout=io.StringIO())

    assert naps == [0.5, 0.5]
    assert set(CatalogEvent.objects.filter(team=acme).values_list("name", "count")) == {
        ("Signed Up", 1),
        ("Order Completed", 1),
    }
