"""Benchmarks: ``python -m benchmarks.<name> --profile quick|default``; tables go to ``tables/benchmarks/``."""
