"""Benchmarks: `python -m bench` (see bench/__main__.py); they print numbers and assert nothing."""
