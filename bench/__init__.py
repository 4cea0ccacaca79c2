"""Benchmarks: seeded workloads, medians, ratios measured in the same run (never absolute times)."""
