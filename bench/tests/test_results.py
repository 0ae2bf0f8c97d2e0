"""The benchmark's verdicts: which run stands for B1, how B2/B0-copy is taken from the rounds, and when a target
passes. Figures are made up; what is tested is how the benchmark reads them."""

from bench.config import BATCH_SIZE
from bench.machine import python_loop_seconds
from bench.phases import measure_single_events_at_80
from bench.report import yardstick
from bench.results import Results, Run

from .factories import made_up_results


def _run(phase: str, rate: float, *, p99_ms: float = 10.0, connections: int = 16, **fields) -> Run:
    """A run that answered `rate` requests a second for 10 s."""
    return Run(
        phase=phase,
        name=f"{phase}-c{connections}",
        connections=connections,
        seconds=10.0,
        requests=int(rate * 10),
        p99_ms=p99_ms,
        **fields,
    )


def _batch(rate: float, *, round_number: int, **fields) -> Run:
    """A B2-all run of `rate` events a second."""
    return _run("B2-all", rate / BATCH_SIZE, events_per_request=BATCH_SIZE, round=round_number, **fields)


def _copy(rate: float, *, round_number: int) -> Run:
    """A B0-copy run of `rate` rows a second, in transactions of a batch's size."""
    return _run("B0-copy", rate / BATCH_SIZE, events_per_request=BATCH_SIZE, round=round_number)


def _verdicts(results: Results) -> dict[str, str]:
    return {what.split(" (")[0]: verdict for what, _, _, verdict in results.checks()}


def test_b1_is_the_fastest_run_without_errors_whose_p99_is_within_50_ms():
    results = made_up_results(
        b1=[
            _run("B1", 2_000),
            _run("B1", 3_000, connections=24),
            _run("B1", 3_400, p99_ms=51.0, connections=48),  # faster, but too slow at the tail
            _run("B1", 3_500, errors=3, connections=64),  # faster, but with errors
        ]
    )

    assert results.b1_best.rate == 3_000


def test_b1_over_b0_http_passes_at_045_and_misses_below():
    hello = [_run("B0-http", 6_000), _run("B0-http", 5_000, errors=1)]
    passing = made_up_results(b0_http=hello, b1=[_run("B1", 2_700)])
    missing = made_up_results(b0_http=hello, b1=[_run("B1", 2_650)])

    assert passing.b0_http_rate == 6_000  # the faster hello-world run had errors: it does not count
    assert _verdicts(passing)["B1 / B0-http"] == "PASS"
    assert _verdicts(missing)["B1 / B0-http"] == "MISS"


def test_b2_over_b0_copy_is_the_median_of_the_rounds_each_against_its_own_copy():
    results = made_up_results(
        b0_copy=[
            _copy(80_000, round_number=1),
            _copy(60_000, round_number=1),
            _copy(50_000, round_number=2),
            _copy(70_000, round_number=3),
        ],
        b2_all=[
            _batch(40_000, round_number=1),  # 0.50 of its round's best copy
            _batch(35_000, round_number=2),  # 0.70
            _batch(45_000, round_number=2),  # 0.90: the round's best
            _batch(70_000, round_number=2, errors=1),  # not clean: left out
            _batch(42_000, round_number=3),  # 0.60
        ],
    )

    assert [round(each.ratio, 2) for each in results.rounds_paired()] == [0.5, 0.9, 0.6]
    assert round(results.copy_ratio, 2) == 0.6
    assert round(results.best_against_best, 4) == round(45_000 / 80_000, 4)
    assert _verdicts(results)["B2 / B0-copy"] == "PASS"
    assert results.copy_ratio_text().startswith("0.60 (median of 3 rounds: 0.50, 0.90, 0.60;")


def test_a_round_without_a_clean_b2_run_is_left_out_of_the_median():
    results = made_up_results(
        b0_copy=[_copy(100_000, round_number=1), _copy(100_000, round_number=2)],
        b2_all=[_batch(55_000, round_number=1), _batch(90_000, round_number=2, refused=5)],
    )

    assert [each.number for each in results.rounds_paired()] == [1]
    assert round(results.copy_ratio, 2) == 0.55
    assert _verdicts(results)["B2 / B0-copy"] == "MISS"


def test_the_p99_target_is_judged_on_the_paced_run_nearest_80_percent_of_b1():
    results = made_up_results(
        b1=[_run("B1", 3_000)],
        b1_at_80=[
            _run("B1@80%", 2_100, p99_ms=12.0, think_ms=4.0),  # 70%: too far below
            _run("B1@80%", 2_420, p99_ms=30.0, think_ms=3.0),  # 81%: the one judged
            _run("B1@80%", 2_700, p99_ms=9.0, think_ms=2.0),  # 90%
        ],
    )

    assert results.b1_at_80_run.rate == 2_420
    assert _verdicts(results)["/v1/event p99 at 80% of B1"] == "MISS"


def test_without_a_b1_run_within_50_ms_every_target_on_it_misses():
    results = made_up_results(b0_http=[_run("B0-http", 6_000)], b1=[_run("B1", 3_000, p99_ms=80.0)])

    assert results.b1_best is None
    assert _verdicts(results)["B1 / B0-http"] == "MISS"
    assert _verdicts(results)["/v1/event p99 at 80% of B1"] == "MISS"
    assert "p99 80 ms" in results.b1_fastest


def test_a_paced_run_the_disk_stalled_is_set_aside_and_named_in_the_verdict():
    results = made_up_results(
        b1=[_run("B1", 3_000)],
        b1_at_80=[
            _run("B1@80%", 2_400, p99_ms=413.0, think_ms=2.6, slowest_commit_ms=500.0),  # 80%, but a 500 ms COMMIT
            _run("B1@80%", 2_600, p99_ms=18.0, think_ms=2.4, slowest_commit_ms=25.0),  # 87%; 25 ms is no stall
        ],
    )

    assert results.b1_at_80_run.rate == 2_600
    assert _verdicts(results)["/v1/event p99 at 80% of B1"] == "PASS"
    measured = next(measured for what, measured, _, _ in results.checks() if what.startswith("/v1/event p99"))
    assert "set aside, as the disk stalled: B1@80%-c16: p99 413 ms, COMMIT 500 ms" in measured


def test_when_the_disk_stalled_every_paced_run_the_nearest_is_judged_all_the_same():
    results = made_up_results(
        b1=[_run("B1", 3_000)],
        b1_at_80=[
            _run("B1@80%", 2_400, p99_ms=60.0, think_ms=2.6, slowest_commit_ms=40.0),
            _run("B1@80%", 2_900, p99_ms=20.0, think_ms=1.0, slowest_commit_ms=30.0),
        ],
    )

    assert results.b1_at_80_run.rate == 2_400
    assert _verdicts(results)["/v1/event p99 at 80% of B1"] == "MISS"
    measured = next(measured for what, measured, _, _ in results.checks() if what.startswith("/v1/event p99"))
    assert "the disk stalled in every paced run" in measured


class _PacedWrk:
    """Stands in for wrk in measure_single_events_at_80: answers each paced run with the next prepared
    (rate, slowest COMMIT), and keeps the think time it was asked for."""

    def __init__(self, *answers: tuple[float, float]) -> None:
        self.answers = list(answers)
        self.think_ms: list[float] = []

    def run(self, phase, name, *, connections, think_ms, **_) -> Run:
        self.think_ms.append(think_ms)
        rate, slowest_commit_ms = self.answers.pop(0)
        return _run(phase, rate, connections=connections, think_ms=think_ms, slowest_commit_ms=slowest_commit_ms)


def test_a_stalled_paced_run_is_run_again_without_correcting_the_pace_from_it():
    results = made_up_results(b1=[_run("B1", 3_000, mean_ms=8.0)])
    wrk = _PacedWrk((1_500, 300.0), (2_300, 4.0), (2_390, 4.0))

    measure_single_events_at_80(wrk, results, ("", ""))

    assert [r.rate for r in results.b1_at_80] == [1_500, 2_300, 2_390]  # stopped within 3% of 2,400
    assert wrk.think_ms[0] == wrk.think_ms[1]  # the stalled run's latency was the disk's: no correction
    assert wrk.think_ms[2] < wrk.think_ms[1]  # too slow: corrected
    assert results.b1_at_80_run.rate == 2_390


def test_paced_runs_stop_after_four_unstalled_tries_or_seven_in_all():
    slow_and_steady = made_up_results(b1=[_run("B1", 3_000, mean_ms=8.0)])
    measure_single_events_at_80(_PacedWrk(*[(2_000, 4.0)] * 7), slow_and_steady, ("", ""))
    always_stalled = made_up_results(b1=[_run("B1", 3_000, mean_ms=8.0)])
    measure_single_events_at_80(_PacedWrk(*[(2_400, 90.0)] * 8), always_stalled, ("", ""))

    assert len(slow_and_steady.b1_at_80) == 4
    assert len(always_stalled.b1_at_80) == 7


def test_b1_over_b0_http_is_also_shown_per_connection_count_for_the_runs_back_to_back():
    results = made_up_results(
        b0_http=[_run("B0-http", 6_000, connections=8), _run("B0-http", 4_000, connections=16)],
        b1=[
            _run("B1", 2_400, connections=8),
            _run("B1", 2_000, connections=16, p99_ms=60.0),  # shown: only the target's figure asks p99 <= 50 ms
            _run("B1", 2_500, connections=32),  # no B0-http run at c=32 to pair it with
        ],
    )

    assert results.http_ratios_by_connections() == [(8, 0.4), (16, 0.5)]
    info = next(row for row in results.checks() if row[0].startswith("B1 / B0-http at each"))
    assert info[1:] == ("median 0.45 (c=8 0.40, c=16 0.50)", "none", "INFO")
    assert _verdicts(results)["B1 / B0-http"] == "MISS"  # 2,400 / 6,000: the verdict is the target's figure


def test_the_machine_line_names_how_fast_a_plain_python_loop_ran_when_it_was_measured():
    assert yardstick({"python_loop_seconds": 0.214}) == "; a plain Python loop of 5,000,000 turns took 0.21 s"
    assert yardstick({}) == ""  # figures saved before the yardstick existed


def test_the_python_loop_yardstick_takes_longer_for_more_turns():
    assert 0 < python_loop_seconds(turns=1000) < python_loop_seconds(turns=1_000_000)
