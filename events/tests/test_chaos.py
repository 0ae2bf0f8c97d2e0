"""Short versions of `make chaos` (chaos/run.py): while gunicorn workers are SIGKILLed and PostgreSQL crashes or
freezes, no acknowledged event is lost or stored twice, no request gets a 500, and the service comes back by
itself.

Each run uses a throwaway PostgreSQL cluster and a redis-server of its own, never the shared ones, and removes
them (and gunicorn, and its temporary directory) before returning, passed or failed.
"""

import shutil

import pytest

from chaos.processes import PG_BIN
from chaos.run import ChaosConfig, ChaosReport, run_chaos

pytestmark = [
    pytest.mark.live,
    pytest.mark.skipif(
        not (PG_BIN / "initdb").exists() or shutil.which("redis-server") is None,
        reason=f"needs PostgreSQL 15 binaries in {PG_BIN} (CHAOS_PG_BIN) and redis-server",
    ),
]

SHORT_RUN = ChaosConfig(duration=10, outages=1, down_seconds=3, kill_interval=2.5, clients=8, drain_seconds=30)
# A freeze must outlast the group committer's 30 s wait (events/ingest/group_commit.py RESULT_TIMEOUT_SECONDS) to show
# what a request answers when the database hangs instead of failing.
FROZEN_RUN = ChaosConfig(
    duration=33, outages=0, stalls=1, stall_seconds=31, kill_interval=0, clients=4, drain_seconds=60
)


def test_no_acknowledged_event_is_lost_while_workers_are_killed_and_postgres_crashes():
    report = run_chaos(SHORT_RUN)
    print(report.render())

    assert report.violations() == [], report.render()
    assert report.sent == report.acknowledged == report.stored
    assert report.workers_killed >= 2


@pytest.fixture(scope="module")
def frozen_run() -> ChaosReport:
    report = run_chaos(FROZEN_RUN)
    print(report.render())
    return report


def test_no_acknowledged_event_is_lost_while_postgres_is_frozen(frozen_run):
    report = frozen_run

    assert (report.missing, report.duplicates, report.never_sent, report.wrong_ids) == (0, 0, 0, 0), report.render()
    assert report.unacknowledged == 0, report.render()
    assert report.sent == report.acknowledged == report.stored
    [outage] = report.outages
    assert outage.recovery_seconds is not None and outage.recovery_seconds < 10, report.render()
    assert report.master_survived and report.ready_at_end and not report.final_refused


def test_a_frozen_postgres_is_answered_with_503_not_500(frozen_run):
    assert frozen_run.server_errors == 0, frozen_run.render()
    assert frozen_run.statuses[503] > 0
