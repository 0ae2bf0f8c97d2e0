"""What a wrk run's figures are made of: bench/ingest.lua's counts and wrk's latency, as a Run reads them."""

from bench.wrk import _answers_and_latency

LUA_RESULT = {
    "requests": 1000,
    "duration_us": 2_000_000,
    "acknowledged": 990,
    "refused": 4,
    "duplicates": 1,
    "errors": {"connect": 1, "read": 2, "write": 0, "timeout": 3, "status": 4},
    "latency_us": {"p50": 1500, "p90": 4000, "p99": 9000, "p999": 20000, "max": 31000, "mean": 2100},
}


def test_non_2xx_answers_are_refusals_not_socket_errors():
    fields = _answers_and_latency(LUA_RESULT)

    assert fields["errors"] == 6  # connect, read and timeout; wrk's status count is ingest.lua's refused
    assert fields["refused"] == 4
    assert (fields["acknowledged"], fields["duplicates"]) == (990, 1)


def test_latency_percentiles_are_read_in_milliseconds():
    fields = _answers_and_latency(LUA_RESULT)

    assert (fields["p50_ms"], fields["p99_ms"], fields["max_ms"], fields["mean_ms"]) == (1.5, 9.0, 31.0, 2.1)
