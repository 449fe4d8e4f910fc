"""Benchmark helpers: the closed-loop load generator, the report arithmetic and the Handbook baseline."""
