"""Training entry points, one per model family: ``python -m sepcore.train.<family> --profile ...``."""
