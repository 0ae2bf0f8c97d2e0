"""The page `make bench` writes (and `make bench-publish` copies to docs/benchmarks.md): the results, the chart
and a short method, every figure and verdict of the run, and no more than a screen of prose."""

from bench.config import BATCH_SIZE, PUBLISHED_REPORT, REPORT, WORK_DIR
from bench.report import write_report
from bench.results import Run

from .factories import made_up_results

MACHINE = {"commit": "abc1234", "cores": 2, "cpu": "Test CPU", "memory_gib": 8, "kernel": "6", "python": "3",
           "postgres": "15", "redis": "7", "wrk": "wrk 4.1", "python_loop_seconds": 0.14}  # fmt: skip


def _run(phase: str, rate: float, *, connections: int = 16, **fields) -> Run:
    return Run(phase=phase, name=f"{phase}-c{connections}", connections=connections, seconds=10.0,
               requests=int(rate * 10), p99_ms=10.0, server_cpu_ms=0.3, **fields)  # fmt: skip


def _measured():
    batch = {"events_per_request": BATCH_SIZE, "database_cpu_ms": 2.0, "round": 1}
    results = made_up_results(
        machine=MACHINE,
        load_after=(1.0, 1.0, 1.0),
        b0_http=[_run("B0-http", 6_000)],
        b1=[_run("B1", 3_000)],
        b1_at_80=[_run("B1@80%", 2_400, think_ms=3.0)],
        b0_copy=[_run("B0-copy", 600, **batch)],
        b2_all=[_run("B2-all", 400, **batch)],
        b2=[_run("B2", 300, **batch)],
    )
    results.reconciliation = {
        "missing": 0,
        "rows_counted": 123_456,
        "B1": {"acknowledged": 10, "ids": 10, "found": 10, "rows": 10},
        "B2": {"acknowledged": 20, "ids": 20, "found": 20, "rows": 21},
    }
    return results


def test_the_report_holds_every_verdict_the_chart_and_every_run(tmp_path):
    results = _measured()
    write_report(results, tmp_path / "benchmarks.md")
    page = (tmp_path / "benchmarks.md").read_text()

    for what, measured, target, verdict in results.checks():
        assert f"| {what} | {measured} | {target} | **{verdict}** |" in page
    assert "![Throughput against the baselines, and /v1/event latency against rate](benchmarks.png)" in page
    assert "| B1-c16 | 16 | 3,000 |" in page
    assert "| B2-all-c16 | 16 | 400 | 40,000 |" in page
    assert "Where the time goes" in page  # the figures computed from this run's CPU times
    assert "missing acknowledged events: 0" in page


def test_the_report_has_at_most_a_screen_of_prose(tmp_path):
    write_report(_measured(), tmp_path / "benchmarks.md")
    page = (tmp_path / "benchmarks.md").read_text()

    prose = [line for line in page.splitlines() if line and not line.startswith(("|", "#", "!"))]
    # About 30 lines of 110 characters: a real run's longer machine line and analysis make it about one screen.
    assert sum(len(line) for line in prose) < 3_300
    assert "Tried and measured, not kept" not in page  # design decisions live in docs/performance.md


def test_a_run_writes_under_var_and_only_publishing_touches_docs():
    assert REPORT.parent == WORK_DIR
    assert PUBLISHED_REPORT.parent.name == "docs"
