"""Benchmarks run only on request: `pytest tests/bench --benchmark-only --benchmark-json=F`."""
