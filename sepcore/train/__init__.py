"""Training entry points: ``python -m sepcore.train.<family>`` (thin wrappers over functions)."""
