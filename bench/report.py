"""The benchmark's report: var/bench/benchmarks.md (published to docs/benchmarks.md by `make bench-publish`), and
the same figures on the console. The page is the results, the chart and a short method; why the code is built as
it is, with the measurements behind it, is in docs/performance.md."""

from pathlib import Path

from .config import BATCH_SIZE
from .machine import LOOP_TURNS, cores_text
from .phases import PACED_RUNS, WARMUP_SECONDS
from .reconcile import PHASE_PREFIXES
from .results import DISK_STALL_MS, MAX_P99_MS, Results, Run


def write_report(results: Results, path: Path) -> None:
    lines = [
        *_header(results),
        *_figures(results),
        *_targets(results),
        "![Throughput against the baselines, and /v1/event latency against rate](benchmarks.png)",
        "",
        *_where_the_time_goes(results),
        *_method(results),
        *_every_run(results),
    ]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines))


def yardstick(machine: dict) -> str:
    seconds = machine.get("python_loop_seconds")  # absent from the figures of runs before it was measured
    return f"; a plain Python loop of {LOOP_TURNS:,} turns took {seconds:.2f} s" if seconds else ""


def _header(results: Results) -> list[str]:
    machine = results.machine
    every_core = (
        f" B2's figure is taken with the server on every core (cpu{results.all_cpus}, {results.all_workers} "
        f"workers), as B0-copy's PostgreSQL; the pinned B2 is shown beside it."
        if results.b2_all
        else ""
    )
    return [
        "# Benchmarks",
        "",
        "The last published run of `make bench` (CONTRIBUTING.md), on a machine shared with other work: throughput,",
        "and so the ratios, can move by a factor of two between runs; server CPU per request barely moves. Why the",
        "code is built as it is, with the measurements behind it: [performance.md](performance.md).",
        "",
        f"- **Date**: {results.started_at} (UTC); code at {machine['commit']}",
        f"- **Machine**: {machine['cores']} cores ({machine['cpu']}{yardstick(machine)}), {machine['memory_gib']} "
        f"GiB, Linux {machine['kernel']}, Python {machine['python']}, PostgreSQL {machine['postgres']}, Redis "
        f"{machine['redis']}, {machine['wrk']}",
        f"- **Cores**: server {cores_text(results.server_cpus)} (cpu{results.server_cpus}: gunicorn's buffering "
        f"gthread worker, {results.workers} worker(s) x {results.threads} threads); load generator "
        f"{cores_text(results.client_cpus)} (cpu{results.client_cpus}: wrk, the COPY client, the driver). "
        f"PostgreSQL and Redis share the machine, unpinned.{every_core}",
        f"- **Disk**: a COMMIT that flushes the WAL takes {results.commit_ms:.1f} ms (median of 200); the slowest "
        f"of a COMMIT every 20 ms all through the run took {results.slowest_commit_ms:,.0f} ms.",
        f"- **Load average** (1, 5, 15 min) before: {', '.join(f'{x:.2f}' for x in results.load_before)}; after: "
        f"{', '.join(f'{x:.2f}' for x in results.load_after)}.",
        f"- **Event**: {results.event_bytes} bytes as a /v1/event body; {results.batch_item_bytes} bytes as a "
        "/v1/batch item (Segment `track` with `userId`); each with a unique `messageId`.",
        "",
    ]


def _figures(results: Results) -> list[str]:
    best, at_80, rec = results.b1_best, results.b1_at_80_run, results.reconciliation
    b1 = "highest rate with p99 <= 50 ms, no error"
    b2 = "not measured: " + results.b2_skipped if results.b2_skipped else f"{results.b2_rate:,.0f} events/s"
    if results.b2_all:
        pinned = f"{results.b2_pinned_rate:,.0f} events/s with it on cpu{results.server_cpus}"
        b2 += f" with the server on every core; {pinned}"
    return [
        "## Results",
        "",
        "| figure | value |",
        "| --- | --- |",
        f"| B0-http: hello-world WSGI, same gunicorn config | {results.b0_http_rate:,.0f} requests/s |",
        f"| B0-copy: psycopg COPY into events_event, {BATCH_SIZE} rows per transaction | "
        f"{results.b0_copy_rate:,.0f} rows/s |",
        f"| B1: /v1/event, {b1} | {best.rate:,.0f} requests/s (c={best.connections}; p50 {best.p50_ms:.1f} ms, "
        f"p99 {best.p99_ms:.1f} ms) |"
        if best
        else f"| B1: /v1/event, {b1} | none met it ({results.b1_fastest}) |",
        f"| /v1/event at ~80% of B1 | {at_80.rate:,.0f} requests/s: p50 {at_80.p50_ms:.1f} ms, "
        f"p99 {at_80.p99_ms:.1f} ms |"
        if at_80
        else "| /v1/event at ~80% of B1 | not measured |",
        f"| B2: /v1/batch, {BATCH_SIZE} events per request | {b2} |",
        f"| Server CPU per request (not a target: the cost that noise barely moves) | {results.cpu_per_request()} |",
        f"| Rows counted after the runs | {rec['rows_counted']:,} (missing acknowledged events: {rec['missing']}) |",
        "",
    ]


def _targets(results: Results) -> list[str]:
    return [
        "| target (issue 5, this 2-core machine) | measured | target | |",
        "| --- | --- | --- | --- |",
        *[
            f"| {what} | {measured} | {target} | **{verdict}** |"
            for what, measured, target, verdict in results.checks()
        ],
        "",
    ]


def _where_the_time_goes(results: Results) -> list[str]:
    lines = results.where_the_time_goes()
    return ["## Where the time goes", "", *[f"- {line}" for line in lines], ""] if lines else []


def _method(results: Results) -> list[str]:
    b1_counts = ", ".join(str(r.connections) for r in results.b1)
    return [
        "## Method",
        "",
        "- A fresh database and Redis db of the benchmark's own; `gunicorn -c gunicorn.conf.py` with the production "
        "settings (the per-token rate limit out of the way) under `taskset`; wrk (closed loop, keep-alive) and the "
        "COPY client on the other cores.",
        f"- B0-http (bench/hello_wsgi.py, same config) and B1 by turns at each connection count ({b1_counts}), "
        f"{results.duration} s each after a {WARMUP_SECONDS} s warm-up. The 80% run paces connections with random "
        f"think times, corrected to within 3%; one during which a COMMIT took over {DISK_STALL_MS:.0f} ms is run "
        f"again (up to {PACED_RUNS} in all).",
        f"- B0-copy (psycopg COPY, text and binary, from 1, 2 and 4 connections) in {results.rounds} round(s), each "
        "right before B2 on every core, its rows then deleted; B2/B0-copy is the median of the rounds' ratios.",
        "- Server CPU per request: user + system time of gunicorn's processes (/proc) over a run, per request.",
        "- Every acknowledged id is then looked up in events_event: a missing one fails `make bench`.",
        "",
    ]


def _every_run(results: Results) -> list[str]:
    lines = [
        "## Every run",
        "",
        "B0-http (the ratio uses the highest rate without errors):",
        "",
        *_table(results.b0_http),
    ]
    lines += [
        "",
        "B0-copy:",
        "",
        "| run | concurrent connections | rows/s | PostgreSQL CPU us/row |",
        "| --- | --- | --- | --- |",
    ]
    lines += [
        f"| {r.name} | {r.connections} | {r.events_rate:,.0f} | {r.database_cpu_ms / BATCH_SIZE * 1000:.1f} |"
        for r in results.b0_copy
    ]
    lines += ["", *_rounds_table(results), "B1, closed loop, then paced at ~80% of the best rate:", ""]
    lines += [*_table(results.b1 + results.b1_at_80), ""]
    if results.b2_skipped:
        lines += [f"B2: {results.b2_skipped}.", ""]
    else:
        lines += [f"B2, the server on cpu{results.server_cpus}:", "", *_table(results.b2, events=True), ""]
        if results.b2_all:
            lines += [f"B2, the server on every core (cpu{results.all_cpus}, {results.all_workers} workers):", ""]
            lines += [*_table(results.b2_all, events=True), ""]
    return [*lines, _reconciliation(results), ""]


def _table(runs: list[Run], *, events: bool = False) -> list[str]:
    header = "| run | connections | requests/s | " + ("events/s | " if events else "")
    header += "p50 ms | p90 ms | p99 ms | max ms | server CPU ms/request | PostgreSQL CPU ms/request | "
    header += "slowest COMMIT ms | errors / non-2xx |"
    lines = [header, "|" + " --- |" * (header.count("|") - 1)]
    for run in runs:
        cells = [run.name, str(run.connections) + (f" (think {run.think_ms:.1f} ms)" if run.think_ms else "")]
        cells.append(f"{run.rate:,.0f}")
        if events:
            cells.append(f"{run.events_rate:,.0f}")
        cells += [f"{run.p50_ms:.1f}", f"{run.p90_ms:.1f}", f"{run.p99_ms:.1f}", f"{run.max_ms:.1f}"]
        cells += [f"{run.server_cpu_ms:.2f}", f"{run.database_cpu_ms:.2f}", f"{run.slowest_commit_ms:.1f}"]
        cells.append(f"{run.errors} / {run.refused}")
        lines.append("| " + " | ".join(cells) + " |")
    return lines


def _rounds_table(results: Results) -> list[str]:
    """Each round's best B0-copy and best B2 run on every core, and their ratio."""
    paired = results.rounds_paired()
    if not paired:
        return []
    lines = [
        "B2 / B0-copy by round (B2/B0-copy is the median of the ratios):",
        "",
        "| round | B0-copy rows/s (best run) | B2 events/s, server on every core (best run) | ratio | slowest COMMIT "
        "ms in the round's B2 runs |",
        "| --- | --- | --- | --- | --- |",
    ]
    for one in paired:
        slowest = max(r.slowest_commit_ms for r in results.b2_all if r.round == one.number)
        lines.append(
            f"| {one.number} | {one.copy.events_rate:,.0f} ({one.copy.name}) | {one.batch.events_rate:,.0f} "
            f"({one.batch.name}) | {one.ratio:.2f} | {slowest:,.1f} |"
        )
    return [*lines, ""]


def _reconciliation(results: Results) -> str:
    rec = results.reconciliation
    each = " ".join(
        f"{phase}: {rec[phase]['acknowledged']:,} events acknowledged as stored, {rec[phase]['ids']:,} ids "
        f"recorded, {rec[phase]['found']:,} of them found in events_event, {rec[phase]['rows']:,} rows."
        for phase, _ in PHASE_PREFIXES
    )
    return (
        f"Reconciliation: {each} Rows beyond the acknowledgements are requests still in flight when wrk stopped: "
        "stored, their answers not counted."
    )


def print_summary(results: Results) -> None:
    best, at_80 = results.b1_best, results.b1_at_80_run
    print()
    print(
        f"Server: {cores_text(results.server_cpus)} (cpu{results.server_cpus}), gunicorn (buffering gthread worker) "
        f"{results.workers} worker(s) x {results.threads} threads; "
        f"wrk and COPY client: {cores_text(results.client_cpus)} (cpu{results.client_cpus}); "
        "PostgreSQL and Redis: same machine, unpinned."
    )
    print(f"B0-http  {results.b0_http_rate:8.0f} req/s   hello-world WSGI, same gunicorn.conf.py")
    print(f"B0-copy  {results.b0_copy_rate:8.0f} rows/s  COPY, {BATCH_SIZE} rows per transaction")
    if best:
        print(
            f"B1       {best.rate:8.0f} req/s   /v1/event at c={best.connections}: "
            f"p50 {best.p50_ms:.1f} ms, p99 {best.p99_ms:.1f} ms"
        )
    else:
        print(f"B1       no rate with p99 <= {MAX_P99_MS:.0f} ms and no error ({results.b1_fastest})")
    if at_80:
        print(f"B1@80%   {at_80.rate:8.0f} req/s   p50 {at_80.p50_ms:.1f} ms, p99 {at_80.p99_ms:.1f} ms")
    _print_batches(results)
    print(f"Server CPU per request: {results.cpu_per_request()}")
    for line in results.where_the_time_goes():
        print(line)
    _print_reconciliation(results)
    print()
    for what, measured, target, verdict in results.checks():
        print(f"  {verdict:<4}  {what:<28} {measured:<40} target {target}")


def _print_batches(results: Results) -> None:
    if results.b2_skipped:
        print(f"B2       skipped ({results.b2_skipped})")
        return
    print(f"B2       {results.b2_rate:8.0f} events/s /v1/batch, {BATCH_SIZE} events per request")
    if results.b2_all:
        pinned = f"{results.b2_pinned_rate:.0f} events/s with it on cpu{results.server_cpus}"
        print(f"         (server on every core; {pinned})")
    for one in results.rounds_paired():
        print(
            f"Round {one.number}: B0-copy {one.copy.events_rate:8.0f} rows/s ({one.copy.name}), "
            f"B2 {one.batch.events_rate:8.0f} events/s ({one.batch.name}): {one.ratio:.2f}"
        )


def _print_reconciliation(results: Results) -> None:
    rec = results.reconciliation
    each = "; ".join(
        f"{phase}: {rec[phase]['acknowledged']} acknowledged, {rec[phase]['found']} of their ids found, "
        f"{rec[phase]['rows']} rows"
        for phase, _ in PHASE_PREFIXES
    )
    print(f"Rows counted: {rec['rows_counted']}; {each}; missing: {rec['missing']}")
