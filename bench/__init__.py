"""The ingestion benchmark behind `make bench`: bench/run.py runs it, docs/benchmarks.md shows it."""
