"""Committed measurements of the serving stack; see benchmarks/README.md for how each was produced."""
