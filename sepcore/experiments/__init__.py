"""Experiments that chapters call: each returns tables (per-chunk scores, summaries, diagnostics)."""
