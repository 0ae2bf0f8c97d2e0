"""Where the benchmark runs and what it writes: its own database and Redis db (never the development or test
ones), its files under var/bench/, and the size of a batch."""

import os
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
LUA_SCRIPT = ROOT / "bench" / "ingest.lua"
WORK_DIR = ROOT / "var" / "bench"  # every run's report, chart, raw figures and logs
REPORT = WORK_DIR / "benchmarks.md"
CHART = WORK_DIR / "benchmarks.png"  # the report links it by this name
# `make bench-publish` copies the last run's report and chart here: the page is re-rendered when the figures move.
PUBLISHED_REPORT = ROOT / "docs" / "benchmarks.md"
PUBLISHED_CHART = ROOT / "docs" / "benchmarks.png"

DATABASE_URL = os.environ.get("BENCH_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/canvas_bench")
REDIS_URL = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/14")

BATCH_SIZE = 100  # events per /v1/batch request, rows per B0-copy transaction
