"""bench/compare.py's arithmetic: the order of the turns, and the table read from made-up runs."""

from bench.compare import schedule, summary
from bench.results import Run


def _run(side: str, cpu_ms: float, rate: float) -> Run:
    return Run(phase=side, name=side, connections=16, seconds=10.0, requests=int(rate * 10), server_cpu_ms=cpu_ms)


def test_each_side_goes_first_in_every_other_round():
    assert schedule(2) == [
        (1, "/v1/event", "base"),
        (1, "/v1/event", "head"),
        (1, "/v1/batch", "base"),
        (1, "/v1/batch", "head"),
        (2, "/v1/event", "head"),
        (2, "/v1/event", "base"),
        (2, "/v1/batch", "head"),
        (2, "/v1/batch", "base"),
    ]


def test_the_ratio_is_the_median_of_each_rounds_ratio_not_the_ratio_of_medians():
    # Round 2 ran slow on both sides: its ratio is still 1.0. The ratio of medians would be 1.5 / 1.0.
    cpu = {1: (1.0, 1.1), 2: (2.0, 2.0), 3: (1.0, 1.0)}
    measured = {}
    for number, (base, head) in cpu.items():
        for endpoint in ("/v1/event", "/v1/batch"):
            measured[number, endpoint, "base"] = _run("base", base, rate=400)
            measured[number, endpoint, "head"] = _run("head", head, rate=300)

    header, event, batch = summary(measured)

    assert header.split()[:3] == ["endpoint", "base", "CPU"]
    assert event.split() == ["/v1/event", "1.000", "ms", "1.100", "ms", "1.000", "(1.00-1.10)", "400", "300"]
    assert batch.split()[0] == "/v1/batch"
