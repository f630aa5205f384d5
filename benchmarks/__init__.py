"""Benchmarks: speed and memory targets, measured side by side in one run, written to tables/benchmarks/."""
