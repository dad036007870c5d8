"""djjobs benchmarks: run ``python benchmarks/run.py`` from the repository root (not a test suite)."""
