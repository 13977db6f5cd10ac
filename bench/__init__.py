"""Speed benchmarks, run on demand from the repo root: `python -m bench.NAME` (results: bench/RESULTS.md)."""
