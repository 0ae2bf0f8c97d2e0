"""Benchmark results as bench.run builds them, with made-up runs."""

from bench.results import Results


def made_up_results(**runs) -> Results:
    """A run's Results on this machine's layout (server on cpu1, wrk on cpu0), holding `runs` (b1=[...], ...)."""
    made = Results(
        started_at="2026-11-27T10:00:00Z",
        machine={},
        server_cpus="1",
        client_cpus="0",
        workers=1,
        threads=32,
        event_bytes=330,
        batch_item_bytes=300,
        duration=10,
        load_before=(0.5, 0.5, 0.5),
        all_cpus="0-1",
        rounds=3,
    )
    for name, value in runs.items():
        setattr(made, name, value)
    return made
