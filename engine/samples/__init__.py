"""Seeded sample data the demo, tests and benchmarks generate (nothing is downloaded)."""
