"""Separators. Every method has the same call: ``separate(mixture) -> Tensor(n_sources, time)``."""
