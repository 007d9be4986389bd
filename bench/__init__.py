"""Benchmarks: each module has `main(argv) -> int` and prints one JSON line (`python -m bench.NAME --json`)."""
